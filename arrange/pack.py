"""``arrange.pack`` and ``arrange.permute``: the public entry points for P1 and P2.

Both validate the input, run a solver from :mod:`solvers` by name, and return
its checked result; ``pack`` additionally encodes the column-combined format
and verifies the packed values and select indices decode exactly.  The time
limit covers the whole call, validation to verified result, and ``seconds``
is the whole call.
"""

from __future__ import annotations

import time

import numpy as np

from solvers import Budget, CombineProblem, GroupProblem, Options, ProblemError
from solvers import combine as _combine
from solvers import group as _group
from solvers.warm import warm_up

from .errors import ArrangeError
from .formats import column_combine
from .verify import verify_packing

__all__ = ["pack", "permute", "pad_columns"]


def pack(W, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
         seed: int = 0, workers: int = 1, name: str = "W"):
    """Min-width column combining (P1) of a sparse matrix.

    Parameters
    ----------
    W : 2-D array (zeros are pruned weights) or bool mask.
    alpha : max columns per group (fan-in of a combined column).
    gamma : conflict budget; each group may prune floor(gamma * R) entries.
    solver : a name from ``arrange solvers`` (``solvers.combine.SOLVERS``) or a callable.

    Returns
    -------
    solvers.CombineResult with ``.groups``, ``.num_groups``, ``.lower_bound``,
    ``.status``, ``.pruned``, ``.compression``, ``.seconds`` and ``.packed``
    (the verified :class:`~arrange.formats.column_combine.ColumnCombined`).

    Raises
    ------
    ArrangeError : bad matrix or parameters (one line naming the fault).
    """
    warm_up()
    begin = time.perf_counter()
    try:
        options = Options(time_limit=time_limit, seed=seed, workers=workers)
        budget = Budget.start(options.time_limit, begin + options.time_limit)
        problem = CombineProblem.from_weights(W, alpha=alpha, gamma=gamma, name=name)
        result = _combine.solve(problem, solver, options, budget)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None
    values = np.asarray(W)
    if values.dtype == bool:
        values = values.astype(np.float64)
    result.packed = column_combine.encode_groups(values, result.groups, problem.alpha)
    verify_packing(values, result.packed, problem.gamma)
    result.seconds = time.perf_counter() - begin
    return result


def pad_columns(W, k: int):
    """Pad W with empty columns to a multiple of k; returns (padded, number added)."""
    W = np.asarray(W)
    if W.ndim != 2:
        raise ArrangeError(f"expected a 2-D matrix, got shape {W.shape}")
    extra = (-W.shape[1]) % k if k >= 1 else 0
    if extra:
        W = np.concatenate([W, np.zeros((W.shape[0], extra), dtype=W.dtype)], axis=1)
    return W, extra


def permute(W, k: int, n: int = 1, solver="auto", time_limit: float = 10.0, seed: int = 0,
            workers: int = 1, name: str = "W"):
    """Fixed-ratio grouping (P2): a column order whose runs of k keep their top n.

    N not divisible by k is padded with empty columns (``.padded`` says how many;
    ``.order`` then covers the padded matrix, padding indices >= N).
    Returns solvers.GroupResult with ``.order``, ``.kept``, ``.upper_bound``,
    ``.efficacy``, ``.status``, ``.seconds``.
    """
    warm_up()
    begin = time.perf_counter()
    try:
        options = Options(time_limit=time_limit, seed=seed, workers=workers)
        budget = Budget.start(options.time_limit, begin + options.time_limit)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ProblemError(f"Expected integer k >= 2, got {k!r}")
        if k > np.asarray(W).shape[-1]:
            raise ProblemError(f"Expected k <= number of columns {np.asarray(W).shape[-1]}, got k={k}")
        padded, extra = pad_columns(W, int(k))
        problem = GroupProblem.from_weights(padded, k=k, n=n, name=name)
        result = _group.solve(problem, solver, options, budget)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None
    result.padded = extra
    result.keep_mask = result.keep_mask[:, :padded.shape[1] - extra]
    result.seconds = time.perf_counter() - begin
    return result
