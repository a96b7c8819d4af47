"""PENNI sparse coding: SVD start, exact support selection, alternating least squares."""

import itertools

import numpy as np
import pytest

from solvers import sparse_coding as sc
from solvers.problem import ProblemError


def kernels(seed, m=5, k2=4):
    return np.random.default_rng(seed).standard_normal((m, k2))


def brute_support_error(X, B, budget):
    """Least error over every support assignment with at most ``budget`` nonzeros in total."""
    m, d = X.shape[0], B.shape[0]
    subsets = [np.array(s, dtype=bool) for s in itertools.product([False, True], repeat=d)]
    best = np.inf
    for picks in itertools.product(subsets, repeat=m):
        mask = np.array(picks)
        if mask.sum() <= budget:
            best = min(best, sc.error(X, B, sc.refit_coefficients(X, B, mask)))
    return best


def test_svd_basis_is_eckart_young():
    """The dense SVD start has error equal to the sum of the dropped squared singular values."""
    X = kernels(0, m=12, k2=9)
    B, C = sc.svd_basis(X, 3)
    s = np.linalg.svd(X, compute_uv=False)
    assert sc.is_orthonormal(B)
    assert sc.error(X, B, C) == pytest.approx(np.sum(s[3:] ** 2))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("budget", [0, 2, 4, 6])
def test_global_support_optimal(seed, budget):
    """With an orthonormal basis, the global top-|C| support matches brute force over all supports."""
    X = kernels(seed, m=3, k2=4)
    B, C = sc.svd_basis(X, 3)
    mask = sc.global_support(C, budget)
    assert mask.sum() == min(budget, C.size)
    got = sc.error(X, B, sc.refit_coefficients(X, B, mask))
    assert got == pytest.approx(brute_support_error(X, B, budget))


@pytest.mark.parametrize("seed", range(3))
def test_enumerate_support_optimal_any_basis(seed):
    """For a non-orthonormal basis the enumeration + knapsack path matches brute force."""
    X = kernels(seed, m=3, k2=4)
    B = np.random.default_rng(100 + seed).standard_normal((3, 4))
    assert not sc.is_orthonormal(B)
    mask = sc.enumerate_support(X, B, 4)
    got = sc.error(X, B, sc.refit_coefficients(X, B, mask))
    assert mask.sum() <= 4
    assert got == pytest.approx(brute_support_error(X, B, 4))


@pytest.mark.parametrize("budget", [3, 10, 17])
def test_paths_agree_on_orthonormal_basis(budget):
    """Global and enumerate selection reach the same error when the basis is orthonormal."""
    X = kernels(4, m=10, k2=9)
    B, C = sc.svd_basis(X, 4)
    e_global = sc.error(X, B, sc.refit_coefficients(X, B, sc.select_support(X, B, budget, "global")))
    e_enum = sc.error(X, B, sc.refit_coefficients(X, B, sc.select_support(X, B, budget, "enumerate")))
    assert e_global == pytest.approx(e_enum)


@pytest.mark.parametrize("budget", [None, 12])
def test_alternating_error_non_increasing(budget):
    """ALS errors never increase, with a fixed support and with exact re-selection."""
    X = kernels(5, m=16, k2=9)
    B, C = sc.svd_basis(X, 3)
    mask = sc.global_support(C, 12)
    B2, C2, mask2, errors = sc.alternate(X, B, mask, iterations=5, budget=budget)
    assert len(errors) >= 2
    assert all(b <= a + 1e-9 for a, b in zip(errors, errors[1:]))
    assert errors[-1] == pytest.approx(sc.error(X, B2, C2))
    assert mask2.sum() <= 12 and np.all(C2[~mask2] == 0)


@pytest.mark.parametrize("call, match", [
    (lambda: sc.svd_basis(kernels(0), 5), "d <= k"),
    (lambda: sc.svd_basis(kernels(0), 0), "d >= 1"),
    (lambda: sc.global_support(kernels(0), -1), "budget >= 0"),
    (lambda: sc.select_support(kernels(0), np.ones((2, 4)), 2, "global"), "orthonormal"),
    (lambda: sc.select_support(kernels(0), np.eye(4), 2, "magic"), "unknown support method"),
])
def test_bad_input(call, match):
    """Bad d, budget, basis or method give a one-line ProblemError."""
    with pytest.raises(ProblemError, match=match):
        call()


def test_fit_reports_the_rank_bound_and_never_beats_it():
    """The Eckart-Young bound is below every rank-d answer; with every coefficient kept it is met."""
    X = np.random.default_rng(5).standard_normal((30, 9))
    sparse = sc.fit(X, 3, budget=40)
    assert sparse.bound <= sparse.objective and sparse.status == "feasible" and sparse.support.sum() <= 40
    full = sc.fit(X, 3)
    assert full.status == "optimal" and full.objective == pytest.approx(full.bound)
    rng = np.random.default_rng(6)
    for _ in range(20):
        C, B = rng.standard_normal((30, 3)), rng.standard_normal((3, 9))
        assert sc.error(X, B, C) >= sparse.bound
    assert sparse.as_row()["sense"] == "min" and sparse.as_row()["nonzeros"] == 40
