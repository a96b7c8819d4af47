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
O(log N) per saturation change.

Reference: D. Brélaz, "New methods to color the vertices of a graph",
Communications of the ACM 22(4), 1979, doi:10.1145/359094.359101.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from ._kernels import (bits_add, column_bits, compact, expand_labels, first_budget_fit, first_free_group,
                       group_words, mark_group)

__all__ = ["degrees", "dsatur", "dsatur_labels", "SOLVER"]


@njit(cache=True)
def degrees(col_ptr, col_rows, row_ptr, row_cols):
    """Number of distinct other columns each column shares a nonzero row with."""
    m = col_ptr.shape[0] - 1
    deg = np.zeros(m, dtype=np.int64)
    stamp = np.full(m, -1, dtype=np.int64)
    for u in range(m):
        stamp[u] = u
        for p in range(col_ptr[u], col_ptr[u + 1]):
            r = col_rows[p]
            for q in range(row_ptr[r], row_ptr[r + 1]):
                w = row_cols[q]
                if stamp[w] != u:
                    stamp[w] = u
                    deg[u] += 1
    return deg


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
def dsatur(col_ptr, col_rows, row_ptr, row_cols, bits, row_groups, closed, alpha, budget):
    """DSatur on kept columns 0..m-1: (labels (m,), number of groups).

    ``bits`` are the columns' row bitsets; ``row_groups``/``closed`` empty
    :func:`group_words` state for m groups (used when budget is 0).
    """
    m, W = bits.shape
    deg = degrees(col_ptr, col_rows, row_ptr, row_cols)
    scale = deg.max() + 1
    key = deg.copy()                    # saturation * scale + degree; -1 once placed
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
    before = np.zeros(W, dtype=np.uint64)
    G = 0
    for step in range(m):
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
    return labels, G


def dsatur_labels(problem: CombineProblem) -> np.ndarray:
    """DSatur labels for a P1 problem (-1 for empty columns)."""
    keep, (col_ptr, col_rows, row_ptr, row_cols) = compact(problem.mask)
    bits = column_bits(col_ptr, col_rows, problem.shape[0])
    row_groups, closed = group_words(problem.shape[0], keep.size)
    local, _ = dsatur(col_ptr, col_rows, row_ptr, row_cols, bits, row_groups, closed,
                      problem.alpha, problem.budget)
    return expand_labels(problem.shape[1], keep, local)


def _run(problem: CombineProblem, options: Options) -> Outcome:
    return Outcome(solution=dsatur_labels(problem))


SOLVER = Solver(
    name="dsatur",
    run=_run,
    summary="DSatur (Numba): most-saturated column first into the lowest group it fits",
)
