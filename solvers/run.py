"""Running one registered solver the same way in every front door.

Before any work: the per-solver parameters are checked against the solvers'
parameter dataclasses (a misspelt ``tabu.tenur`` is a one-line error, not
silently ignored), and the solver is asked whether it supports the problem.
After it: why the run stopped, from the budget and the outcome
(:data:`solvers.result.STOPS`).
"""

from __future__ import annotations

import dataclasses

from .budget import Budget
from .problem import InvalidSolution, Options, Outcome, ProblemError
from .registry import Solver

__all__ = ["check_params", "run_solver", "stopped_by"]


def check_params(options: Options, table: dict, spec: Solver) -> None:
    """Validate every ``options.params`` entry against the named solver's parameter dataclass."""
    for name in options.params:
        target = spec if name == spec.name else table.get(name)
        if target is None:
            raise ProblemError(f"parameters given for unknown solver {name!r}; allowed: {', '.join(sorted(table))}")
        if target.params is None:
            raise ProblemError(f"solver {name!r} takes no parameters")
        options.params_for(name, target.params)


def stopped_by(outcome: Outcome, budget: Budget) -> str:
    """"interrupt" (Ctrl-C), "clock" (the deadline cut the search), "budget" or "done"."""
    if outcome.interrupted and not budget.time_up:
        return "interrupt"
    if outcome.interrupted or (budget.time_up and budget.ops > 0):
        return "clock"
    return "budget" if budget.ops <= 0 else "done"


def run_solver(spec: Solver, table: dict, problem, options: Options, budget: Budget,
               bound: float | None = None) -> tuple[Outcome, str]:
    """Check, then run ``spec`` on ``problem`` with ``bound`` as the known bound; (outcome, why it stopped)."""
    check_params(options, table, spec)
    reason = spec.unsupported(problem)
    if reason:
        raise ProblemError(f"solver {spec.name}: {reason}")
    if bound is not None:
        options = dataclasses.replace(options, bound=bound)
    outcome = spec.run(problem, options, budget)
    if not isinstance(outcome, Outcome):
        raise InvalidSolution(f"solver {spec.name} returned a {type(outcome).__name__}, not an Outcome")
    return outcome, stopped_by(outcome, budget)
