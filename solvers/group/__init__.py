"""P2, fixed-ratio grouping (k, n): the solver table and the checked front door.

``solve(problem, solver, options, budget)`` runs a registered solver with the
rows bound as the known bound, checks its column order with
:func:`solvers.check.kept_magnitude`, and returns a
:class:`~solvers.result.GroupResult` with the best proven bound (the rows
bound, or a tighter one a solver proved) and which one it is.  A matrix that
is a single group (N = k) has one answer, which is returned as optimal.
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds import rows_bound
from ..budget import Budget
from ..check import kept_and_mask, kept_magnitude
from ..problem import GroupProblem, InvalidSolution, Options, Outcome
from ..registry import Solver, lookup
from ..result import GroupResult
from ..run import check_params, run_solver
from ..warm import warm_up

__all__ = ["SOLVERS", "solve"]

SOLVERS: dict[str, Solver] = {}

# Relative slack for comparing float sums computed in different orders.
_REL_TOL = 1e-9


def solve(problem: GroupProblem, solver="auto", options: Options | None = None,
          budget: Budget | None = None) -> GroupResult:
    """Solve P2 with a registered solver (name, ``module:function``, Solver or callable); a checked result."""
    warm_up()
    begin = time.perf_counter()
    options = options or Options()
    budget = budget or Budget.start(options.time_limit)
    spec = lookup(SOLVERS, solver, "grouping")
    N = problem.shape[1]
    rows = rows_bound(problem)
    bound, bound_kind = rows, "rows"
    if options.bound is not None and options.bound < bound:
        bound, bound_kind = float(options.bound), "given"
    if problem.num_groups == 1:
        check_params(options, SOLVERS, spec)
        outcome, stopped_by = Outcome(np.arange(N, dtype=np.int64), proven=True,
                                      stats={"method": "a single group: every order keeps the same"}), "done"
    else:
        outcome, stopped_by = run_solver(spec, SOLVERS, problem, options, budget, bound=bound)
    order = np.asarray(outcome.solution, dtype=np.int64)
    kept, keep_mask = kept_and_mask(problem, order)
    if outcome.bound is not None and outcome.bound < bound:
        bound, bound_kind = float(outcome.bound), outcome.bound_kind or spec.name
    tol = _REL_TOL * max(1.0, abs(bound))
    if kept > bound + tol:
        raise InvalidSolution(f"{spec.name}: kept {kept} exceeds the proven upper bound {bound}")
    proven = outcome.proven or kept >= bound - tol
    return GroupResult(
        objective=kept, bound=max(bound, kept), bound_kind=bound_kind,
        status="optimal" if proven else "feasible", seconds=time.perf_counter() - begin, solver=spec.name,
        iterations=outcome.iterations, ops=budget.spent, stopped_by=stopped_by, fallback=outcome.fallback,
        stats=dict(outcome.stats), order=order, keep_mask=keep_mask,
        identity_kept=kept_magnitude(problem, np.arange(N)), k=problem.k, n=problem.n, rows_bound=rows,
    )


# The algorithm modules, imported after SOLVERS exists; "auto" last because the
# portfolio draws on the others.
from . import identity, apex, anneal, matching, lns, ria, cpsat, portfolio  # noqa: E402

for _solver in [identity.SOLVER, *apex.SOLVERS_HERE, anneal.SOLVER, matching.SOLVER, lns.SOLVER, ria.SOLVER,
                cpsat.SOLVER, portfolio.SOLVER]:
    SOLVERS[_solver.name] = _solver
