"""The group-removal scheme P1's local searches share (tabu search, annealing).

Problem: P1 min-width combining (DESIGN.md section 3).

Method: from a feasible answer with G groups, empty the smallest group into
the others (each column where it adds the least excess, :func:`._kernels.drop_group`),
then let a local search ("repair") drive the total excess, sum over groups of
max(0, conflicts - budget) + max(0, size - alpha), to zero at G - 1 groups.
Success gives a feasible answer with one group fewer and the next group is
removed; the scheme stops at the lower bound, when a repair fails within its
iteration cap, or when the work budget (:mod:`solvers.work`, from the time
limit) is spent: the searches charge their work inside their kernels, so the
same seed gives the same answer. The answer is the last feasible one, so it is
never worse than the start.

Reference: the k-fixed penalty strategy of graph-colouring local search,
P. Galinier, A. Hertz, "A survey of local search methods for graph coloring",
Computers & Operations Research 33(9), 2006, doi:10.1016/j.cor.2005.07.028.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..problem import CombineProblem, Options, Outcome
from ..work import WorkBudget
from ._kernels import compact, drop_group, expand_labels, group_state
from .reduce import lower_bound

__all__ = ["Repair", "remove_groups"]

# repair(labels, counts, conflicts, sizes, G, csr, rng, budget) -> (feasible, iterations):
# minimise the excess of the G-group state in place, charging its work to the budget.
Repair = Callable[..., tuple]


def remove_groups(problem: CombineProblem, options: Options, labels0: np.ndarray, repair: Repair,
                  seed_salt: int, budget: WorkBudget) -> Outcome:
    """Remove groups one at a time from ``labels0`` (feasible) while ``repair`` restores feasibility."""
    keep, csr = compact(problem.mask)
    col_ptr, col_rows = csr[0], csr[1]
    best = np.ascontiguousarray(labels0[keep], dtype=np.int64)
    G = int(best.max()) + 1
    lb = lower_bound(problem)
    R = problem.shape[0]
    # xorshift64 state: same seed, same answer.
    rng = np.array([np.uint64(seed_salt) ^ np.uint64(options.seed + 1)], dtype=np.uint64)
    stats = {"start_groups": G, "iterations": 0}
    while G > lb and not budget.exhausted:
        work = best.copy()
        # rebuilding the group state and a search's (columns x groups) tables
        budget.spend(best.size * G + col_rows.size)
        counts, conflicts, sizes = group_state(work, col_ptr, col_rows, R, G)
        drop_group(int(np.argmin(sizes)), G, work, counts, conflicts, sizes, col_ptr, col_rows,
                   problem.alpha, problem.budget)
        feasible, iterations = repair(work, counts, conflicts, sizes, G - 1, csr, rng, budget)
        stats["iterations"] += int(iterations)
        if not feasible:
            break
        best, G = work, G - 1
    stats.update(ops=budget.spent, budget_hit=budget.ops <= 0, interrupted_by_time=budget.time_up)
    return Outcome(expand_labels(problem.shape[1], keep, best), stats=stats)
