"""PENNI's sparse coding: kernels as sparse combinations of d shared basis kernels.

Problem: the m kernels of a layer, rows of X (m, k2) with k2 = kh * kw, are
approximated as X ~= C B with a basis B (d, k2) and coefficients C (m, d) of at
most ``budget`` nonzeros in total; minimise the Frobenius error ||X - C B||^2.

Methods:

- Start: the uncentred truncated SVD, B = the top-d right singular vectors, C =
  X B^T.  By Eckart-Young it is the best rank-d approximation in Frobenius norm.
  Signs are fixed (each basis row's largest-magnitude entry positive) so the
  answer does not depend on the LAPACK build.
- Support selection, orthonormal basis (``global``): for B B^T = I write a =
  B x and x = B^T a + r with r orthogonal to the rows of B.  For a support S
  and any c supported on S, ||x - B^T c||^2 = ||r||^2 + ||a - c||^2
  (Pythagoras; B^T is an isometry), minimised by c = a on S, with error
  ||r||^2 + sum_{j not in S} a_j^2.  Summed over kernels the error is a
  constant minus the sum of a^2 over the kept entries, and the budget only
  limits the total count of kept entries, so by an exchange argument the
  optimum keeps the ``budget`` largest |a| of the whole layer (ties: the lower
  flat index).  Proven optimal.
- Support selection, any basis (``enumerate``): per kernel, the least-squares
  error of every one of the 2^d supports (d <= 12), reduced to the best support
  of each size s = 0..d; then one size per kernel, total size <= budget,
  maximising the explained energy: a multiple-choice knapsack solved exactly by
  :mod:`solvers.knapsack`.  Proven optimal; equal to ``global`` on orthonormal B.
- Alternating least squares (:func:`alternate`): fix B and the support and refit
  every kernel's coefficients by least squares; fix C and refit B by least
  squares (min_B ||X - C B||).  Each step solves its subproblem exactly, so the
  error never increases.  With ``budget`` given the support is re-selected
  exactly instead (the old support is feasible, so this cannot increase it either).
- The bound (:func:`fit`): any C B with d basis rows has rank <= d, so by
  Eckart-Young no answer, sparse or not, has less error than the truncated
  SVD's, sum_{i > d} sigma_i^2.  The result's gap is measured against it.

Reference: S. Li, E. Hanson, H. Li, Y. Chen, "PENNI: Pruned Kernel Sharing for
Efficient CNN Inference", ICML 2020, arXiv:2005.07133.  C. Eckart, G. Young,
"The approximation of one matrix by another of lower rank", Psychometrika 1
(1936), doi:10.1007/BF02288367.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import knapsack
from .problem import ProblemError, _check_int
from .result import Result

__all__ = [
    "kernel_matrix",
    "svd_basis",
    "is_orthonormal",
    "global_support",
    "enumerate_support",
    "select_support",
    "refit_coefficients",
    "refit_basis",
    "error",
    "alternate",
    "rank_bound",
    "fit",
    "SparseCodingResult",
    "METHODS",
]

METHODS = ("auto", "global", "enumerate")
MAX_ENUMERATE_D = 12


def kernel_matrix(X, name: str = "X") -> np.ndarray:
    """X as a validated contiguous float64 (m, k2) matrix."""
    X = np.asarray(X)
    if X.ndim != 2 or X.size == 0:
        raise ProblemError(f"{name}: expected a non-empty 2-D (kernels, k*k) matrix, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ProblemError(f"{name}: expected real numbers, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ProblemError(f"{name}: {int(np.count_nonzero(~np.isfinite(X)))} NaN/inf entries")
    return X


def _check_budget(budget, m: int, d: int) -> int:
    budget = _check_int(budget, "budget", 0)
    return min(budget, m * d)


def svd_basis(X, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-d right singular vectors B (d, k2), orthonormal, and C = X B^T (m, d)."""
    X = kernel_matrix(X)
    d = _check_int(d, "d", 1)
    if d > X.shape[1]:
        raise ProblemError(f"Expected d <= k*k = {X.shape[1]}, got d={d}")
    # full_matrices completes the basis when the layer has fewer kernels than d.
    _, _, vt = np.linalg.svd(X, full_matrices=True)
    B = vt[:d].copy()
    lead = np.argmax(np.abs(B), axis=1)
    B *= np.where(B[np.arange(d), lead] < 0, -1.0, 1.0)[:, None]
    return B, X @ B.T


def is_orthonormal(B, tol: float = 1e-9) -> bool:
    """B B^T == I up to tol."""
    B = np.asarray(B, dtype=np.float64)
    return bool(np.max(np.abs(B @ B.T - np.eye(B.shape[0])), initial=0.0) <= tol)


def global_support(C, budget: int) -> np.ndarray:
    """Keep the ``budget`` largest |C| of the whole layer (optimal for an orthonormal basis)."""
    C = np.asarray(C, dtype=np.float64)
    budget = _check_budget(budget, *C.shape)
    order = np.argsort(-np.abs(C).ravel(), kind="stable")[:budget]
    mask = np.zeros(C.size, dtype=bool)
    mask[order] = True
    return mask.reshape(C.shape)


def _fit(X, Bs) -> np.ndarray:
    """Least-squares coefficients (rows of X on the rows of Bs), shape (m, s)."""
    if Bs.shape[0] == 0:
        return np.zeros((X.shape[0], 0))
    return np.linalg.lstsq(Bs.T, X.T, rcond=None)[0].T


def _subsets(d: int) -> np.ndarray:
    """All 2^d supports as a bool (2^d, d) array, row s is the bitmask s."""
    codes = np.arange(2 ** d)
    return ((codes[:, None] >> np.arange(d)) & 1).astype(bool)


def _size_table(X, B) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kernel and support size: the least error, and which support reaches it."""
    subsets = _subsets(B.shape[0])
    errs = np.empty((X.shape[0], subsets.shape[0]))
    for code, S in enumerate(subsets):
        errs[:, code] = np.sum((X - _fit(X, B[S]) @ B[S]) ** 2, axis=1)
    sizes = subsets.sum(axis=1)
    d = B.shape[0]
    best_err = np.empty((X.shape[0], d + 1))
    best_code = np.empty((X.shape[0], d + 1), dtype=np.int64)
    for s in range(d + 1):
        codes = np.flatnonzero(sizes == s)
        pick = np.argmin(errs[:, codes], axis=1)
        best_code[:, s] = codes[pick]
        best_err[:, s] = errs[np.arange(X.shape[0]), codes[pick]]
    return best_err, best_code, subsets


def enumerate_support(X, B, budget: int) -> np.ndarray:
    """Exact support under a total budget for any basis: 2^d subsets per kernel + knapsack DP."""
    X = kernel_matrix(X)
    B = kernel_matrix(B, "B")
    m, d = X.shape[0], B.shape[0]
    if d > MAX_ENUMERATE_D:
        raise ProblemError(f"enumerate support needs d <= {MAX_ENUMERATE_D}, got d={d}")
    budget = _check_budget(budget, m, d)
    best_err, best_code, subsets = _size_table(X, B)
    # Explained energy is >= 0 and keeps the knapsack values on one scale.
    explained = np.sum(X ** 2, axis=1)[:, None] - best_err
    sizes = np.arange(d + 1, dtype=np.int64)
    result = knapsack.solve([sizes] * m, list(explained), budget)
    return subsets[best_code[np.arange(m), result.choice]]


def select_support(X, B, budget: int, method: str = "auto") -> np.ndarray:
    """The optimal support mask (m, d) under a total budget; ``auto`` uses global when B is orthonormal."""
    if method not in METHODS:
        raise ProblemError(f"unknown support method {method!r}; allowed: {', '.join(METHODS)}")
    X = kernel_matrix(X)
    B = kernel_matrix(B, "B")
    if method == "global" and not is_orthonormal(B):
        raise ProblemError("global support selection needs an orthonormal basis; use enumerate")
    if method == "global" or (method == "auto" and is_orthonormal(B)):
        return global_support(X @ B.T, budget)
    return enumerate_support(X, B, budget)


def refit_coefficients(X, B, mask) -> np.ndarray:
    """Least-squares coefficients of every kernel on its own support (zero off it)."""
    X = kernel_matrix(X)
    mask = np.asarray(mask, dtype=bool)
    C = np.zeros(mask.shape)
    supports, which = np.unique(mask, axis=0, return_inverse=True)
    for u, S in enumerate(supports):
        rows = np.flatnonzero(which.ravel() == u)
        C[np.ix_(rows, np.flatnonzero(S))] = _fit(X[rows], B[S])
    return C


def refit_basis(X, C) -> np.ndarray:
    """The basis minimising ||X - C B|| for fixed C (least squares, minimum norm)."""
    return np.linalg.lstsq(np.asarray(C, dtype=np.float64), kernel_matrix(X), rcond=None)[0]


def error(X, B, C) -> float:
    """Squared Frobenius error ||X - C B||^2."""
    return float(np.sum((np.asarray(X) - np.asarray(C) @ np.asarray(B)) ** 2))


def alternate(X, B, mask, iterations: int = 3, budget: int | None = None):
    """Alternate coefficient and basis least squares; returns (B, C, mask, errors).

    ``errors[0]`` is the error of the start (least-squares C on ``mask``), then one
    entry per iteration; the sequence never increases (an iteration that would
    raise it, float noise at a fixed point, ends the loop and is discarded).  With ``budget`` the support
    is re-selected exactly after every basis refit; without it the support is fixed.
    """
    X = kernel_matrix(X)
    iterations = _check_int(iterations, "iterations", 0)
    B = np.array(B, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    C = refit_coefficients(X, B, mask)
    errors = [error(X, B, C)]
    for _ in range(iterations):
        B_new = refit_basis(X, C)
        if budget is not None:
            mask_new = select_support(X, B_new, budget)
        else:
            mask_new = mask
        C_new = refit_coefficients(X, B_new, mask_new)
        e = error(X, B_new, C_new)
        if e > errors[-1]:
            break  # float noise at a fixed point; keep the better iterate
        B, C, mask = B_new, C_new, mask_new
        errors.append(e)
    return B, C, mask, errors


def rank_bound(X, d: int) -> float:
    """Least error of any rank-d approximation of X: sum of its squared singular values beyond d."""
    sigma = np.linalg.svd(kernel_matrix(X), compute_uv=False)
    return float(np.sum(sigma[d:] ** 2))


@dataclass(kw_only=True)
class SparseCodingResult(Result):
    """A fitted sparse coding: ``objective`` the error ||X - C B||^2, ``bound`` the rank-d optimum."""

    basis: np.ndarray          # (d, k2)
    coefficients: np.ndarray   # (m, d), zero off the support
    support: np.ndarray        # (m, d) bool
    errors: list               # error after the start and each ALS round (non-increasing)
    sense: str = "min"

    def _row_extras(self) -> dict:
        return {"d": int(self.basis.shape[0]), "nonzeros": int(self.support.sum())}


def fit(X, d: int, budget: int | None = None, iterations: int = 3, reselect: bool = False,
        method: str = "auto") -> SparseCodingResult:
    """SVD start, exact support selection, then ALS; a result with the Eckart-Young bound.

    ``budget`` (None: every coefficient) limits the nonzero coefficients in
    total; ``reselect`` re-chooses the support after every basis refit.
    "optimal" means the error equals the rank-d bound (to rounding).
    """
    begin = time.perf_counter()
    X = kernel_matrix(X)
    B, _ = svd_basis(X, d)
    budget = X.shape[0] * int(d) if budget is None else budget
    mask = select_support(X, B, budget, method)
    B, C, mask, errors = alternate(X, B, mask, iterations, budget if reselect else None)
    err, bound = errors[-1], rank_bound(X, int(d))
    proven = err <= bound + 1e-9 * max(1.0, float(np.sum(X ** 2)))
    return SparseCodingResult(
        objective=err, bound=min(bound, err), bound_kind="rank (Eckart-Young)",
        status="optimal" if proven else "feasible", seconds=time.perf_counter() - begin, solver=method,
        iterations=len(errors) - 1, basis=B, coefficients=np.where(mask, C, 0.0), support=mask, errors=errors)
