"""Argument types for the command lines: parse one value or raise a one-line error."""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "nonneg_float", "positive_float", "sparsity", "schedule", "solver_param", "params_dict"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = nonneg_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def sparsity(text: str) -> float:
    value = nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def schedule(text: str) -> list:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sparsities must be in [0, 1), got {text}")
    return values


def solver_param(text: str) -> tuple:
    """``SOLVER.NAME=VALUE`` -> (solver, name, value); the value as a Python literal (int, float, bool) or text."""
    import ast

    key, sep, raw = text.partition("=")
    solver, dot, name = key.strip().rpartition(".")
    if not sep or not dot or not solver or not name:
        raise argparse.ArgumentTypeError(f"expected SOLVER.NAME=VALUE (e.g. tabu.base_iters=5000), got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return solver, name.strip(), value


def params_dict(items) -> dict:
    """Parsed ``--param`` values -> ``{solver: {name: value}}`` (solvers.Options.params)."""
    out: dict = {}
    for solver, name, value in items or ():
        out.setdefault(solver, {})[name] = value
    return out
