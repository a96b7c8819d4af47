"""P2, fixed-ratio grouping (k, n): the solver table and the checked front door.

``solve(problem, solver, options)`` runs a registered solver, checks its column
order with :func:`solvers.check.kept_magnitude`, and returns a
:class:`~solvers.problem.GroupResult` with the rows bound (or a tighter proven one).
"""

from __future__ import annotations

import numpy as np

from ..bounds import rows_bound
from ..check import kept_magnitude
from ..problem import GroupProblem, GroupResult, InvalidSolution, Options
from ..registry import Solver, lookup, run_timed

__all__ = ["SOLVERS", "solve"]

SOLVERS: dict[str, Solver] = {}

# Relative slack for comparing float sums computed in different orders.
_REL_TOL = 1e-9


def solve(problem: GroupProblem, solver="auto", options: Options | None = None) -> GroupResult:
    """Solve P2 with a registered solver (name or callable) and return a checked result."""
    options = options or Options()
    spec = lookup(SOLVERS, solver, "grouping")
    outcome, seconds = run_timed(spec, problem, options)
    order = np.asarray(outcome.solution, dtype=np.int64)
    kept = kept_magnitude(problem, order)
    rows = rows_bound(problem)
    bound = rows
    if outcome.bound is not None:
        bound = min(bound, float(outcome.bound))
    tol = _REL_TOL * max(1.0, abs(bound))
    if kept > bound + tol:
        raise InvalidSolution(f"{spec.name}: kept {kept} exceeds the proven upper bound {bound}")
    proven = outcome.proven or kept >= bound - tol
    return GroupResult(
        order=order, kept=kept, upper_bound=max(bound, kept),
        identity_kept=kept_magnitude(problem, np.arange(problem.shape[1])),
        status="optimal" if proven else "feasible", seconds=seconds, solver=spec.name,
        k=problem.k, n=problem.n, stats=dict(outcome.stats), rows_bound=rows,
    )


# The algorithm modules, imported after SOLVERS exists; "auto" last because the
# portfolio draws on the others.
from . import identity, apex, anneal, matching, lns, cpsat, portfolio  # noqa: E402

for _solver in [identity.SOLVER, *apex.SOLVERS_HERE, anneal.SOLVER, matching.SOLVER, lns.SOLVER,
                cpsat.SOLVER, portfolio.SOLVER]:
    SOLVERS[_solver.name] = _solver
