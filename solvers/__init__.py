"""Exact models and Numba heuristics for weight arrangement; numpy in, numpy out.

Two problems (DESIGN.md section 3): P1 min-width combining (:mod:`solvers.combine`)
and P2 fixed-ratio grouping (:mod:`solvers.group`). This package imports neither
``arrange`` nor torch.
"""

from . import combine, group, knapsack, patterns, permdiag, sparse_coding
from .bounds import combine_lower_bound, rows_bound
from .check import check_labels, kept_magnitude
from .problem import (
    CombineProblem, CombineResult, GroupProblem, GroupResult, InvalidSolution, Options,
    Outcome, ProblemError,
)

__all__ = [
    "combine", "group", "knapsack", "patterns", "permdiag", "sparse_coding", "combine_lower_bound", "rows_bound", "check_labels", "kept_magnitude",
    "CombineProblem", "CombineResult", "GroupProblem", "GroupResult", "InvalidSolution",
    "Options", "Outcome", "ProblemError",
]
