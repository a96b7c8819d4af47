"""Solver tables: name -> Solver, one table per problem (networkx-style strategy tables).

A :class:`Solver` is a function ``run(problem, options, budget) -> Outcome``
with a name, a one-line summary, whether it can prove optimality, the frozen
dataclass of its parameters (if any) and a ``requires`` test saying why it
cannot take a given problem.  The front doors never call ``run`` on a problem
the solver does not support: they raise a one-line ProblemError with its
reason, and the benchmark reports "n/a" with it.

Plugins: :func:`register` adds a solver to a table; :func:`load_solver` turns
``"package.module:attribute"`` or ``"path/to/file.py:attribute"`` into a
Solver (the attribute is a Solver, or a function wrapped as one), so a
user's own solver runs through the same checked front door and benchmark.
A plain function may take ``(problem, options, budget)`` or, when it does not
need the work budget, ``(problem, options)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .problem import ProblemError

__all__ = ["Solver", "register", "lookup", "load_solver", "load_attribute"]


@dataclass(frozen=True)
class Solver:
    """A registered solver: ``run(problem, options, budget) -> Outcome``."""

    name: str
    run: Callable
    summary: str
    exact: bool = False                  # can prove optimality
    params: type | None = None           # its frozen parameter dataclass, read via Options.params_for
    requires: Callable | None = None     # requires(problem) -> None, or why the problem is not supported

    def supports(self, problem) -> bool:
        """True when the solver can take ``problem``."""
        return self.unsupported(problem) is None

    def unsupported(self, problem) -> str | None:
        """Why the solver cannot take ``problem`` (one line), or None."""
        return None if self.requires is None else self.requires(problem)


def register(table: dict, solver: Solver, replace: bool = False) -> Solver:
    """Add ``solver`` to ``table`` under its name; ProblemError if the name is taken (unless ``replace``)."""
    if not isinstance(solver, Solver):
        raise ProblemError(f"register expects a Solver, got {type(solver).__name__}")
    if not solver.name or ":" in solver.name:
        raise ProblemError(f"solver names must be non-empty and contain no ':', got {solver.name!r}")
    if solver.name in table and not replace:
        raise ProblemError(f"a solver named {solver.name!r} is already registered; pass replace=True")
    table[solver.name] = solver
    return solver


def _takes_budget(fn) -> bool:
    """True unless ``fn`` accepts only two positional arguments (problem, options)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 3


def _wrap(obj, name: str) -> Solver:
    if isinstance(obj, Solver):
        return obj
    if callable(obj):
        doc = (getattr(obj, "__doc__", None) or "user-supplied solver").strip().splitlines()[0]
        run = obj if _takes_budget(obj) else (lambda problem, options, budget: obj(problem, options))
        return Solver(getattr(obj, "__name__", name), run, doc)
    raise ProblemError(f"{name} is a {type(obj).__name__}, not a Solver or a function")


def load_attribute(spec: str, what: str = "solver"):
    """The object named by ``"module:attribute"`` or ``"file.py:attribute"``; ProblemError otherwise.

    Generic (any attribute of any module): :func:`load_solver` and the arrange
    package's user callables (evaluators, fine-tuners) load through it.
    """
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ProblemError(f"expected a {what} as module:function or file.py:function, got {spec!r}")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ProblemError(f"{what} file {where} does not exist")
            module_name = f"_arrange_user_{path.stem}"
            loader = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[module_name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ProblemError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's module can fail in any way on import
        raise ProblemError(f"cannot import {what} module {where}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, attr):
        raise ProblemError(f"module {where} has no attribute {attr!r}")
    return getattr(module, attr)


def load_solver(spec: str) -> Solver:
    """The Solver named by ``"module:attribute"`` or ``"file.py:attribute"``; ProblemError otherwise."""
    return _wrap(load_attribute(spec, "solver"), spec)


def lookup(table: dict, solver, problem_name: str) -> Solver:
    """The Solver for a name, a ``module:function`` spec, a Solver or a function; a clear error otherwise."""
    if isinstance(solver, Solver):
        return solver
    if callable(solver):
        return _wrap(solver, "custom")
    if isinstance(solver, str) and ":" in solver:
        return load_solver(solver)
    if solver not in table:
        allowed = ", ".join(sorted(table))
        raise ProblemError(f"unknown {problem_name} solver {solver!r}; allowed: {allowed}, "
                           f"or module:function for your own")
    return table[solver]
