"""P2 baseline: the unpermuted column order (what N:M pruning does without a permutation).

Reference: Pool & Yu, "Channel Permutations for N:M Sparsity", NeurIPS 2021,
whose efficacy measure is relative to this order.
"""

from __future__ import annotations

import numpy as np

from ..budget import Budget
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver

__all__ = ["SOLVER", "identity"]


def identity(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    """Columns in their given order 0..N-1."""
    return Outcome(np.arange(problem.shape[1], dtype=np.int64), stats={"method": "identity"})


SOLVER = Solver("identity", identity, "unpermuted order (the baseline efficacy is measured from)")
