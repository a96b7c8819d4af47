"""P1 at scale, on small shapes: trivial cases, sparse kernels against dense references, budgets charged."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from solvers import Budget, CombineProblem, Options, Outcome, combine
from solvers.bounds import PAIR_SHARE, combine_lower_bound, greedy_clique_bound, no_pair_fits
from solvers.check import check_labels
from solvers.combine import dsatur, finish_ops, tabu
from solvers.combine.cpsat import feasible_groups
from solvers.combine.reduce import analyse
from solvers.registry import Solver
from solvers.sparse import WORD_OPS, adjacency_bits, clique_extend, components, incidence


def _weights(R, N, density, seed=0):
    rng = np.random.default_rng([R, N, seed])
    return rng.standard_normal((R, N)) * (rng.random((R, N)) < density)


def _never_called(problem, options, budget):
    raise AssertionError("the solver must not run on a trivial instance")


NEVER = Solver("never", _never_called, "fails if called")


def _dense_adjacency(mask):
    m = mask[:, mask.any(axis=0)].astype(np.int64)
    adj = (m.T @ m) > 0
    np.fill_diagonal(adj, False)
    return adj


# ---------------------------------------------------------------- trivial cases

def test_a_full_row_makes_singletons_optimal_without_running_the_solver():
    W = _weights(12, 20, 0.2)
    W[3, :] = 1.0                       # row bound = N: every column needs its own group
    result = combine.solve(CombineProblem.from_weights(W, alpha=4), NEVER)
    assert result.status == "optimal" and result.num_groups == 20 == result.lower_bound
    assert "trivial" in result.stats and result.stopped_by == "done"


@pytest.mark.parametrize("gamma", [0.0, 0.2])
def test_no_pair_can_share_a_group_is_detected_and_optimal(gamma):
    """Columns with 6 of 8 rows: any two share >= 4 rows (pigeonhole), above the budget, though no row is full."""
    rng = np.random.default_rng(5)
    R, N = 8, 30
    mask = np.zeros((R, N), dtype=bool)
    for j in range(N):
        mask[rng.choice(R, 6, replace=False), j] = True
    problem = CombineProblem.from_weights(mask, alpha=8, gamma=gamma)
    assert problem.budget < 4 and mask.sum(axis=1).max() < N
    alone, _ = no_pair_fits(problem)
    assert alone
    result = combine.solve(problem, NEVER)
    assert result.status == "optimal" and result.num_groups == N and "trivial" in result.stats


def test_a_shareable_pair_is_found_and_the_solver_runs():
    W = np.zeros((6, 5))
    W[:3, :4] = 1.0
    W[3:, 4] = 1.0                      # column 4 shares no row with the others
    problem = CombineProblem.from_weights(W, alpha=4)
    assert not no_pair_fits(problem)[0]
    result = combine.solve(problem, "ffd")
    assert "trivial" not in result.stats and result.num_groups == 4


def test_no_pair_fits_matches_brute_force():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        R, N = int(rng.integers(3, 10)), int(rng.integers(2, 12))
        mask = rng.random((R, N)) < rng.uniform(0.3, 0.9)
        if not mask.any():
            continue
        gamma = float(rng.choice([0.0, 0.2, 0.4]))
        problem = CombineProblem.from_weights(mask, alpha=3, gamma=gamma)
        cols = problem.nonempty
        common = mask[:, cols].T.astype(int) @ mask[:, cols].astype(int)
        shareable = any(common[a, b] <= problem.budget for a, b in itertools.combinations(range(cols.size), 2))
        assert no_pair_fits(problem)[0] == (not shareable)


# ---------------------------------------------------------------- sparse paths = dense ones

def test_incidence_matches_numpy():
    W = _weights(9, 14, 0.3)
    W[:, 5] = 0
    keep, col_ptr, col_rows, row_ptr, row_cols = incidence(W != 0)
    assert np.array_equal(keep, np.flatnonzero((W != 0).any(axis=0)))
    sub = (W != 0)[:, keep]
    for j in range(keep.size):
        assert np.array_equal(col_rows[col_ptr[j]:col_ptr[j + 1]], np.flatnonzero(sub[:, j]))
    for r in range(W.shape[0]):
        assert np.array_equal(row_cols[row_ptr[r]:row_ptr[r + 1]], np.flatnonzero(sub[r]))


def test_adjacency_bits_match_the_dense_product():
    problem = CombineProblem.from_weights(_weights(20, 70, 0.06), alpha=4)
    adj, edges, _, complete = adjacency_bits(problem.column_bits)
    n = problem.nonempty.size
    dense = np.unpackbits(adj.view(np.uint8), axis=1, count=n, bitorder="little").astype(bool)
    assert complete and np.array_equal(dense, _dense_adjacency(problem.mask)) and edges == dense.sum() // 2


def test_components_match_a_graph_search():
    problem = CombineProblem.from_weights(_weights(30, 60, 0.03), alpha=4)
    adj = _dense_adjacency(problem.mask)
    n = adj.shape[0]
    seen, expected = np.full(n, -1), 0
    for s in range(n):                   # components by breadth-first search on the dense graph
        if seen[s] >= 0:
            continue
        frontier = [s]
        seen[s] = expected
        while frontier:
            nxt = np.flatnonzero(adj[frontier].any(axis=0) & (seen < 0))
            seen[nxt] = expected
            frontier = list(nxt)
        expected += 1
    keep, (_, _, row_ptr, row_cols) = problem.incidence
    assert np.array_equal(components(keep.size, row_ptr, row_cols), seen)
    comps = analyse(problem).components
    assert sorted(np.concatenate(comps).tolist()) == problem.nonempty.tolist() and len(comps) == expected


def test_clique_extend_returns_a_clique_and_the_bound_is_valid():
    for seed in range(6):
        problem = CombineProblem.from_weights(_weights(10, 16, 0.25, seed), alpha=16)
        adj = _dense_adjacency(problem.mask)
        keep, (col_ptr, _, row_ptr, row_cols) = problem.incidence
        order = np.argsort(-np.diff(col_ptr), kind="stable")
        start = row_cols[row_ptr[0]:row_ptr[1]]
        size, _ = clique_extend(start, order, problem.column_bits, np.inf)
        # rebuild the same first-fit clique with the dense graph and check it is one
        clique = list(start)
        for j in order:
            if j not in clique and all(adj[j, c] for c in clique):
                clique.append(j)
        assert size == len(clique)
        assert all(adj[a, b] for a, b in itertools.combinations(clique, 2))
        # alpha >= N, gamma = 0: the optimum is the chromatic number, at least any clique
        exact = combine.solve(problem, "cpsat", Options(time_limit=5.0))
        assert exact.status == "optimal" and greedy_clique_bound(problem)[0] <= exact.num_groups


def test_set_enumeration_matches_brute_force():
    problem = CombineProblem.from_weights(_weights(6, 9, 0.3, 2), alpha=3)
    adj = _dense_adjacency(problem.mask)
    n = adj.shape[0]
    expected = {c for k in range(1, 4) for c in itertools.combinations(range(n), k)
                if not any(adj[a, b] for a, b in itertools.combinations(c, 2))}
    assert set(feasible_groups(problem)) == expected


def _naive_pruned(W, labels):
    """Per (row, group) cell: keep the largest magnitude, ties to the lowest column."""
    mag = np.abs(W)
    pruned = np.zeros(W.shape, dtype=bool)
    for r in range(W.shape[0]):
        for g in range(labels.max() + 1):
            cols = [j for j in np.flatnonzero(labels == g) if mag[r, j] > 0]
            if cols:
                keep = max(cols, key=lambda j: (mag[r, j], -j))
                pruned[r, [j for j in cols if j != keep]] = True
    return pruned


def test_checker_matches_a_naive_cell_by_cell_count():
    rng = np.random.default_rng(3)
    for trial in range(12):
        W = np.round(_weights(7, 15, 0.5, int(rng.integers(1 << 30))), 1)   # rounding makes ties
        W[:, 2] = W[:, 7]
        problem = CombineProblem.from_weights(W, alpha=15, gamma=5.0)
        # few groups (all shared), many (some columns alone), all alone
        labels = np.where(problem.mask.any(axis=0), rng.integers(0, [4, 10, 15][trial % 3], 15), -1)
        if trial % 3 == 2:
            labels = np.where(labels >= 0, np.arange(15), -1)
        labels = combine.canonical_labels(labels)
        assert np.array_equal(check_labels(problem, labels), _naive_pruned(W, labels))


# ---------------------------------------------------------------- budgets charged

def test_the_bounds_charge_their_pairwise_tests():
    problem = CombineProblem.from_weights(_weights(64, 256, 0.05), alpha=8)
    budget = Budget.start(1.0)
    bound = combine_lower_bound(problem, budget)
    assert 0 < budget.spent <= PAIR_SHARE * Budget.start(1.0).ops
    starved = Budget(10.0, budget.deadline)
    cheap = combine_lower_bound(problem, starved)
    # the kernels stop after the test that crosses their share: one candidate against every member at most
    m, words = problem.column_bits.shape
    assert starved.spent <= 10.0 + WORD_OPS * m * words and cheap <= bound


def test_the_front_door_keeps_work_back_for_checking_and_encoding():
    problem = CombineProblem.from_weights(_weights(32, 128, 0.1), alpha=8)
    budget = Budget.start(1.0)
    result = combine.solve(problem, "ffd", Options(time_limit=1.0), budget)
    assert budget.spent == pytest.approx(result.ops + finish_ops(problem))


def test_dsatur_declines_work_its_budget_cannot_pay():
    problem = CombineProblem.from_weights(_weights(64, 256, 0.1), alpha=8)
    cost = dsatur.work(problem)
    small = Budget(cost / 2, Budget.start(10.0).deadline)
    out = dsatur.SOLVER.run(problem, Options(), small)
    assert out.fallback and "DSatur would cost" in out.fallback and not out.interrupted
    check_labels(problem, out.solution)
    enough = Budget(2 * cost, Budget.start(10.0).deadline)
    out = dsatur.SOLVER.run(problem, Options(), enough)
    assert out.fallback is None and enough.spent >= cost


def test_tabu_charges_its_move_table_and_declines_one_it_cannot_pay():
    problem = CombineProblem.from_weights(_weights(64, 256, 0.15), alpha=8)
    first = combine.solve(problem, "ffd")
    assert first.num_groups > first.lower_bound             # tabu has an attempt to make
    options = Options(hint=np.asarray(first.labels), bound=first.lower_bound)
    row_nnz = problem.mask.sum(axis=1)
    table = float(np.sum(row_nnz * (np.minimum(row_nnz, first.num_groups - 1) + 1)))
    starved = Budget(table / 2, Budget.start(10.0).deadline)
    out = tabu.tabu(problem, options, starved)
    assert out.iterations == 0 and np.array_equal(out.solution, first.labels)
    budget = Budget.start(0.5)
    out = tabu.tabu(problem, options, budget)
    assert isinstance(out, Outcome) and out.iterations > 0 and budget.spent > 0
    check_labels(problem, out.solution)


@pytest.mark.parametrize("solver", ["auto", "tabu", "cpsat"])
def test_same_answer_twice(solver):
    W = _weights(48, 160, 0.08)
    a = combine.solve(CombineProblem.from_weights(W, alpha=8), solver, Options(time_limit=0.3, seed=3))
    b = combine.solve(CombineProblem.from_weights(W, alpha=8), solver, Options(time_limit=0.3, seed=3))
    assert np.array_equal(a.labels, b.labels) and a.lower_bound == b.lower_bound


def test_the_budgeted_fill_considers_every_column_when_the_budget_pays_and_charges_it():
    from solvers.combine.ffd import ffd_labels

    problem = CombineProblem.from_weights(_weights(64, 600, 0.1), alpha=8, gamma=0.05)
    rich = Budget.start(10.0)
    assert np.array_equal(ffd_labels(problem, rich), ffd_labels(problem)) and rich.spent > 0
    poor = Budget(1.0, rich.deadline)
    labels = ffd_labels(problem, poor)
    check_labels(problem, labels)
    assert poor.spent > 1.0                       # charged what it read, past its share
    assert np.array_equal(labels, ffd_labels(problem, Budget(1.0, rich.deadline)))   # deterministic


def test_the_portfolio_score_kernel_matches_the_checker():
    from solvers.combine._kernels import pruned_magnitude

    rng = np.random.default_rng(9)
    for trial in range(8):
        W = np.round(_weights(9, 20, 0.4, trial), 1)
        W[:, 3] = W[:, 11]                                   # ties
        problem = CombineProblem.from_weights(W, alpha=20, gamma=5.0)
        labels = combine.canonical_labels(np.where(problem.mask.any(axis=0), rng.integers(0, 6, 20), -1))
        keep, (col_ptr, col_rows, _, _) = problem.incidence
        got = pruned_magnitude(labels[keep], int(labels.max()) + 1, col_ptr, col_rows,
                               problem.column_magnitudes, problem.shape[0])
        assert got == pytest.approx(problem.magnitude[check_labels(problem, labels)].sum())
    singletons = np.where(problem.mask.any(axis=0), np.arange(20), -1)
    assert pruned_magnitude(combine.canonical_labels(singletons)[keep], keep.size, col_ptr, col_rows,
                            problem.column_magnitudes, problem.shape[0]) == 0.0
