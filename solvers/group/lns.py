"""P2 grouping by large-neighbourhood search with exact assignment moves.

Each move takes one column out of every group (a random slot per group), then
puts the G removed columns back, one per group, by a maximum-weight linear
assignment whose weight [i, g] is the kept magnitude of group g with column i
in the free slot. Putting every column back where it was is one assignment, so
a move never loses; it is kept when it is at least as good. The search stops
after a fixed number of moves without improvement or when its work budget
(:mod:`solvers.budget`, from the time limit) is spent: same seed, same answer.

Reference: P. Shaw, "Using Constraint Programming and Local Search Methods to
Solve Vehicle Routing Problems", CP 1998 (large-neighbourhood search);
assignment by OR-Tools' SimpleLinearSumAssignment (Goldberg-Kennedy cost scaling).
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import linear_sum_assignment

from ..budget import Budget
from ..problem import GroupProblem, Outcome
from ..registry import Solver
from ._kernels import all_group_kept, insertion_values, prepare, tolerance
from .start import from_start

__all__ = ["SOLVER", "lns", "max_assignment"]

# Moves without improvement before the search stops.
PATIENCE = 60
# Hard cap on moves, for huge instances with a generous time limit.
_MAX_MOVES = 100_000
# Integer resolution of the assignment costs (OR-Tools needs int64; its cost
# scaling multiplies costs by about the node count, so stay far below 2**63).
_COST_SCALE = 2.0 ** 40


def max_assignment(values: np.ndarray) -> np.ndarray:
    """Row -> column of a maximum-weight perfect assignment of a square matrix.

    Costs are scaled to integers; ties and rounding below 2**-40 of the largest
    value may pick a different assignment, which callers re-score exactly.
    """
    G = values.shape[0]
    if G == 1:
        return np.zeros(1, dtype=np.int64)
    span = float(values.max() - values.min())
    scale = _COST_SCALE / (G * span) if span > 0 else 0.0
    cost = np.rint((values.max() - values) * scale).astype(np.int64)
    rows, cols = np.divmod(np.arange(G * G, dtype=np.int32), np.int32(G))
    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows.astype(np.int32), cols.astype(np.int32), cost.ravel())
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"linear sum assignment failed with status {status}")
    return np.array([solver.right_mate(i) for i in range(G)], dtype=np.int64)


def lns(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget,
        patience: int = PATIENCE) -> Outcome:
    """Assignment-move LNS from ``order``; never worse than the start."""
    magT = prepare(problem.magnitude)
    k, n, G = problem.k, problem.n, problem.num_groups
    rng = np.random.default_rng(seed)
    order = order.copy()
    gvals = all_group_kept(magT, order, k, n)
    total = gvals.sum()
    tol = tolerance(magT)
    base = np.arange(G, dtype=np.int64) * k
    # A move scores G x G insertions of O(k R) each (vectorised: about 0.22 operations of
    # the other searches' cost models per term) plus a fixed cost for the assignment and
    # the Python around it; fitted to measured move times (benchmarks/solvers/work_rate.py).
    move_ops = 0.22 * G * G * k * problem.shape[0] + 1e5
    moves = improved = stale = 0
    interrupted = False
    try:
        while stale < patience and moves < _MAX_MOVES and not budget.exhausted:
            removed = base + rng.integers(k, size=G)
            values = insertion_values(magT, order, k, n, removed)
            to_group = max_assignment(values)
            new_vals = values[np.arange(G), to_group]
            new_total = new_vals.sum()
            moves += 1
            budget.spend(move_ops)
            stale = 0 if new_total > total + tol else stale + 1
            if new_total >= total:
                improved += new_total > total + tol
                cols = order[removed]
                order[removed[to_group]] = cols
                gvals[to_group] = new_vals
                total = new_total
    except KeyboardInterrupt:
        interrupted = True
    return Outcome(order, iterations=moves, interrupted=interrupted,
                   stats={"method": "LNS with assignment moves", "improving_moves": int(improved)})


SOLVER = Solver("lns", from_start(lns), "large-neighbourhood search; each move an exact linear assignment")
