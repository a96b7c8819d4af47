"""P1, min-width column combining: the solver table and the checked front door.

``solve(problem, solver, options, budget)`` computes the cheap lower bounds
(their pairwise tests charged to the budget), runs a registered solver
(passing them in ``options.bound``), checks its answer with
:func:`solvers.check.check_labels`, raises the bound to the best one proven,
and returns a :class:`~solvers.result.CombineResult`.  When the bounds
already equal the number of nonempty columns, singletons are the only
answer: they are returned as optimal without running the solver
(``stats["trivial"]`` says so).  The search gets the budget less
:func:`finish_ops`, the work kept for checking and for the caller's
encoding, with its deadline moved earlier to match, so the whole call ends
within the limit.  Nothing is remembered between calls: the same call gives
the same result whatever ran before it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..bounds import combine_lower_bound
from ..budget import OPS_PER_SECOND, Budget
from ..check import check_labels
from ..problem import CombineProblem, InvalidSolution, Options, Outcome, ProblemError
from ..registry import Solver, lookup
from ..result import CombineResult
from ..run import check_params, run_solver
from ..warm import warm_up
from .labels import canonical_labels, group_lists

__all__ = ["SOLVERS", "solve", "finish_ops", "FINISH_OPS_PER_CELL", "FINISH_OPS_PER_NONZERO", "canonical_labels",
           "group_lists"]

#: Operations kept back from the search (and its deadline moved earlier by as many seconds
#: of budget) for what follows it within the same time limit: the checker here, then the
#: caller's encoding and verification (arrange.pack), a few dense passes over the R x N
#: matrix and a few sorts and gathers of the nonzeros.  Measured on 1024 x 4096 and
#: 4096 x 11008 layers (2 cores, loaded 3-4x): 30 ns per cell plus 700 ns per nonzero,
#: so on an idle machine about 16 ns and 200 ns.
FINISH_OPS_PER_CELL = 16e-9 * OPS_PER_SECOND
FINISH_OPS_PER_NONZERO = 200e-9 * OPS_PER_SECOND

# Filled below from the algorithm modules; each registers name -> Solver.
SOLVERS: dict[str, Solver] = {}


def solve(problem: CombineProblem, solver="auto", options: Options | None = None,
          budget: Budget | None = None) -> CombineResult:
    """Solve P1 with a registered solver (name, ``module:function``, Solver or callable); a checked result.

    ``budget`` defaults to ``options.time_limit`` from now; a caller that has
    already spent part of the limit (validation, loading) passes its own.
    """
    warm_up()
    begin = time.perf_counter()
    options = options or Options()
    budget = budget or Budget.start(options.time_limit)
    spec = lookup(SOLVERS, solver, "combining")
    reserve = finish_ops(problem)
    search = Budget(budget.ops - reserve, budget.deadline - reserve / OPS_PER_SECOND)
    bound = combine_lower_bound(problem, search)
    if options.bound is not None:
        bound = max(bound, int(math.ceil(options.bound - 1e-9)))
    if bound >= problem.nonempty.size:
        outcome, stopped_by = _singletons(spec, problem, options), "done"
    else:
        outcome, stopped_by = run_solver(spec, SOLVERS, problem, options, search, bound=bound)
    budget.spend(search.spent + reserve)
    labels = canonical_labels(outcome.solution)
    pruned = check_labels(problem, labels)
    G = int(labels.max()) + 1
    bound_kind = "cheap"
    if outcome.bound is not None and math.ceil(outcome.bound - 1e-9) > bound:
        bound, bound_kind = int(math.ceil(outcome.bound - 1e-9)), outcome.bound_kind or spec.name
    if G < bound:
        raise InvalidSolution(f"{spec.name}: {G} groups is below the proven lower bound {bound}")
    pruned_mag = float(problem.magnitude[pruned].sum())
    # "optimal" is lexicographic (groups, then pruned magnitude): G == bound proves
    # it only when nothing can be pruned (budget 0) or nothing was.
    proven = outcome.proven or (G == bound and pruned_mag == 0.0)
    stats = dict(outcome.stats)
    stats["groups_optimal"] = proven or G == bound
    return CombineResult(
        objective=G, bound=bound, bound_kind=bound_kind, status="optimal" if proven else "feasible",
        seconds=time.perf_counter() - begin, solver=spec.name, iterations=outcome.iterations,
        ops=search.spent, stopped_by=stopped_by, fallback=outcome.fallback, stats=stats,
        groups=group_lists(labels, G), labels=labels, pruned=pruned, keep_mask=problem.mask & ~pruned,
        pruned_magnitude=pruned_mag, total_magnitude=float(problem.magnitude.sum()),
        shape=problem.shape, alpha=problem.alpha, gamma=problem.gamma,
    )


def finish_ops(problem: CombineProblem) -> float:
    """Operations kept back from the search for the work after it (per cell and per nonzero)."""
    R, N = problem.shape
    nnz = float(problem.incidence[1][0][-1])
    return FINISH_OPS_PER_CELL * float(R) * float(N) + FINISH_OPS_PER_NONZERO * nnz


def _singletons(spec: Solver, problem: CombineProblem, options: Options) -> Outcome:
    """The only answer when the lower bound equals the nonempty columns: each column alone (optimal).

    The solver is not run (its parameters and support are still checked, so
    the same call is refused or accepted whatever the instance).
    """
    check_params(options, SOLVERS, spec)
    reason = spec.unsupported(problem)
    if reason:
        raise ProblemError(f"solver {spec.name}: {reason}")
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    note = "no two columns can share a group (lower bound = nonempty columns): each column alone, optimal"
    return Outcome(labels, proven=True, stats={"trivial": note})


# The algorithm modules, imported after SOLVERS exists; "auto" last because the
# portfolio draws on the others.
from . import greedy_cc, ffd, dsatur, tabu, anneal, cpsat, portfolio  # noqa: E402

for _module in (greedy_cc, ffd, dsatur, tabu, anneal, cpsat, portfolio):
    SOLVERS[_module.SOLVER.name] = _module.SOLVER
