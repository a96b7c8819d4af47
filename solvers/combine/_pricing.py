"""Numba kernels of the P1 pricing problem: heavy groups within alpha and the conflict budget.

A group's conflicts are sum over rows of (nonzeros in the row) - 1, so adding
column j to a group adds one conflict per row of j the group already covers.
See :mod:`.lp_bound` for the column generation that calls these.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["greedy_pricing", "branch_and_bound_pricing"]


@njit(cache=True)
def greedy_pricing(order, seeds, col_ptr, col_rows, weight, alpha, budget, R, members, values):
    """From each of the first ``seeds`` columns of ``order``, add the heaviest columns that still fit.

    ``order`` lists the columns of positive weight, heaviest first. A column
    fits when the group stays within alpha columns and its conflicts within
    ``budget``. Row ``s`` of ``members`` (-1 padded) receives the group grown
    from order[s] and ``values[s]`` its weight.
    """
    count = np.zeros(R, dtype=np.int64)
    for s in range(seeds):
        seed = order[s]
        for p in range(col_ptr[seed], col_ptr[seed + 1]):
            count[col_rows[p]] += 1
        members[s, :] = -1
        members[s, 0] = seed
        size = 1
        conflicts = 0
        total = weight[seed]
        for t in range(order.shape[0]):
            if size == alpha:
                break
            j = order[t]
            if j == seed:
                continue
            extra = 0
            for p in range(col_ptr[j], col_ptr[j + 1]):
                if count[col_rows[p]] > 0:
                    extra += 1
                    if conflicts + extra > budget:
                        break
            if conflicts + extra > budget:
                continue
            for p in range(col_ptr[j], col_ptr[j + 1]):
                count[col_rows[p]] += 1
            conflicts += extra
            members[s, size] = j
            size += 1
            total += weight[j]
        values[s] = total
        for q in range(size):
            j = members[s, q]
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
