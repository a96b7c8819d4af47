"""A warm-started column-generation master LP, shared by the P1 and P2 LP bounds.

Problem: both LP bounds are the relaxation of a model over an exponential
family of groups S (sets of columns, the "items"):

- P1 set covering:      min sum_S y_S          s.t. sum_{S containing j} y_S >= 1,  y >= 0;
- P2 set partitioning:  max sum_S c_S y_S      s.t. sum_{S containing j} y_S  = 1,  y >= 0.

Only a few groups are ever needed; column generation keeps a restricted master
over the groups found so far and asks a pricing problem for groups its duals
pi value more than they cost.

Method: ONE GLOP model per bound that grows by columns.  With GLOP's presolve
off, a re-solve after adding columns starts from the previous optimal basis
(the old basis stays primal feasible, so the primal simplex continues from
it) instead of from scratch: on a 2048-row covering master, a few hundred
pivots per round instead of ten thousand.  Every re-solve is charged to the
work budget by GLOP's own pivot count, which is deterministic, times the size
of the master (:data:`OPS_PER_PIVOT_NNZ` per nonzero per pivot), so
when the rounds stop depends on the instance only, never on the clock.

Bounds that hold when the rounds are cut short (``upper`` is any proven upper
bound on the pricing problem's optimum under the duals pi):

- covering (Farley): for pi >= 0, pi / max(1, v) with v >= max_S pi(S) is
  feasible for the dual of the full LP, so sum(pi) / max(1, v) <= LP <= OPT;
- partitioning (Lagrangian): every partition has exactly m = N / k groups, so
  its value is sum_j pi_j + sum_{S in it} (c_S - pi(S)) <= sum(pi) + m v for
  any pi and v >= max_S (c_S - pi(S)).

Reference: G. Desaulniers, J. Desrosiers, M. M. Solomon (eds.), "Column
Generation", Springer 2005 (chapter 1, Lagrangian bounds of the master);
A. A. Farley, "A note on bounding a class of linear programming problems,
including cutting stock problems", Operations Research 38(5), 1990,
doi:10.1287/opre.38.5.922; GLOP parameters ``use_preprocessing`` (OR-Tools
``glop/parameters.proto``).
"""

from __future__ import annotations

import numpy as np
from ortools.linear_solver import pywraplp

from .budget import OPS_PER_SECOND, Budget

__all__ = ["Master", "farley_bound", "partition_bound", "OPS_PER_PIVOT_NNZ"]

#: Operations charged per simplex pivot per nonzero of the master (its rows plus the
#: entries of its columns): GLOP takes 7-40 ns per pivot and nonzero on covering
#: masters of 256-2048 rows and 3000-7000 columns here (most near 10 ns); 20 ns of
#: budget each, so most re-solves end on the budget, not the clock.
OPS_PER_PIVOT_NNZ = 20e-9 * OPS_PER_SECOND
# Presolve off: the only setting under which GLOP re-solves from the previous basis.
_GLOP_PARAMS = "use_preprocessing: false"


class Master:
    """The restricted master LP over the groups added so far, in one GLOP model.

    ``sense`` "cover" (min sum y, rows >= 1) or "partition" (max sum c y, rows = 1).
    """

    def __init__(self, n_items: int, sense: str = "cover"):
        if sense not in ("cover", "partition"):
            raise ValueError(f"sense must be 'cover' or 'partition', got {sense!r}")
        self.sense = sense
        self.n = n_items
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        self.lp.SetSolverSpecificParametersAsString(_GLOP_PARAMS)
        upper = self.lp.infinity() if sense == "cover" else 1.0
        self.rows = [self.lp.Constraint(1.0, upper) for _ in range(n_items)]
        self.objective = self.lp.Objective()
        if sense == "cover":
            self.objective.SetMinimization()
        else:
            self.objective.SetMaximization()
        self.groups: list[tuple] = []
        self._seen: set = set()
        self.pivots = 0
        self.nnz = n_items
        self.value = float("nan")

    def __len__(self) -> int:
        return len(self.groups)

    def __contains__(self, group) -> bool:
        return tuple(group) in self._seen

    def add(self, group, cost: float = 1.0) -> bool:
        """Add the column of ``group`` (sorted item indices); False if it is already in."""
        group = tuple(int(j) for j in group)
        if group in self._seen:
            return False
        self._seen.add(group)
        self.groups.append(group)
        self.nnz += len(group)
        var = self.lp.NumVar(0.0, self.lp.infinity(), "")
        self.objective.SetCoefficient(var, float(cost))
        for j in group:
            self.rows[j].SetCoefficient(var, 1.0)
        return True

    def solve(self, budget: Budget) -> np.ndarray | None:
        """Re-solve from the last basis; the duals pi (clipped at 0 for covering), or None.

        None when GLOP did not reach an optimum (the wall-clock cap, passed as
        GLOP's time limit, cut it: the caller's budget is then spent).
        """
        self.lp.SetTimeLimit(int(min(max(budget.seconds_left, 0.001), 1e6) * 1000))
        status = self.lp.Solve()
        pivots = int(self.lp.iterations())
        self.pivots += pivots
        budget.spend(OPS_PER_PIVOT_NNZ * (pivots + 1) * self.nnz)
        if status != pywraplp.Solver.OPTIMAL:
            return None
        self.value = float(self.objective.Value())
        pi = np.array([c.dual_value() for c in self.rows])
        return np.maximum(pi, 0.0) if self.sense == "cover" else pi


def farley_bound(pi: np.ndarray, upper: float) -> float:
    """sum(pi) / max(1, upper): a lower bound on the covering LP when pi >= 0 and upper >= max_S pi(S)."""
    return float(pi.sum()) / max(1.0, upper)


def partition_bound(pi: np.ndarray, upper: float, groups: int) -> float:
    """sum(pi) + groups * upper: an upper bound on any partition into ``groups`` groups when upper >= max_S (c_S - pi(S))."""
    return float(pi.sum()) + groups * float(upper)
