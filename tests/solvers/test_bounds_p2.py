"""The P2 set-partitioning LP bound: never below the optimum, the full LP when converged, valid when cut short."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from solvers import GroupProblem, Options
from solvers.bounds import rows_bound
from solvers.budget import Budget
from solvers.group import solve
from solvers.group._kernels import all_group_kept, prepare
from solvers.group.lp_bound import applies, lp_bound
from test_group import brute_force  # the exhaustive reference (tests/solvers is on the path)


def _full_lp(problem: GroupProblem) -> float:
    """The set-partitioning LP over every k-subset, solved by HiGHS (the reference value)."""
    N, k = problem.shape[1], problem.k
    subsets = np.array(list(itertools.combinations(range(N), k)), dtype=np.int64)
    values = all_group_kept(prepare(problem.magnitude), subsets.ravel(), k, problem.n)
    S = len(subsets)
    cover = sp.csr_matrix((np.ones(k * S), (subsets.ravel(), np.repeat(np.arange(S), k))), shape=(N, S))
    return float(-linprog(-values, A_eq=cover, b_eq=np.ones(N), bounds=(0, None), method="highs").fun)


def _problem(R, N, k, n, seed, density=0.8):
    rng = np.random.default_rng(seed)
    return GroupProblem.from_weights(rng.random((R, N)) * (rng.random((R, N)) < density), k, n)


CASES = [(6, 8, 4, 2), (6, 8, 4, 1), (5, 9, 3, 1), (6, 12, 4, 2), (4, 12, 3, 2), (6, 12, 6, 3)]


@pytest.mark.parametrize("R,N,k,n", CASES)
@pytest.mark.parametrize("seed", range(2))
def test_lp_bound_is_never_below_the_brute_force_optimum(R, N, k, n, seed):
    """Converged, it equals the full LP (HiGHS over all subsets) and lies between the optimum and the rows bound."""
    problem = _problem(R, N, k, n, seed)
    bound, stats = lp_bound(problem, np.arange(N), Budget.start(10.0))
    assert stats["converged"]
    opt = brute_force(problem)
    assert bound >= opt - 1e-9
    assert bound == pytest.approx(_full_lp(problem), rel=1e-7)
    assert bound <= rows_bound(problem) + 1e-9


@pytest.mark.parametrize("ops", [5e4, 1e5, 2e5])
def test_lp_bound_cut_short_is_still_an_upper_bound(ops):
    """A budget that ends the rounds early gives a weaker bound, never an invalid one."""
    problem = _problem(6, 12, 4, 2, seed=7)
    opt = brute_force(problem)
    bound, stats = lp_bound(problem, np.arange(12), Budget(ops, deadline=float("inf")))
    full, _ = lp_bound(problem, np.arange(12), Budget.start(10.0))
    assert not stats["converged"] and bound > full + 1e-6     # really cut short
    assert bound >= opt - 1e-9


def test_lp_bound_is_deterministic():
    problem = _problem(8, 16, 4, 2, seed=3)
    a = lp_bound(problem, np.arange(16), Budget(5e7, deadline=float("inf")))
    b = lp_bound(problem, np.arange(16), Budget(5e7, deadline=float("inf")))
    assert a == b


def test_lp_bound_is_above_cpsat_proven_optima():
    """On instances CP-SAT solves to optimality, the LP bound is at least the proven optimum."""
    for seed in range(3):
        problem = _problem(8, 16, 4, 2, seed=seed)
        exact = solve(problem, "cpsat", Options(time_limit=10.0))
        assert exact.status == "optimal"
        bound, _ = lp_bound(problem, exact.order, Budget.start(10.0))
        assert bound >= exact.kept - 1e-9


def test_out_of_scope_says_why():
    assert "matching" in applies(_problem(4, 8, 2, 1, seed=0))
    assert "subsets" in applies(_problem(4, 256, 4, 2, seed=0))
    bound, stats = lp_bound(_problem(4, 256, 4, 2, seed=0), np.arange(256), Budget.start(1.0))
    assert bound is None and "skipped" in stats


def test_auto_reports_the_lp_bound_and_gap_against_it():
    """auto's bound is the LP bound ("lp"); gap against it, efficacy against the rows bound."""
    problem = _problem(16, 32, 4, 2, seed=5)
    result = solve(problem, "auto", Options(time_limit=5.0))
    full = _full_lp(problem)
    assert result.bound_kind == "lp"
    assert result.upper_bound == pytest.approx(full, rel=1e-7)
    assert result.upper_bound < result.rows_bound
    assert result.gap == pytest.approx((result.upper_bound - result.kept) / result.upper_bound)
    room = result.rows_bound - result.identity_kept
    assert result.efficacy == pytest.approx((result.kept - result.identity_kept) / room)


def test_apex_instance_lp_bound():
    """The Apex instance (128 x 64, 2:4): the LP bound within 0.1% of 2927.83, computed once out of band."""
    np.random.seed(1)
    problem = GroupProblem.from_weights(np.random.rand(128, 64), k=4, n=2)
    bound, stats = lp_bound(problem, np.arange(64), Budget.start(10.0))
    assert stats["converged"]
    assert abs(bound - 2927.83) / 2927.83 < 1e-3
    assert math.isfinite(bound)
