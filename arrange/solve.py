"""Run a P1 or P2 solver on one matrix: validate, pad, solve by name, check.

The layer under :mod:`arrange.pack` and :mod:`arrange.formats`: it imports
only :mod:`solvers`, so the formats can solve their own problems without
importing the pack front door that imports them.  A :class:`solvers.ProblemError`
(bad matrix or parameters) becomes a one-line :class:`~arrange.errors.ArrangeError`.
The time limit covers the call from validation on, and the kernels are
compiled (or loaded from Numba's cache) before its clock starts.
Problems and their definitions: DESIGN.md section 3.
"""

from __future__ import annotations

import time

import numpy as np

from solvers import Budget, CombineProblem, GroupProblem, Options, ProblemError
from solvers import combine as _combine
from solvers import group as _group
from solvers.registry import lookup
from solvers.run import check_params
from solvers.warm import warm_up

from .errors import ArrangeError, is_int

__all__ = ["check_solver", "solve_combine", "permute", "pad_columns", "importance"]


def check_solver(problem: str, solver, params=None) -> None:
    """A one-line ArrangeError now, before any layer is touched, for an unknown solver or bad parameters.

    ``problem`` is "p1" or "p2"; ``solver`` a name, ``module:function`` or callable.
    """
    table = _combine.SOLVERS if problem == "p1" else _group.SOLVERS
    try:
        spec = lookup(table, solver, "combining" if problem == "p1" else "grouping")
        check_params(Options(params=params or {}), table, spec)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None


def solve_combine(W, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
                  seed: int = 0, workers: int = 1, name: str = "W", params=None):
    """P1 on W (see :func:`arrange.pack`): the checked :class:`solvers.CombineResult`, not yet encoded."""
    warm_up()
    begin = time.perf_counter()
    try:
        options = Options(time_limit=time_limit, seed=seed, workers=workers, params=params or {})
        budget = Budget.start(options.time_limit, begin + options.time_limit)
        problem = CombineProblem.from_weights(W, alpha=alpha, gamma=gamma, name=name)
        return _combine.solve(problem, solver, options, budget)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None


def pad_columns(W, k: int):
    """Pad W with empty columns to a multiple of k; returns (padded, number added)."""
    W = np.asarray(W)
    if W.ndim != 2:
        raise ArrangeError(f"expected a 2-D matrix, got shape {W.shape}")
    extra = (-W.shape[1]) % k if k >= 1 else 0
    if extra:
        W = np.concatenate([W, np.zeros((W.shape[0], extra), dtype=W.dtype)], axis=1)
    return W, extra


def importance(W, score=None, name: str = "W") -> np.ndarray:
    """The matrix P2 maximises: ``W`` itself (its magnitudes), or the user's score where W is nonzero.

    ``score`` is a nonnegative matrix of W's shape (e.g. Wanda's |W| * ||X_j||
    or RIA's relative importance, from the user's calibration activations), or
    a vector of one value per input channel (column), e.g. activation norms
    ||X_j||, which scales |W| column by column.  Entries where W is zero (already
    pruned) score zero.
    """
    if score is None:
        return W
    W = np.asarray(W)
    try:
        S = np.asarray(score, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} score: not a numeric array") from None
    if W.ndim != 2:
        raise ProblemError(f"{name}: expected a 2-D matrix, got shape {W.shape}")
    if S.ndim == 1 and S.shape[0] == W.shape[1]:
        S = np.abs(W.astype(np.float64)) * S[None, :]
    elif S.shape != W.shape:
        raise ProblemError(f"{name} score: expected shape {W.shape} or ({W.shape[1]},), got {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ProblemError(f"{name} score: {int(np.count_nonzero(~np.isfinite(S)))} NaN/inf entries")
    if np.any(S < 0):
        raise ProblemError(f"{name} score: {int(np.count_nonzero(S < 0))} negative entries; scores are >= 0")
    return np.where(W != 0, S, 0.0)


def permute(W, k: int, n: int = 1, solver="auto", time_limit: float = 10.0, seed: int = 0,
            workers: int = 1, name: str = "W", params=None, score=None):
    """Fixed-ratio grouping (P2): a column order whose runs of k keep their top n.

    N not divisible by k is padded with empty columns (``.padded`` says how many;
    ``.order`` then covers the padded matrix, padding indices >= N).
    Returns solvers.GroupResult with ``.order``, ``.kept``, ``.upper_bound``,
    ``.efficacy``, ``.status``, ``.seconds`` (the whole call) and ``.keep_mask``
    (bool, W's shape: the entries the order keeps). ``params``: per-solver
    parameters, ``{"lns": {"patience": 30}}`` (see ``arrange solvers``).
    ``score``: what a kept entry is worth instead of |W| (see :func:`importance`):
    a matrix of W's shape or one value per column; kept, bounds and efficacy are
    then in score units and each cell keeps its n highest-scoring entries.
    """
    warm_up()
    begin = time.perf_counter()
    try:
        options = Options(time_limit=time_limit, seed=seed, workers=workers, params=params or {})
        budget = Budget.start(options.time_limit, begin + options.time_limit)
        if not is_int(k) or k < 2:
            raise ProblemError(f"Expected integer k >= 2, got {k!r}")
        if k > np.asarray(W).shape[-1]:
            raise ProblemError(f"Expected k <= number of columns {np.asarray(W).shape[-1]}, got k={k}")
        padded, extra = pad_columns(importance(W, score, name), int(k))
        problem = GroupProblem.from_weights(padded, k=k, n=n, name=name)
        result = _group.solve(problem, solver, options, budget)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None
    result.padded = extra
    result.keep_mask = result.keep_mask[:, :padded.shape[1] - extra]
    result.seconds = time.perf_counter() - begin
    return result
