"""P1 by first-fit decreasing: densest columns first, each into the first group it fits.

Problem (DESIGN.md section 3, P1): partition the nonempty columns into the
fewest groups of at most alpha columns with at most floor(gamma * R) conflicts
(sum over rows of nnz - 1) per group.

Method: the bin-packing rule first-fit decreasing (Johnson 1974) with the
conflict graph's colouring in mind. Columns are taken by nonzero count,
densest first (ties by column index), because dense columns conflict with the
most others and are hardest to place late. Each goes into the lowest-numbered
group that has fewer than alpha columns and stays within the conflict budget;
otherwise it opens a new group. Full groups are skipped by a path-compressed
skip list, and a conflict-free fit test stops at the first occupied row, so a
pass costs O(N * open groups) cheap tests at worst.

With gamma > 0 two passes run and the better answer is kept (fewer groups,
then fewer conflicts, then the first): plain first fit that spends the budget
wherever it first fits, and a "clean-first" pass that puts a column into the
first group it joins without any conflict and spends budget only when no such
group exists. The first packs tighter on dense layers, the second prunes less.

Reference: D. S. Johnson, "Fast algorithms for bin packing", J. Computer and
System Sciences 8(3), 1974, doi:10.1016/S0022-0000(74)80026-7.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from ._kernels import add_column, close_group, compact, expand_labels, first_open, fits

__all__ = ["ffd_labels", "first_fit", "decreasing_order", "SOLVER"]


@njit(cache=True)
def first_fit(order, col_ptr, col_rows, R, alpha, budget, clean_first):
    """Place columns in ``order`` by first fit; returns (labels int64 (m,), groups, total conflicts).

    ``clean_first`` tries a conflict-free group before spending budget.
    """
    m = order.shape[0]
    counts = np.zeros((m, R), dtype=np.int32)
    conflicts = np.zeros(m, dtype=np.int64)
    sizes = np.zeros(m, dtype=np.int64)
    skip = np.arange(m + 1)
    labels = np.full(m, -1, dtype=np.int64)
    G = 0
    for j in order:
        g = G
        if clean_first:
            g = first_open(skip, 0)
            while g < G and not fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, conflicts[g]):
                g = first_open(skip, g + 1)
        if g == G:
            g = first_open(skip, 0)
            while g < G and not fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, budget):
                g = first_open(skip, g + 1)
        if g == G:
            G += 1
        add_column(counts, conflicts, sizes, g, col_ptr, col_rows, j)
        labels[j] = g
        if sizes[g] >= alpha:
            close_group(skip, g)
    return labels, G, conflicts[:G].sum()


def decreasing_order(col_ptr: np.ndarray) -> np.ndarray:
    """Columns by nonzero count, largest first, ties by index."""
    nnz = np.diff(col_ptr)
    return np.argsort(-nnz, kind="stable").astype(np.int64)


def ffd_labels(problem: CombineProblem) -> np.ndarray:
    """First-fit-decreasing labels for a P1 problem (-1 for empty columns)."""
    keep, (col_ptr, col_rows, _, _) = compact(problem.mask)
    R = problem.shape[0]
    order = decreasing_order(col_ptr)
    passes = (False, True) if problem.budget > 0 else (False,)
    best, best_key = None, None
    for clean_first in passes:
        local, G, conflicts = first_fit(order, col_ptr, col_rows, R, problem.alpha, problem.budget, clean_first)
        if best_key is None or (G, conflicts) < best_key:
            best, best_key = local, (G, conflicts)
    return expand_labels(problem.shape[1], keep, best)


def _run(problem: CombineProblem, options: Options) -> Outcome:
    return Outcome(solution=ffd_labels(problem))


SOLVER = Solver(
    name="ffd",
    run=_run,
    summary="first-fit decreasing (Numba): densest columns first into the first group that fits",
)
