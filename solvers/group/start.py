"""Where P2 searches start: the hint when it is a valid order, else the identity."""

from __future__ import annotations

import numpy as np

from ..budget import Budget
from ..problem import GroupProblem, Options, Outcome

__all__ = ["start_order", "from_start"]


def start_order(problem: GroupProblem, options: Options) -> np.ndarray:
    """The hint if it is a valid permutation of the columns, else the identity order."""
    N = problem.shape[1]
    hint = options.hint
    if hint is not None:
        hint = np.asarray(hint)
        if hint.shape == (N,) and np.issubdtype(hint.dtype, np.integer) \
                and np.array_equal(np.sort(hint), np.arange(N)):
            return np.ascontiguousarray(hint, dtype=np.int64)
    return np.arange(N, dtype=np.int64)


def from_start(search):
    """The registered form of a search ``search(problem, order, seed, budget) -> Outcome``, run from
    :func:`start_order`."""
    def run(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
        return search(problem, start_order(problem, options), options.seed, budget)
    run.__doc__ = search.__doc__
    return run
