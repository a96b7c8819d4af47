"""P1 by column combining's own packer: greedy densest-partner merging in 256-column sections.

Problem (DESIGN.md section 3, P1): partition the nonempty columns into groups
of at most alpha columns with at most floor(gamma * R) conflicts per group.

Method: a faithful reimplementation of the packer of Kung, McDanel and Zhang
(Algorithm 1 of the paper; ``pack_matrix`` / ``pack_model`` in their released
code), kept as the reference baseline. The columns are cut into consecutive
sections of 256 original column indices (empty columns count towards the
section but are never grouped); groups never cross a section. Inside a
section every nonempty column starts as its own group, kept in a list ordered
by lowest column index, and the packer repeats:

1. a pair of groups (a, b) may merge when ``|a| + |b| <= alpha`` and the merged
   group's overlap is at most ``max_overlap``;
2. if no pair may merge, stop;
3. take the first group in the list that may merge with any other, and merge
   it with the partner whose merged group is densest, i.e. leaves the fewest
   rows empty (the original's ``density_dist``); ties go to the partner earlier
   in the list. The merged group keeps the first group's place.

Conflicts: the original's overlap of two groups with per-row nonzero counts
c_a, c_b is ``sum_r max(0, c_a[r] + c_b[r] - 1)`` (``overlap_dist``), which is
exactly DESIGN.md's conflicts of the merged group, sum over rows of
max(0, nnz_row - 1). Its ``max_overlap = int(gamma * B)`` with B the number of
filters (rows) is the per-group budget floor(gamma * R); this module uses the
problem's ``budget``, which differs from ``int(gamma * R)`` only by float
rounding. The original's ``max_paths`` (the layer's group count in their
network) is the size limit alpha here. The original also orders partners by
empty rows counted over the section's nonempty rows only; that differs from
the count over all R rows by a constant, so the choice is the same.

The original recomputes all pairwise overlaps after every merge on a GPU; here
a section's pairwise may-merge and union tables are updated in place after
each merge (only the merged group's row and column change), which gives the
same merges in O(section^2 + section * R) numpy work per merge.  That work
is charged to the call's budget, and when it is spent the remaining merges
are not made (a loaded time limit gives fewer merges, never a late answer).

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing Sparse Convolutional
Neural Networks for Efficient Systolic Array Implementations: Column Combining
Under Joint Optimization", ASPLOS 2019, doi:10.1145/3297858.3304028;
code: github.com/BradMcDanel/column-combine (packing.py).
"""

from __future__ import annotations

import numpy as np

from ..budget import Budget
from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver

__all__ = ["SECTION", "pack_section", "greedy_cc_labels", "SOLVER"]

SECTION = 256  # columns per section, as in the original pack_model
# Passes over a (section x R) table per merge, the operations one merge is charged per cell.
MERGE_PASSES = 4


def _pair_tables(counts: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlap and nonempty-row count of group i merged with every group."""
    merged = counts[i][None, :] + counts
    return np.maximum(merged - 1, 0).sum(axis=1), (merged > 0).sum(axis=1)


def pack_section(mask: np.ndarray, alpha: int, max_overlap: int, budget: Budget | None = None) -> list[list[int]]:
    """Greedy densest-partner merging of the columns of one section (all nonempty).

    Returns the groups as lists of local column indices, in list order.  Each
    merge is charged :data:`MERGE_PASSES` x section x R operations to
    ``budget``; once it is spent the merging stops (the groups so far are valid).
    """
    budget = budget or Budget.unlimited()
    m = mask.shape[1]
    if budget.ops <= 0:
        return [[j] for j in range(m)]   # no budget for the pairwise tables: no merges
    per_merge = MERGE_PASSES * m * mask.shape[0]
    budget.spend(per_merge)              # the pairwise tables
    counts = np.ascontiguousarray(mask.T, dtype=np.int64)       # per-group row counts
    inter = counts @ counts.T
    nnz = counts.sum(axis=1)
    union = nnz[:, None] + nnz[None, :] - inter
    sizes = np.ones(m, dtype=np.int64)
    alive = np.ones(m, dtype=bool)
    members = [[j] for j in range(m)]
    # for single columns the overlap is |rows(a) & rows(b)|
    can = (inter <= max_overlap) & (sizes[:, None] + sizes[None, :] <= alpha)
    np.fill_diagonal(can, False)
    while budget.ops > 0:
        has_partner = can.any(axis=1)
        if not has_partner.any():
            break
        a = int(np.argmax(has_partner))                         # first group in list order
        b = int(np.argmax(np.where(can[a], union[a], -1)))      # densest partner, first on ties
        budget.spend(per_merge)
        counts[a] += counts[b]
        sizes[a] += sizes[b]
        members[a].extend(members[b])
        alive[b] = False
        can[b, :] = False
        can[:, b] = False
        overlap_a, union_a = _pair_tables(counts, a)
        union[a, :] = union_a
        union[:, a] = union_a
        row = alive & (overlap_a <= max_overlap) & (sizes[a] + sizes <= alpha)
        row[a] = False
        can[a, :] = row
        can[:, a] = row
    return [members[i] for i in np.flatnonzero(alive)]


def greedy_cc_labels(problem: CombineProblem, section: int = SECTION, budget: Budget | None = None) -> np.ndarray:
    """Column combining's packer as P1 labels (-1 for empty columns), within ``budget`` (default: none)."""
    mask = problem.mask
    N = mask.shape[1]
    labels = np.full(N, -1, dtype=np.int64)
    G = 0
    for start in range(0, N, section):
        cols = start + np.flatnonzero(mask[:, start:start + section].any(axis=0))
        if cols.size == 0:
            continue
        for group in pack_section(mask[:, cols], problem.alpha, problem.budget, budget):
            labels[cols[group]] = G
            G += 1
    return labels


def _run(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    return Outcome(solution=greedy_cc_labels(problem, budget=budget))


SOLVER = Solver(
    name="greedy-cc",
    run=_run,
    summary="column combining's packer (Kung et al. ASPLOS 2019): densest-partner merging in 256-column sections",
)
