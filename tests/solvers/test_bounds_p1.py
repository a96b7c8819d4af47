"""The P1 set-covering LP bound for any gamma: never above the optimum, the full LP when converged, valid cut short."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from solvers.budget import Budget
from solvers.check import check_labels
from solvers.combine import solve
from solvers.combine._kernels import compact
from solvers.combine._pricing import budget_branch_and_bound, greedy_pricing
from solvers.combine.lp_bound import lp_bound
from solvers.problem import CombineProblem, InvalidSolution, Options


def _conflicts(mask: np.ndarray, cols) -> int:
    counts = mask[:, list(cols)].sum(axis=1)
    return int(np.maximum(counts - 1, 0).sum())


def _feasible_groups(problem: CombineProblem):
    """Every feasible group (<= alpha columns, conflicts <= budget) of the nonempty columns."""
    cols = problem.nonempty.tolist()
    for size in range(1, problem.alpha + 1):
        for group in itertools.combinations(cols, size):
            if _conflicts(problem.mask, group) <= problem.budget:
                yield group


def _optimum(problem: CombineProblem) -> int:
    """Fewest groups, by trying every labelling of the nonempty columns with G groups (tiny only)."""
    cols = problem.nonempty
    N = problem.shape[1]
    for G in range(1, cols.size + 1):
        for assign in itertools.product(range(G), repeat=cols.size):
            if assign[0] != 0 or len(set(assign)) != G:
                continue
            labels = np.full(N, -1, dtype=np.int64)
            labels[cols] = assign
            try:
                check_labels(problem, labels)
            except InvalidSolution:
                continue
            return G
    raise AssertionError("unreachable: singletons are feasible")


def _full_lp(problem: CombineProblem) -> float:
    """The covering LP over every feasible group, solved by HiGHS (the reference value)."""
    groups = list(_feasible_groups(problem))
    index = {c: i for i, c in enumerate(problem.nonempty.tolist())}
    rows = [index[c] for g in groups for c in g]
    cols = [s for s, g in enumerate(groups) for _ in g]
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(index), len(groups)))
    res = linprog(np.ones(len(groups)), A_ub=-A, b_ub=-np.ones(len(index)), bounds=(0, None), method="highs")
    return float(res.fun)


def _problem(R, N, density, alpha, gamma, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((R, N)) < density
    mask[0, 0] = True
    return CombineProblem.from_weights(np.where(mask, rng.random((R, N)) + 0.1, 0.0), alpha=alpha, gamma=gamma)


TINY = [(6, 7, 0.4, 3, 0.0), (6, 7, 0.4, 3, 0.34), (8, 7, 0.35, 4, 0.25), (5, 8, 0.5, 3, 0.4)]


@pytest.mark.parametrize("R,N,density,alpha,gamma", TINY)
@pytest.mark.parametrize("seed", range(3))
def test_lp_bound_is_never_above_the_brute_force_optimum(R, N, density, alpha, gamma, seed):
    """Converged, its LP value equals HiGHS over all feasible groups, and its bound is <= the optimum."""
    problem = _problem(R, N, density, alpha, gamma, seed)
    labels = solve(problem, "ffd").labels
    bound, stats = lp_bound(problem, labels, Options(time_limit=10.0))
    assert stats["converged"]
    assert stats["lp"] == pytest.approx(_full_lp(problem), rel=1e-6)
    assert bound <= _optimum(problem)
    result = solve(problem, "auto", Options(time_limit=5.0))
    assert result.lower_bound <= _optimum(problem) <= result.num_groups


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("seed", range(3))
def test_lp_bound_is_never_above_cpsat_proven_optima(gamma, seed):
    """On instances CP-SAT solves exactly, the LP bound (and auto's reported bound) is at most the optimum."""
    problem = _problem(8, 12, 0.3, 3, gamma, seed)
    exact = solve(problem, "cpsat", Options(time_limit=10.0))
    assert exact.stats["groups_optimal"]
    bound, _ = lp_bound(problem, exact.labels, Options(time_limit=5.0))
    assert bound <= exact.num_groups
    assert solve(problem, "auto", Options(time_limit=5.0)).lower_bound <= exact.num_groups


@pytest.fixture(scope="module", params=[0.0, 0.1])
def cut_short_case(request):
    """An instance, a start, its converged LP bound and CP-SAT's proven fewest groups."""
    problem = _problem(10, 16, 0.25, 4, request.param, seed=11)
    labels = solve(problem, "ffd").labels
    full, full_stats = lp_bound(problem, labels, Options(time_limit=20.0))
    assert full_stats["converged"]
    exact = solve(problem, "cpsat", Options(time_limit=3.0))   # the rest of its time goes to the pruned magnitude
    assert exact.stats["groups_optimal"]
    return problem, labels, full, full_stats["lp"], exact.num_groups


@pytest.mark.parametrize("ops", [2e4, 1e5, 1e6])
def test_lp_bound_cut_short_is_still_a_lower_bound(cut_short_case, ops):
    """Budgets that end the rounds early: a weaker bound, never one above the optimum or the full LP."""
    problem, labels, full, full_lp, optimum = cut_short_case
    bound, stats = lp_bound(problem, labels, Options(), Budget(ops, deadline=float("inf")))
    assert stats["lp"] <= full_lp * (1 + 1e-5)
    assert bound <= full <= optimum


def test_lp_bound_is_deterministic():
    problem = _problem(12, 24, 0.25, 4, 0.1, seed=4)
    labels = solve(problem, "ffd").labels
    runs = [lp_bound(problem, labels, Options(), Budget(3e6, deadline=float("inf"))) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("budget", [0, 1, 3])
@pytest.mark.parametrize("seed", range(3))
def test_pricing_kernels_against_enumeration(budget, seed):
    """The greedy's groups are feasible; the branch and bound's maximum is the brute-force maximum."""
    rng = np.random.default_rng(seed)
    mask = rng.random((8, 12)) < 0.3
    mask[:, mask.sum(axis=0) == 0] = True
    keep, (col_ptr, col_rows, _, _) = compact(mask)
    weight = rng.random(keep.size)
    alpha = 4
    order = np.argsort(-weight, kind="stable").astype(np.int64)
    best = max(weight[list(s)].sum() for k in range(1, alpha + 1) for s in itertools.combinations(range(keep.size), k)
               if _conflicts(mask[:, keep], s) <= budget)
    found = np.empty((1, alpha), dtype=np.int64)
    hits, finished, top, _ = budget_branch_and_bound(order, col_ptr, col_rows, weight, alpha, budget, 8, 0.0,
                                                     10**7, True, found)
    assert finished and top == pytest.approx(best)
    members = found[0][found[0] >= 0]
    assert weight[members].sum() == pytest.approx(best) and _conflicts(mask[:, keep], members) <= budget
    groups = np.empty((keep.size, alpha), dtype=np.int64)
    values = np.empty(keep.size)
    for mu in (0.0, 0.2):
        greedy_pricing(order, keep.size, col_ptr, col_rows, weight, alpha, budget, 8, mu, groups, values)
        for row, value in zip(groups, values):
            members = row[row >= 0]
            assert members.size <= alpha and _conflicts(mask[:, keep], members) <= budget
            assert value == pytest.approx(weight[members].sum()) and value <= best + 1e-12
