"""Exact models and Numba heuristics for weight arrangement; numpy in, numpy out.

Two problems (DESIGN.md section 3): P1 min-width combining (:mod:`solvers.combine`)
and P2 fixed-ratio grouping (:mod:`solvers.group`). This package imports neither
``arrange`` nor torch.
"""

from . import combine, group, knapsack, patterns, permdiag, sparse_coding
from .bounds import combine_lower_bound, rows_bound
from .budget import Budget
from .check import check_labels, kept_magnitude, kept_mask
from .problem import CombineProblem, GroupProblem, InvalidSolution, Options, Outcome, ProblemError
from .registry import Solver, load_solver, lookup, register
from .result import CombineResult, GroupResult, Result, efficacy

__all__ = [
    "combine", "group", "knapsack", "patterns", "permdiag", "sparse_coding", "combine_lower_bound",
    "rows_bound", "check_labels", "kept_magnitude", "kept_mask", "Budget",
    "CombineProblem", "CombineResult", "GroupProblem", "GroupResult", "InvalidSolution",
    "Options", "Outcome", "ProblemError", "Result", "Solver", "efficacy", "load_solver", "lookup", "register",
]
