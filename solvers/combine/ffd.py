"""P1 by first-fit decreasing: densest columns first, each into the first group it fits.

Problem (DESIGN.md section 3, P1): partition the nonempty columns into the
fewest groups of at most alpha columns with at most floor(gamma * R) conflicts
(sum over rows of nnz - 1) per group.

Method: the bin-packing rule first-fit decreasing (Johnson 1974). Columns are
taken by nonzero count, densest first (ties by column index), because dense
columns conflict with the most others and are hardest to place late; each goes
into the lowest-numbered group that has fewer than alpha columns and that it
joins without conflict, otherwise it opens a new group. Groups are bitsets per
row, so one word operation tests 64 groups (:func:`first_free_group`).

With a conflict budget (gamma > 0) first fit spends the budget on the densest
columns, which land together in the first groups and exhaust it early (on
random layers it then uses 5-10% more groups than column combining's own
packer). So the same rule is applied group by group instead: a group is
opened with the densest unplaced column, and it is filled, while it has room,
with the unplaced column that adds the most nonzeros net of the conflicts it
adds (nnz - added conflicts, ties to the densest, then lowest index), among
those that keep it within the budget. With budget 0 every feasible column adds
no conflict, so the choice is the first feasible one in decreasing order and
the result is exactly first-fit decreasing; with a budget it is column
combining's densest-partner rule applied to all columns at once (once a
share of the budget is read, to the densest unplaced ones only), seeded by
density. Scans stop as soon as no
later column can beat the best gain (columns are in decreasing order and the
gain is at most nnz), and a column's test as soon as it is over the budget.

Reference: D. S. Johnson, "Fast algorithms for bin packing", J. Computer and
System Sciences 8(3), 1974, doi:10.1016/S0022-0000(74)80026-7.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..budget import Budget
from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from ._kernels import expand_labels, first_free_group, group_words, mark_group, popcount

__all__ = ["decreasing_order", "first_fit", "fill_groups", "ffd_labels", "FILL_WINDOW_MIN", "FILL_SHARE", "SOLVER"]

# The budgeted fill (gamma > 0) considers every unplaced column per slot until it has read
# FILL_SHARE of its budget in bitset words, then the FILL_WINDOW_MIN densest unplaced ones
# (LLM layers: 4096 x 11008 at 10% density took over 10 s with every column considered).
# Without a budget every column is considered throughout.
FILL_WINDOW_MIN = 256
FILL_SHARE = 0.5


def decreasing_order(col_ptr: np.ndarray) -> np.ndarray:
    """Columns by nonzero count, largest first, ties by index."""
    return np.argsort(-np.diff(col_ptr), kind="stable").astype(np.int64)


@njit(cache=True)
def first_fit(order, col_ptr, col_rows, row_groups, closed, alpha):
    """Conflict-free first fit of the columns in ``order``: (labels (m,), groups).

    ``row_groups``/``closed`` are empty :func:`group_words` state for m groups.
    """
    m = order.shape[0]
    sizes = np.zeros(m, dtype=np.int64)
    labels = np.full(m, -1, dtype=np.int64)
    G = 0
    for j in order:
        g = first_free_group(row_groups, closed, col_ptr, col_rows, j)
        if g == G:
            G += 1
        mark_group(row_groups, closed, sizes, g, col_ptr, col_rows, j, alpha)
        labels[j] = g
    return labels, G


@njit(cache=True)
def fill_groups(order, bits, nnz, alpha, budget, max_words=np.inf):
    """Fill one group at a time with the best-gain feasible column: (labels (m,), groups, words read).

    Each slot looks at every unplaced column until ``max_words`` bitset words
    have been read in all; from then on only at the first
    :data:`FILL_WINDOW_MIN` unplaced ones (densest first), so the rest costs
    O(alpha x FILL_WINDOW_MIN x R / 64) per group.  The words read are
    counted by the kernel itself, so the switch point is deterministic.

    ``order`` lists the columns by decreasing ``nnz``. The unplaced columns
    are kept as a list of positions in that order (placed ones flagged, and
    compacted away once they are an eighth of the list), and the bitsets are
    copied into that order once, so every scan reads memory front to back.
    """
    m, W = bits.shape
    labels = np.full(m, -1, dtype=np.int64)
    sbits = np.empty((m, W), dtype=np.uint64)
    snnz = np.empty(m, dtype=np.int64)
    for p in range(m):
        sbits[p] = bits[order[p]]
        snnz[p] = nnz[order[p]]
    alive = np.arange(m)
    count = m
    dead = 0
    placed = np.zeros(m, dtype=np.bool_)
    occ = np.zeros(W, dtype=np.uint64)
    G = 0
    words = 0
    window = m
    while count > 0:
        if words > max_words:
            window = FILL_WINDOW_MIN
        seed = alive[0]
        placed[seed] = True
        labels[order[seed]] = G
        for w in range(W):
            occ[w] = sbits[seed, w]
        size = 1
        spent = 0
        while size < alpha:
            best_pos = -1
            best_gain = -1
            best_d = 0
            seen = 0
            for k in range(1, count):
                p = alive[k]
                if snnz[p] <= best_gain or seen >= window:
                    break
                if placed[p]:
                    continue
                seen += 1
                d = 0
                for w in range(W):
                    words += 1
                    x = occ[w] & sbits[p, w]
                    if x:
                        d += popcount(x)
                        if spent + d > budget:
                            break       # over the budget already: the rest cannot make it fit
                if spent + d <= budget and snnz[p] - d > best_gain:
                    best_gain = snnz[p] - d
                    best_pos = p
                    best_d = d
            if best_pos < 0:
                break
            for w in range(W):
                occ[w] |= sbits[best_pos, w]
            spent += best_d
            placed[best_pos] = True
            labels[order[best_pos]] = G
            size += 1
        dead += size
        if dead * 8 > count:
            # Compact only once placed columns are an eighth of the list: O(m) per
            # compaction, so many small groups do not each pay a full pass.
            kept = 0
            for k in range(count):
                if not placed[alive[k]]:
                    alive[kept] = alive[k]
                    kept += 1
            count = kept
            dead = 0
        while count > 0 and placed[alive[0]]:
            alive = alive[1:]
            count -= 1
        G += 1
    return labels, G, words


def ffd_labels(problem: CombineProblem, budget: Budget | None = None) -> np.ndarray:
    """First-fit-decreasing labels for a P1 problem (-1 for empty columns).

    With gamma > 0 the fill may read :data:`FILL_SHARE` of ``budget`` in bitset
    words before its scans shrink (:func:`fill_groups`), and is charged what it read.
    """
    keep, (col_ptr, col_rows, _, _) = problem.incidence
    order = decreasing_order(col_ptr)
    if problem.budget == 0:
        row_groups, closed = group_words(problem.shape[0], keep.size)
        local, _ = first_fit(order, col_ptr, col_rows, row_groups, closed, problem.alpha)
    else:
        cap = np.inf if budget is None else FILL_SHARE * max(budget.ops, 0.0)
        local, _, words = fill_groups(order, problem.column_bits, np.diff(col_ptr), problem.alpha,
                                      problem.budget, float(cap))
        if budget is not None:
            budget.spend(float(words))
    return expand_labels(problem.shape[1], keep, local)


def _run(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    return Outcome(solution=ffd_labels(problem, budget))


SOLVER = Solver(
    name="ffd",
    run=_run,
    summary="first-fit decreasing (Numba): densest columns first into the first group that fits",
)
