"""Numba kernels of the P1 pricing problem: heavy groups within alpha and the conflict budget.

A group's conflicts are sum over rows of (nonzeros in the row) - 1, so adding
column j to a group adds one conflict per row of j the group already covers.
See :mod:`.lp_bound` for the column generation that calls these.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["greedy_pricing", "branch_and_bound_pricing", "budget_branch_and_bound"]


@njit(cache=True)
def greedy_pricing(order, seeds, col_ptr, col_rows, weight, alpha, budget, R, mu, members, values):
    """From each of the first ``seeds`` columns of ``order``, add the best columns that still fit.

    ``order`` lists the columns of positive weight, heaviest first. A column
    fits when the group stays within alpha columns and its conflicts within
    ``budget``; each step adds the fitting column of largest weight minus
    ``mu`` per conflict it adds (mu = 0: simply the heaviest that fits).
    Row ``s`` of ``members`` (-1 padded) receives the group grown from
    order[s] and ``values[s]`` its weight.
    """
    n = order.shape[0]
    count = np.zeros(R, dtype=np.int64)
    taken = np.zeros(col_ptr.shape[0] - 1, dtype=np.bool_)
    for s in range(seeds):
        seed = order[s]
        for p in range(col_ptr[seed], col_ptr[seed + 1]):
            count[col_rows[p]] += 1
        members[s, :] = -1
        members[s, 0] = seed
        taken[seed] = True
        size = 1
        conflicts = 0
        total = weight[seed]
        while size < alpha:
            pick = -1
            pick_extra = 0
            pick_score = -np.inf
            for t in range(n):
                j = order[t]
                if taken[j]:
                    continue
                if weight[j] <= pick_score:
                    break  # heaviest first: no later column can score more
                extra = 0
                for p in range(col_ptr[j], col_ptr[j + 1]):
                    if count[col_rows[p]] > 0:
                        extra += 1
                        if conflicts + extra > budget:
                            break
                if conflicts + extra > budget:
                    continue
                score = weight[j] - mu * extra
                if score > pick_score:
                    pick, pick_extra, pick_score = j, extra, score
                if mu == 0.0:
                    break
            if pick < 0:
                break
            for p in range(col_ptr[pick], col_ptr[pick + 1]):
                count[col_rows[p]] += 1
            taken[pick] = True
            conflicts += pick_extra
            members[s, size] = pick
            size += 1
            total += weight[pick]
        values[s] = total
        for q in range(size):
            j = members[s, q]
            taken[j] = False
            for p in range(col_ptr[j], col_ptr[j + 1]):
                count[col_rows[p]] -= 1


@njit(cache=True)
def branch_and_bound_pricing(order, bits, weight, alpha, target, node_limit, found):
    """Conflict-free sets of at most alpha columns weighing more than ``target``, by branch and bound.

    ``order`` lists the columns of positive weight, heaviest first. Each level
    keeps the candidates compatible with the columns chosen so far (as
    maximum-clique algorithms do), and a level ends once its chosen weight
    plus the heaviest candidates that could still join cannot beat the best.
    Row i of ``found`` (-1 padded) receives the i-th set heavier than
    ``target``; the search stops when ``found`` is full. Returns (sets found,
    finished): a finished search that found none proves that no set weighs
    more than ``target``; a run past ``node_limit`` nodes proves nothing.
    """
    n = order.shape[0]
    W = bits.shape[1]
    cands = np.empty((alpha + 1, max(n, 1)), dtype=np.int64)
    count = np.zeros(alpha + 1, dtype=np.int64)
    ptr = np.zeros(alpha + 1, dtype=np.int64)
    occ = np.zeros((alpha + 1, W), dtype=np.uint64)
    value = np.zeros(alpha + 1)
    chosen = np.full(alpha, -1, dtype=np.int64)
    best = target
    hits = 0
    found[:, :] = -1
    for t in range(n):
        cands[0, t] = t
    count[0] = n
    nodes = 0
    level = 0
    while level >= 0:
        if level == alpha or ptr[level] >= count[level]:
            level -= 1
            continue
        first = ptr[level]
        ptr[level] += 1
        # Candidates are in weight order, so the next ones are the heaviest still possible.
        ub = value[level]
        for t in range(first, min(count[level], first + alpha - level)):
            ub += weight[order[cands[level, t]]]
        if ub <= best:
            level -= 1
            continue
        j = order[cands[level, first]]
        chosen[level] = j
        v = value[level] + weight[j]
        if v > best:
            found[hits, :level + 1] = chosen[:level + 1]
            hits += 1
            if hits == found.shape[0]:
                return hits, True
        nodes += 1
        if nodes > node_limit:
            return hits, False
        if level + 1 == alpha:
            continue
        c = 0
        for t in range(ptr[level], count[level]):
            jj = order[cands[level, t]]
            clash = False
            for w in range(W):
                if (occ[level, w] | bits[j, w]) & bits[jj, w]:
                    clash = True
                    break
            if not clash:
                cands[level + 1, c] = cands[level, t]
                c += 1
        if c:
            for w in range(W):
                occ[level + 1, w] = occ[level, w] | bits[j, w]
            value[level + 1] = v
            count[level + 1] = c
            ptr[level + 1] = 0
            level += 1
    return hits, True


@njit(cache=True)
def budget_branch_and_bound(order, col_ptr, col_rows, weight, alpha, budget, R, target, node_limit,
                            raise_best, found):
    """Sets of at most alpha columns with at most ``budget`` conflicts weighing more than ``target``.

    Branch and bound as :func:`branch_and_bound_pricing`, with the chosen
    columns' row counts instead of row bits: a candidate stays while the
    conflicts it would add keep the group within ``budget``. ``raise_best``:
    every set found raises the target, so a finished search proves the best
    weight found is the maximum. Row i of ``found`` (-1 padded) receives the
    i-th set found; the search stops when ``found`` is full. Returns (sets
    found, finished, best weight or target, nodes).
    """
    n = order.shape[0]
    cands = np.empty((alpha + 1, max(n, 1)), dtype=np.int64)
    count = np.zeros(alpha + 1, dtype=np.int64)
    ptr = np.zeros(alpha + 1, dtype=np.int64)
    conf = np.zeros(alpha + 1, dtype=np.int64)
    value = np.zeros(alpha + 1)
    chosen = np.full(alpha + 1, -1, dtype=np.int64)
    rows = np.zeros(R, dtype=np.int64)
    best = target
    hits = 0
    found[:, :] = -1
    for t in range(n):
        cands[0, t] = t
    count[0] = n
    nodes = 0
    level = 0
    while level >= 0:
        if chosen[level] >= 0:
            j = chosen[level]
            for p in range(col_ptr[j], col_ptr[j + 1]):
                rows[col_rows[p]] -= 1
            chosen[level] = -1
        if level == alpha or ptr[level] >= count[level]:
            level -= 1
            continue
        first = ptr[level]
        ptr[level] += 1
        ub = value[level]
        for t in range(first, min(count[level], first + alpha - level)):
            ub += weight[order[cands[level, t]]]
        if ub <= best:
            ptr[level] = count[level]
            continue
        j = order[cands[level, first]]
        extra = 0
        for p in range(col_ptr[j], col_ptr[j + 1]):
            if rows[col_rows[p]] > 0:
                extra += 1
            rows[col_rows[p]] += 1
        chosen[level] = j
        v = value[level] + weight[j]
        c = conf[level] + extra
        if v > best:
            slot = hits if hits < found.shape[0] else found.shape[0] - 1
            found[slot, :] = -1
            for q in range(level + 1):
                found[slot, q] = chosen[q]
            hits += 1
            if raise_best:
                best = v
            elif hits == found.shape[0]:
                return hits, True, best, nodes
        nodes += 1
        if nodes > node_limit:
            return hits, False, best, nodes
        if level + 1 == alpha:
            continue
        k = 0
        for t in range(ptr[level], count[level]):
            jj = order[cands[level, t]]
            more = 0
            for p in range(col_ptr[jj], col_ptr[jj + 1]):
                if rows[col_rows[p]] > 0:
                    more += 1
                    if c + more > budget:
                        break
            if c + more <= budget:
                cands[level + 1, k] = cands[level, t]
                k += 1
        if k:
            value[level + 1] = v
            conf[level + 1] = c
            count[level + 1] = k
            ptr[level + 1] = 0
            chosen[level + 1] = -1
            level += 1
    return hits, True, best, nodes
