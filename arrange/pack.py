"""``arrange.pack`` and ``arrange.permute``: the public entry points for P1 and P2.

Both validate the input, run a solver from :mod:`solvers` by name, and return
its checked result (:mod:`arrange.solve`); ``pack`` additionally encodes the
column-combined format and verifies that the packed values and select indices
decode exactly (:func:`arrange.formats.column_combine.verify`).  The time
limit covers the whole call, validation to verified result, and ``seconds``
is the whole call.
"""

from __future__ import annotations

import time

from solvers.warm import warm_up

from .formats import column_combine
from .solve import pad_columns, permute, solve_combine

__all__ = ["pack", "permute", "pad_columns"]


def pack(W, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
         seed: int = 0, workers: int = 1, name: str = "W", params=None):
    """Min-width column combining (P1) of a sparse matrix.

    Parameters
    ----------
    W : 2-D array (zeros are pruned weights) or bool mask.
    alpha : max columns per group (fan-in of a combined column).
    gamma : conflict budget; each group may prune floor(gamma * R) entries.
    solver : a name from ``arrange solvers`` (``solvers.combine.SOLVERS``), ``"module:function"``
        or ``"file.py:function"`` (your own solver), a :class:`solvers.Solver` or a callable
        ``(problem, options, budget) -> solvers.Outcome``.
    params : per-solver parameters, e.g. ``{"tabu": {"base_iters": 5000}}`` (also inside ``auto``).

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
    result = solve_combine(W, alpha, gamma, solver, time_limit, seed, workers, name, params)
    result.packed = column_combine.from_solution(W, result)
    result.seconds = time.perf_counter() - begin
    return result
