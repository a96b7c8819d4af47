"""Solver registries: name -> Solver, one table per problem (networkx-style strategy tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .problem import Options, Outcome, ProblemError

__all__ = ["Solver", "lookup"]


@dataclass(frozen=True)
class Solver:
    """A registered solver: ``run(problem, options) -> Outcome``."""

    name: str
    run: Callable[..., Outcome]
    summary: str
    exact: bool = False  # can prove optimality


def lookup(table: dict, solver, problem_name: str) -> Solver:
    """The Solver for a name (or a callable wrapped as one); a clear error otherwise."""
    if isinstance(solver, Solver):
        return solver
    if callable(solver):
        return Solver(getattr(solver, "__name__", "custom"), solver, "user-supplied solver")
    if solver not in table:
        allowed = ", ".join(sorted(table))
        raise ProblemError(f"unknown {problem_name} solver {solver!r}; allowed: {allowed}")
    return table[solver]


def run_timed(spec: Solver, problem, options: Options):
    """Run a solver and time it; KeyboardInterrupt is left to the solver to handle."""
    import time

    start = time.perf_counter()
    outcome = spec.run(problem, options)
    return outcome, time.perf_counter() - start
