"""Tests for the fast P1 solvers (greedy-cc, ffd, dsatur) and their shared kernels."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from solvers.bounds import combine_lower_bound
from solvers.combine import solve
from solvers.combine import _kernels as K
from solvers.combine.dsatur import degrees, dsatur_labels
from solvers.combine.ffd import decreasing_order, fill_groups, first_fit
from solvers.combine.greedy_cc import greedy_cc_labels
from solvers.problem import CombineProblem, Options

FAST = ["greedy-cc", "ffd", "dsatur"]


def random_weights(rng, R, N, density):
    """A random magnitude matrix with about ``density`` nonzeros and at least one."""
    W = rng.random((R, N)) * (rng.random((R, N)) < density)
    W[rng.integers(R), rng.integers(N)] = 1.0
    return W


def brute_force_groups(problem: CombineProblem) -> int:
    """Fewest groups over all set partitions of the nonempty columns (tiny instances only)."""
    mask = problem.mask.astype(np.int64)
    cols = problem.nonempty.tolist()

    def feasible(group):
        cnt = mask[:, group].sum(axis=1)
        return len(group) <= problem.alpha and np.maximum(cnt - 1, 0).sum() <= problem.budget

    best = len(cols)

    def extend(i, groups):
        nonlocal best
        if len(groups) >= best:
            return
        if i == len(cols):
            best = len(groups)
            return
        for grp in groups:
            grp.append(cols[i])
            if feasible(grp):
                extend(i + 1, groups)
            grp.pop()
        groups.append([cols[i]])
        extend(i + 1, groups)
        groups.pop()

    extend(0, [])
    return best


@pytest.mark.parametrize("solver", FAST)
@pytest.mark.parametrize("density", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("alpha,gamma", [(1, 0.0), (3, 0.0), (8, 0.0), (4, 0.25), (16, 0.5)])
def test_random_instances_pass_checker(solver, density, alpha, gamma):
    """Every answer on random instances passes the checker and respects the lower bound."""
    rng = np.random.default_rng(int(density * 100) + alpha)
    for R, N in [(6, 10), (16, 40), (32, 300)]:
        problem = CombineProblem.from_weights(random_weights(rng, R, N, density), alpha=alpha, gamma=gamma)
        result = solve(problem, solver)  # raises InvalidSolution on a bad answer
        assert result.lower_bound <= result.num_groups <= problem.nonempty.size


@pytest.mark.parametrize("solver", FAST)
def test_brute_force_optimum_is_never_beaten(solver):
    """On instances of <= 7 columns the heuristics use >= the enumerated optimum, which is >= the bound."""
    rng = np.random.default_rng(7)
    for trial in range(25):
        R, N = int(rng.integers(2, 6)), int(rng.integers(2, 8))
        alpha, gamma = int(rng.integers(1, 5)), float(rng.choice([0.0, 0.25, 0.5]))
        problem = CombineProblem.from_weights(random_weights(rng, R, N, 0.4), alpha=alpha, gamma=gamma)
        optimum = brute_force_groups(problem)
        assert combine_lower_bound(problem) <= optimum
        assert solve(problem, solver).num_groups >= optimum


@pytest.mark.parametrize("solver", FAST)
def test_tiny_hand_instances(solver):
    """Exact group counts: a diagonal packs to ceil(N / alpha); a shared row forces one group per column."""
    diagonal = CombineProblem.from_weights(np.eye(6), alpha=4)
    assert solve(diagonal, solver).num_groups == 2
    shared = np.zeros((3, 5))
    shared[0] = 1.0
    assert solve(CombineProblem.from_weights(shared, alpha=8), solver).num_groups == 5
    # budget floor(0.34 * 3) = 1 lets two columns share row 0, never three (2 conflicts)
    assert solve(CombineProblem.from_weights(shared, alpha=8, gamma=0.34), solver).num_groups == 3


@pytest.mark.parametrize("solver", FAST)
def test_empty_columns_get_minus_one(solver):
    """All-zero columns are left out of the groups."""
    W = np.zeros((4, 7))
    W[0, 1] = W[1, 3] = W[2, 3] = W[3, 6] = 1.0
    labels = np.asarray(solve(CombineProblem.from_weights(W, alpha=2), solver).labels)
    assert labels[[0, 2, 4, 5]].tolist() == [-1] * 4
    assert np.all(labels[[1, 3, 6]] >= 0)


@pytest.mark.parametrize("solver", FAST)
def test_same_seed_same_answer(solver):
    """Repeated runs and different seeds give identical labels (the solvers are deterministic)."""
    rng = np.random.default_rng(3)
    problem = CombineProblem.from_weights(random_weights(rng, 24, 80, 0.15), alpha=4, gamma=0.1)
    first = solve(problem, solver, Options(seed=0)).labels
    assert np.array_equal(first, solve(problem, solver, Options(seed=0)).labels)
    assert np.array_equal(first, solve(problem, solver, Options(seed=5)).labels)


def _columns(R, rows_per_column):
    W = np.zeros((R, len(rows_per_column)))
    for j, rows in enumerate(rows_per_column):
        W[list(rows), j] = 1.0
    return W


def test_greedy_cc_worked_example_gamma0():
    """Hand trace: c0 merges with its densest partner c3 (union 3 beats c1's 2), then c1, c2 conflict."""
    W = _columns(4, [{0}, {1}, {0, 1}, {2, 3}])
    labels = greedy_cc_labels(CombineProblem.from_weights(W, alpha=2))
    assert labels.tolist() == [0, 1, 2, 0]
    # first-fit decreasing finds the optimum {2, 3}, {0, 1} here
    assert solve(CombineProblem.from_weights(W, alpha=2), "ffd").num_groups == 2


def test_greedy_cc_worked_example_budget():
    """Hand trace with budget floor(0.25 * 4) = 1: c0+c2 (union 4), then +c3 (1 overlap); c1 would add 3."""
    W = _columns(4, [{0, 1}, {1, 2}, {2, 3}, {0}])
    labels = greedy_cc_labels(CombineProblem.from_weights(W, alpha=4, gamma=0.25))
    assert labels.tolist() == [0, 1, 0, 0]


def test_greedy_cc_groups_stay_in_256_column_sections():
    """Columns 0 and 256 never share a group in greedy-cc even though they do not conflict."""
    W = np.zeros((2, 257))
    W[0, 0] = W[1, 256] = 1.0
    problem = CombineProblem.from_weights(W, alpha=8)
    assert solve(problem, "greedy-cc").num_groups == 2
    assert solve(problem, "ffd").num_groups == 1


def test_ffd_fill_groups_with_zero_budget_is_first_fit():
    """The budget pass with budget 0 reproduces conflict-free first-fit decreasing exactly."""
    rng = np.random.default_rng(11)
    for density, alpha in [(0.1, 3), (0.3, 8), (0.05, 64)]:
        mask = random_weights(rng, 40, 120, density) > 0
        keep, (col_ptr, col_rows, _, _) = K.compact(mask)
        order = decreasing_order(col_ptr)
        row_groups, closed = K.group_words(mask.shape[0], keep.size)
        ff, G = first_fit(order, col_ptr, col_rows, row_groups, closed, alpha)
        fg, G2, _ = fill_groups(order, K.column_bits(col_ptr, col_rows, mask.shape[0]), np.diff(col_ptr), alpha, 0)
        assert G == G2 and np.array_equal(ff, fg)


def _networkx_dsatur(mask):
    keep = np.flatnonzero(mask.any(axis=0))
    m = mask[:, keep].astype(np.int64)
    adj = np.triu((m.T @ m) > 0, 1)
    graph = nx.Graph()
    graph.add_nodes_from(range(keep.size))
    graph.add_edges_from(zip(*np.nonzero(adj)))
    colours = nx.greedy_color(graph, strategy="DSATUR")
    labels = np.full(mask.shape[1], -1)
    labels[keep] = [colours[i] for i in range(keep.size)]
    return labels


def test_dsatur_matches_networkx_colouring():
    """With alpha >= N and gamma = 0 the colouring equals networkx's DSATUR, tie rules included."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        R, N = int(rng.integers(2, 16)), int(rng.integers(2, 40))
        problem = CombineProblem.from_weights(random_weights(rng, R, N, float(rng.choice([0.1, 0.3, 0.6]))),
                                              alpha=N)
        assert np.array_equal(dsatur_labels(problem), _networkx_dsatur(problem.mask))


def test_dsatur_degrees_match_adjacency():
    """Degrees from the row lists equal those of the explicit conflict graph."""
    mask = random_weights(np.random.default_rng(2), 12, 50, 0.2) > 0
    keep, (col_ptr, col_rows, row_ptr, row_cols) = K.compact(mask)
    m = mask[:, keep].astype(np.int64)
    adj = (m.T @ m) > 0
    np.fill_diagonal(adj, False)
    assert np.array_equal(degrees(col_ptr, col_rows, row_ptr, row_cols), adj.sum(axis=1))


# --- shared kernels against numpy recomputation ---------------------------------------------

def _numpy_state(mask, labels, G):
    counts = np.stack([mask[:, labels == g].sum(axis=1) for g in range(G)])
    return counts, np.maximum(counts - 1, 0).sum(axis=1), np.bincount(labels[labels >= 0], minlength=G)


@pytest.fixture
def labelled():
    """A random mask (kept columns only), its incidence lists and a random labelling into 5 groups."""
    rng = np.random.default_rng(4)
    mask = random_weights(rng, 20, 60, 0.25) > 0
    keep, lists = K.compact(mask)
    labels = rng.integers(0, 5, keep.size).astype(np.int64)
    return mask[:, keep], lists, labels


def test_compact_and_column_bits():
    """Incidence lists and row bitsets agree with the mask; empty columns are dropped."""
    mask = random_weights(np.random.default_rng(8), 70, 30, 0.1) > 0
    mask[:, 4] = False
    keep, (col_ptr, col_rows, row_ptr, row_cols) = K.compact(mask)
    assert np.array_equal(keep, np.flatnonzero(mask.any(axis=0)))
    sub = mask[:, keep]
    for j in range(keep.size):
        assert col_rows[col_ptr[j]:col_ptr[j + 1]].tolist() == np.flatnonzero(sub[:, j]).tolist()
    for r in range(mask.shape[0]):
        assert row_cols[row_ptr[r]:row_ptr[r + 1]].tolist() == np.flatnonzero(sub[r]).tolist()
    bits = K.column_bits(col_ptr, col_rows, sub.shape[0])
    for j in range(keep.size):
        rebuilt = [r for r in range(sub.shape[0]) if (int(bits[j, r // 64]) >> (r % 64)) & 1]
        assert rebuilt == np.flatnonzero(sub[:, j]).tolist()
    assert K.expand_labels(30, keep, np.arange(keep.size)).tolist()[4] == -1


def test_group_state_matches_numpy(labelled):
    """group_state's counts, conflicts and sizes equal a numpy recomputation."""
    mask, (col_ptr, col_rows, _, _), labels = labelled
    counts, conflicts, sizes = K.group_state(labels, col_ptr, col_rows, mask.shape[0], 5)
    ref = _numpy_state(mask, labels, 5)
    assert np.array_equal(counts, ref[0]) and np.array_equal(conflicts, ref[1]) and np.array_equal(sizes, ref[2])


def test_move_deltas_match_numpy(labelled):
    """add/remove deltas predict the change, add/remove_column apply it, fits agrees with the limits."""
    mask, (col_ptr, col_rows, _, _), labels = labelled
    counts, conflicts, sizes = K.group_state(labels, col_ptr, col_rows, mask.shape[0], 5)
    for j in range(labels.size):
        src, dst = int(labels[j]), int((labels[j] + 1 + j) % 5)
        if dst == src:
            continue
        d_out = K.remove_delta(counts, src, col_ptr, col_rows, j)
        d_in = K.add_delta(counts, dst, col_ptr, col_rows, j)
        for alpha, budget in [(3, 0), (30, 5), (60, 10**6)]:
            expected = sizes[dst] < alpha and conflicts[dst] + d_in <= budget
            assert K.fits(counts, conflicts, sizes, dst, col_ptr, col_rows, j, alpha, budget) == expected
        before = conflicts.copy()
        K.remove_column(counts, conflicts, sizes, src, col_ptr, col_rows, j)
        K.add_column(counts, conflicts, sizes, dst, col_ptr, col_rows, j)
        labels[j] = dst
        ref = _numpy_state(mask, labels, 5)
        assert conflicts[src] == before[src] - d_out and conflicts[dst] == before[dst] + d_in
        assert np.array_equal(counts, ref[0]) and np.array_equal(conflicts, ref[1]) and np.array_equal(sizes, ref[2])


def test_bitset_kernels_match_counts(labelled):
    """Bitset deltas, fits and first_budget_fit agree with the count-based state."""
    mask, (col_ptr, col_rows, _, _), labels = labelled
    counts, conflicts, sizes = K.group_state(labels, col_ptr, col_rows, mask.shape[0], 5)
    bits = K.column_bits(col_ptr, col_rows, mask.shape[0])
    occ = np.zeros((5, bits.shape[1]), dtype=np.uint64)
    conf2, sizes2 = np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64)
    for j in range(labels.size):
        K.bits_add(occ, conf2, sizes2, labels[j], bits, j)
    assert np.array_equal(conf2, conflicts) and np.array_equal(sizes2, sizes)
    for j in range(labels.size):
        for g in range(5):
            assert K.bits_delta(occ, g, bits, j) == K.add_delta(counts, g, col_ptr, col_rows, j)
            for alpha, budget in [(12, 0), (20, 8)]:
                assert K.bits_fit(occ, conflicts, sizes, g, bits, j, alpha, budget) == \
                    K.fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, budget)
        for alpha, budget in [(12, 0), (20, 8), (15, 40)]:
            first = next((g for g in range(5)
                          if K.fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, budget)), 5)
            assert K.first_budget_fit(occ, conflicts, sizes, 5, bits, j, alpha, budget) == first


def test_first_free_group_matches_scan():
    """The row-bitset scan finds the lowest open conflict-free group, across word boundaries."""
    rng = np.random.default_rng(9)
    mask = random_weights(rng, 10, 300, 0.15) > 0
    keep, (col_ptr, col_rows, _, _) = K.compact(mask)
    m, alpha = keep.size, 3
    row_groups, closed = K.group_words(mask.shape[0], m)
    sizes = np.zeros(m, dtype=np.int64)
    occupied = np.zeros((m, mask.shape[0]), dtype=bool)
    G = 0
    for j in rng.permutation(m):
        rows = col_rows[col_ptr[j]:col_ptr[j + 1]]
        expect = next((g for g in range(G) if sizes[g] < alpha and not occupied[g, rows].any()), G)
        g = K.first_free_group(row_groups, closed, col_ptr, col_rows, j)
        assert g == expect
        K.mark_group(row_groups, closed, sizes, g, col_ptr, col_rows, j, alpha)
        occupied[g, rows] = True
        G = max(G, g + 1)
    assert G > 64  # the scan crossed a word boundary
