"""P1 by DSatur: colour the column conflict graph, most-saturated column first.

Problem (DESIGN.md section 3, P1): partition the nonempty columns into the
fewest groups of at most alpha columns with at most floor(gamma * R) conflicts
per group. With gamma = 0 and alpha >= N this is colouring the conflict graph
(columns adjacent when they share a nonzero row).

Method: Brélaz's DSatur. The saturation of an unplaced column is the number of
distinct groups it shares a nonzero row with. Repeatedly take the unplaced
column of highest saturation, ties to the highest degree (distinct columns it
shares a row with), then to the lowest index, and put it in the lowest-numbered
group it can join: fewer than alpha columns and conflicts within the budget
(for gamma = 0: no shared row), else a new group. These tie rules are those of
networkx's ``greedy_color(strategy="DSATUR")`` on a graph whose nodes are
added in column order, so with alpha >= N and gamma = 0 both give the same
colouring.

No N x N adjacency is built: degrees and saturation updates walk the row lists
of the mask. When column v joins group g, only the rows v newly occupies in g
can make a column newly adjacent to g; each column met there is tested against
g's row bitset from before the move, and its saturation rises if it was not
adjacent yet. The next column comes from a max segment tree over (saturation,
degree). Cost: O(sum_r nnz(row r)^2) for the degrees, and per placement the
columns sharing a newly occupied row times ceil(R / 64) words, plus
O(log N) per saturation change. That is the conflict graph's edge count,
which dense layers make large (128 x 65536 at 10% density: minutes). So
the cost is estimated first (:func:`work`, charged to the budget), and when
the budget cannot pay for it the solver returns the hint (when given) or
first-fit decreasing's answer and says so in ``fallback``, the same on any
machine; the placements also run in chunks between clock checks, so a
loaded machine's deadline still cuts them (then ``interrupted``).

Reference: D. Brélaz, "New methods to color the vertices of a graph",
Communications of the ACM 22(4), 1979, doi:10.1145/359094.359101.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..budget import Budget
from ..chunks import run_in_chunks
from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from ._kernels import (bits_add, expand_labels, first_budget_fit, first_free_group,
                       group_words, mark_group)
from .ffd import ffd_labels
from .reduce import start_labels

__all__ = ["degrees", "dsatur_start", "dsatur_steps", "dsatur_labels", "work", "SOLVER"]


@njit(cache=True)
def degrees_range(col_ptr, col_rows, row_ptr, row_cols, first, last, deg, stamp):
    """Fill deg[u] for columns first..last-1: distinct other columns u shares a nonzero row with.

    ``stamp`` (m,) int64, all -1 before the first call, is scratch shared by the calls.
    """
    for u in range(first, last):
        stamp[u] = u
        for p in range(col_ptr[u], col_ptr[u + 1]):
            r = col_rows[p]
            for q in range(row_ptr[r], row_ptr[r + 1]):
                w = row_cols[q]
                if stamp[w] != u:
                    stamp[w] = u
                    deg[u] += 1


def degrees(col_ptr, col_rows, row_ptr, row_cols, deadline: float = math.inf) -> np.ndarray | None:
    """Conflict-graph degree of every column, or None if the deadline cut the count short."""
    m = col_ptr.shape[0] - 1
    deg = np.zeros(m, dtype=np.int64)
    stamp = np.full(m, -1, dtype=np.int64)

    def steps(it, n):
        degrees_range(col_ptr, col_rows, row_ptr, row_cols, it, it + n, deg, stamp)
        return it + n, m - it - n

    done, _ = run_in_chunks(steps, m, m, Budget.unlimited(deadline))
    return deg if done == m else None


@njit(cache=True)
def _tree_build(key, size):
    """Max segment tree over leaves 0..m-1: each node holds its best leaf (larger key, then lower index)."""
    tree = np.full(2 * size, -1, dtype=np.int64)
    for u in range(key.shape[0]):
        tree[size + u] = u
    for u in range(key.shape[0]):
        _tree_update(tree, key, size, u, False)
    return tree


@njit(cache=True)
def _tree_update(tree, key, size, u, grew):
    """Repair the path above leaf u after key[u] changed.

    When the key grew, a node whose winner stays another leaf shields every
    node above it, so the walk stops there; most saturation increments touch
    a few nodes only.
    """
    i = (size + u) >> 1
    while i >= 1:
        old = tree[i]
        a, b = tree[2 * i], tree[2 * i + 1]
        if a < 0 or (b >= 0 and (key[b] > key[a] or (key[b] == key[a] and b < a))):
            tree[i] = b
        else:
            tree[i] = a
        if grew and tree[i] == old and old != u:
            return
        i >>= 1


@njit(cache=True)
def dsatur_start(key, W):
    """DSatur's state before the first placement, for :func:`dsatur_steps`.

    ``key`` starts as the degrees. Returns (key, tree, size, occ, conflicts,
    sizes, fill, labels, stamp): key = saturation * (max degree + 1) + degree,
    -1 once placed.
    """
    m = key.shape[0]
    size = 1
    while size < m:
        size *= 2
    tree = _tree_build(key, size)
    occ = np.zeros((m, W), dtype=np.uint64)
    conflicts = np.zeros(m, dtype=np.int64)
    sizes = np.zeros(m, dtype=np.int64)
    fill = np.zeros(m, dtype=np.int64)  # sizes as seen by mark_group
    labels = np.full(m, -1, dtype=np.int64)
    stamp = np.full(m, -1, dtype=np.int64)
    return key, tree, size, occ, conflicts, sizes, fill, labels, stamp


@njit(cache=True)
def dsatur_steps(first, last, G, scale, col_ptr, col_rows, row_ptr, row_cols, bits, row_groups, closed,
                 key, tree, size, occ, conflicts, sizes, fill, labels, stamp, alpha, budget):
    """Placements first..last-1 of DSatur on kept columns 0..m-1; returns the group count.

    ``bits`` are the columns' row bitsets; ``row_groups``/``closed`` the
    :func:`group_words` state for m groups (used when budget is 0); the rest
    is :func:`dsatur_start`'s state, updated in place.
    """
    W = bits.shape[1]
    before = np.zeros(W, dtype=np.uint64)
    for step in range(first, last):
        v = tree[1]
        if budget == 0:
            g = first_free_group(row_groups, closed, col_ptr, col_rows, v)
            mark_group(row_groups, closed, fill, g, col_ptr, col_rows, v, alpha)
        else:
            g = first_budget_fit(occ, conflicts, sizes, G, bits, v, alpha, budget)
        if g == G:
            G += 1
        for w in range(W):
            before[w] = occ[g, w]
        bits_add(occ, conflicts, sizes, g, bits, v)
        labels[v] = g
        key[v] = -1
        _tree_update(tree, key, size, v, False)
        stamp[v] = step
        for p in range(col_ptr[v], col_ptr[v + 1]):
            r = col_rows[p]
            if (before[r >> 6] >> np.uint64(r & 63)) & np.uint64(1):
                continue                # columns in row r already touch g
            for q in range(row_ptr[r], row_ptr[r + 1]):
                u = row_cols[q]
                if labels[u] >= 0 or stamp[u] == step:
                    continue
                stamp[u] = step
                touching = False
                for w in range(W):
                    if before[w] & bits[u, w]:
                        touching = True
                        break
                if not touching:
                    key[u] += scale
                    _tree_update(tree, key, size, u, True)
    return G


def dsatur_labels(problem: CombineProblem, deadline: float = math.inf) -> np.ndarray | None:
    """DSatur labels for a P1 problem (-1 for empty columns), or None if the deadline cut it short."""
    keep, (col_ptr, col_rows, row_ptr, row_cols) = problem.incidence
    m = keep.size
    deg = degrees(col_ptr, col_rows, row_ptr, row_cols, deadline)
    if deg is None:
        return None
    bits = problem.column_bits
    row_groups, closed = group_words(problem.shape[0], m)
    scale = int(deg.max()) + 1 if m else 1
    state = dsatur_start(deg, bits.shape[1])
    G = 0

    def steps(it, n):
        nonlocal G
        G = dsatur_steps(it, it + n, G, scale, col_ptr, col_rows, row_ptr, row_cols, bits, row_groups, closed,
                         *state, problem.alpha, problem.budget)
        return it + n, m - it - n

    placed, _ = run_in_chunks(steps, m, m, Budget.unlimited(deadline))
    if placed < m:
        return None
    return expand_labels(problem.shape[1], keep, state[7])


# Operations charged per incidence walked: measured 3.2 ns each (4096 x 4096 at 10% density,
# 6.9e8 incidences in 2.2 s, loaded machine), so about a third of the budget's rate per op.
OPS_PER_INCIDENCE = 3.0


def work(problem: CombineProblem) -> float:
    """DSatur's cost in operations: the degree count and the saturation updates walk up to
    sum_r nnz_r^2 incidences, :data:`OPS_PER_INCIDENCE` each, plus the bitset tests
    (columns x R / 64 words)."""
    row_nnz = np.diff(problem.incidence[1][2]).astype(np.float64)
    return OPS_PER_INCIDENCE * float(row_nnz @ row_nnz) + problem.nonempty.size * (problem.shape[0] / 64 + 1)


def _run(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    cost = work(problem)
    if cost > budget.ops:
        what = "the hint" if options.hint is not None else "first-fit decreasing answer"
        reason = f"DSatur would cost {cost:.3g} operations > the {max(budget.ops, 0):.3g} left; {what} instead"
        return Outcome(start_labels(problem, options, budget) if options.hint is not None else ffd_labels(problem, budget),
                       fallback=reason)
    budget.spend(cost)
    labels = dsatur_labels(problem, budget.deadline)
    if labels is None:
        if options.hint is not None:   # e.g. the portfolio's best so far: no need to recompute
            reason = f"DSatur did not finish within {options.time_limit:.3g} s; the hint instead"
            return Outcome(start_labels(problem, options, budget), interrupted=True, fallback=reason)
        reason = f"DSatur did not finish within {options.time_limit:.3g} s; first-fit decreasing answer instead"
        return Outcome(ffd_labels(problem, budget), interrupted=True, fallback=reason)
    return Outcome(solution=labels)


SOLVER = Solver(
    name="dsatur",
    run=_run,
    summary="DSatur (Numba): most-saturated column first into the lowest group it fits",
)
