"""P2 grouping by large-neighbourhood search with exact assignment moves.

Each move takes one column out of each of B groups (a random slot per group;
B = all G groups up to :data:`BLOCK_GROUPS`, else a random block of that many),
then puts the B removed columns back, one per group, by a maximum-weight
linear assignment whose weight [i, g] is the kept magnitude of group g with
column i in the free slot. Putting every column back where it was is one
assignment, so a move never loses; it is kept when it is at least as good.
Blocks keep a move's cost at O(B^2 R) whatever the width of the layer. The
search stops after a fixed number of moves without improvement or when its
work budget (:mod:`solvers.budget`, from the time limit) cannot pay for the
next move: same seed, same answer.

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

__all__ = ["SOLVER", "lns", "max_assignment", "assignment_move", "move_ops", "AssignmentState", "BLOCK_GROUPS"]

# Moves without improvement before the search stops (counted in whole-layer
# equivalents: a block move counts B / G of a move).
PATIENCE = 60
# Hard cap on moves, for huge instances with a generous time limit.
_MAX_MOVES = 100_000
# Most groups one assignment move reassigns.
BLOCK_GROUPS = 128
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
    solver.add_arcs_with_cost(rows, cols, cost.ravel())
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"linear sum assignment failed with status {status}")
    return np.array([solver.right_mate(i) for i in range(G)], dtype=np.int64)


def move_ops(problem: GroupProblem, groups: int) -> float:
    """Operations one assignment move over ``groups`` groups is charged.

    It scores groups x groups insertions of O(R) each (vectorised: about 0.9
    operations of the other searches' cost models per term), then solves a
    groups x groups assignment (about 60 per arc) and the Python around it;
    fitted to measured move times (benchmarks/solvers/work_rate.py).
    """
    return (0.9 * problem.shape[0] + 60.0) * groups * groups + 3e4


def assignment_move(magT: np.ndarray, order: np.ndarray, gvals: np.ndarray, k: int, n: int,
                    removed: np.ndarray) -> float:
    """Reassign the columns at positions ``removed`` (one per group) optimally; in place.

    The move is applied when it is at least as good as the current order;
    returns its gain (>= 0, or the negative rounding loss when it was not applied).
    """
    values = insertion_values(magT, order, k, n, removed)
    to_group = max_assignment(values)
    groups = removed // k
    new_vals = values[np.arange(len(removed)), to_group]
    gain = float(new_vals.sum() - gvals[groups].sum())
    if gain >= 0:
        order[removed[to_group]] = order[removed]
        gvals[groups[to_group]] = new_vals
    return gain


class AssignmentState:
    """What the assignment-move searches (LNS, RIA's sweeps) share: the order, group values, block size."""

    def __init__(self, problem: GroupProblem, order: np.ndarray):
        self.magT = prepare(problem.magnitude)
        self.k, self.n, self.G = problem.k, problem.n, problem.num_groups
        self.block = min(self.G, BLOCK_GROUPS)
        self.order = order.copy()
        self.gvals = all_group_kept(self.magT, self.order, self.k, self.n)
        self.tol = tolerance(self.magT)

    def move(self, removed: np.ndarray) -> float:
        """:func:`assignment_move` on the positions ``removed``; its gain."""
        return assignment_move(self.magT, self.order, self.gvals, self.k, self.n, removed)


def lns(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget,
        patience: int = PATIENCE) -> Outcome:
    """Assignment-move LNS from ``order``; never worse than the start."""
    st = AssignmentState(problem, order)
    k, G, B = st.k, st.G, st.block
    rng = np.random.default_rng(seed)
    cost = move_ops(problem, B)
    # Patience in block moves: as many as cover the layer `patience` times.
    stale_limit = patience * -(-G // B)
    moves = improved = stale = 0
    interrupted = False
    try:
        while stale < stale_limit and moves < _MAX_MOVES and budget.ops >= cost and not budget.time_up:
            groups = np.sort(rng.choice(G, size=B, replace=False)) if B < G else np.arange(G)
            gain = st.move(groups * k + rng.integers(k, size=B))
            moves += 1
            budget.spend(cost)
            stale = 0 if gain > st.tol else stale + 1
            improved += gain > st.tol
    except KeyboardInterrupt:
        interrupted = True
    if budget.ops < cost:
        budget.use_up()
    return Outcome(st.order, iterations=moves, interrupted=interrupted,
                   stats={"method": "LNS with assignment moves", "block_groups": B,
                          "improving_moves": int(improved)})


SOLVER = Solver("lns", from_start(lns), "large-neighbourhood search; each move an exact linear assignment")
