"""The group-removal scheme P1's local searches share (tabu search, annealing).

Problem: P1 min-width combining (DESIGN.md section 3).

Method: from a feasible answer with G groups, empty the smallest group into
the others (each column where it adds the least excess, :func:`._kernels.drop_group`),
then let a local search ("repair") drive the total excess, sum over groups of
max(0, conflicts - budget) + max(0, size - alpha), to zero at G - 1 groups.
Success gives a feasible answer with one group fewer and the next group is
removed; the scheme stops at the lower bound, when a repair fails within its
iteration cap, or when the work budget (:mod:`solvers.budget`, from the time
limit) is spent: the searches charge their work inside their kernels, so the
same seed gives the same answer. The answer is the last feasible one, so it is
never worse than the start, and Ctrl-C returns it too.

A repair is a kernel run in chunks (:func:`run_repair`): ``step(it, n, ops_left)
-> (it, excess, ops)`` does up to n iterations from iteration it, stops itself
once it has cost ops_left operations, and returns the excess left.

Reference: the k-fixed penalty strategy of graph-colouring local search,
P. Galinier, A. Hertz, "A survey of local search methods for graph coloring",
Computers & Operations Research 33(9), 2006, doi:10.1016/j.cor.2005.07.028.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..budget import Budget
from ..chunks import run_in_chunks
from ..problem import CombineProblem, Options, Outcome
from ..rng import new_state
from ._kernels import drop_group, expand_labels, group_state
from .reduce import known_bound

__all__ = ["Repair", "remove_groups", "run_repair"]

# repair(labels, counts, conflicts, sizes, G, csr, rng, budget) -> (feasible, iterations):
# minimise the excess of the G-group state in place, charging its work to the budget.
Repair = Callable[..., tuple]


def run_repair(step: Callable, cap: int, chunk: int, budget: Budget) -> tuple[bool, int]:
    """Run a repair kernel ``step(it, n, ops_left) -> (it, excess, ops)`` in chunks; (feasible, iterations)."""
    def steps(it, n):
        it, total, ops = step(it, n, budget.ops)
        budget.spend(ops)
        return it, total

    it, total = run_in_chunks(steps, cap, chunk, budget)
    return total == 0, it


def remove_groups(problem: CombineProblem, options: Options, labels0: np.ndarray, repair: Repair,
                  seed_salt: int, budget: Budget) -> Outcome:
    """Remove groups one at a time from ``labels0`` (feasible) while ``repair`` restores feasibility."""
    keep, csr = problem.incidence
    col_ptr, col_rows = csr[0], csr[1]
    best = np.ascontiguousarray(labels0[keep], dtype=np.int64)
    G = int(best.max()) + 1
    lb = known_bound(problem, options)
    R = problem.shape[0]
    rng = new_state(options.seed, seed_salt)
    start_groups, iterations, interrupted = G, 0, False
    try:
        while G > lb and not budget.exhausted:
            work = best.copy()
            # rebuilding the group state and a search's (columns x groups) tables
            budget.spend(best.size * G + col_rows.size)
            counts, conflicts, sizes = group_state(work, col_ptr, col_rows, R, G)
            drop_group(int(np.argmin(sizes)), G, work, counts, conflicts, sizes, col_ptr, col_rows,
                       problem.alpha, problem.budget)
            feasible, its = repair(work, counts, conflicts, sizes, G - 1, csr, rng, budget)
            iterations += int(its)
            if not feasible:
                break
            best, G = work, G - 1
    except KeyboardInterrupt:
        interrupted = True
    return Outcome(expand_labels(problem.shape[1], keep, best), iterations=iterations, interrupted=interrupted,
                   stats={"start_groups": start_groups})
