"""P2 fixed-ratio grouping: every solver checked, exact ones against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from solvers import GroupProblem, Options, ProblemError, kept_magnitude
from solvers.group import SOLVERS, solve
from solvers.group import _kernels as K
from solvers.group.apex import partition_count, window_partitions

HEURISTICS = ["apex-swap", "tabu", "apex-window2", "apex-window3", "anneal", "lns"]
FAST = Options(time_limit=2.0, seed=3)


def _partitions(cols, k):
    """Every partition of ``cols`` into groups of k, each group once (slow reference)."""
    if not cols:
        yield []
        return
    first, rest = cols[0], cols[1:]
    for others in itertools.combinations(rest, k - 1):
        left = [c for c in rest if c not in others]
        for tail in _partitions(left, k):
            yield [first, *others, *tail]


def brute_force(problem: GroupProblem) -> float:
    """Best kept magnitude over all groupings."""
    return max(kept_magnitude(problem, np.array(p)) for p in _partitions(list(range(problem.shape[1])), problem.k))


def _problem(R, N, k, n, seed=0, density=1.0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((R, N)) * (rng.random((R, N)) < density)
    return GroupProblem.from_weights(W, k, n)


@pytest.fixture(scope="module")
def medium():
    return _problem(12, 32, 4, 2, seed=1, density=0.7)


@pytest.mark.parametrize("name", sorted(set(SOLVERS) - {"matching"}))
def test_every_solver_answer_passes_the_checker(name, medium):
    """Each registered solver returns a checked permutation within the rows bound."""
    result = solve(medium, name, FAST)
    assert sorted(result.order.tolist()) == list(range(32))
    assert result.kept <= result.upper_bound + 1e-9
    assert result.status in ("optimal", "feasible")


@pytest.mark.parametrize("name", HEURISTICS + ["auto"])
def test_heuristics_never_worse_than_their_start(name, medium):
    """Started from a random order, a heuristic keeps at least as much as that order."""
    start = np.random.default_rng(5).permutation(32)
    result = solve(medium, name, Options(time_limit=2.0, seed=1, hint=start))
    assert result.kept >= kept_magnitude(medium, start) - 1e-9
    assert result.kept >= result.identity_kept - 1e-9 or name != "auto"


@pytest.mark.parametrize("name", HEURISTICS + ["auto"])
def test_same_seed_same_answer(name, medium):
    """Two runs with one seed give the same order."""
    a = solve(medium, name, Options(time_limit=10.0, seed=7))
    b = solve(medium, name, Options(time_limit=10.0, seed=7))
    assert np.array_equal(a.order, b.order)


@pytest.mark.parametrize("name", ["anneal", "lns", "tabu", "apex-window2", "auto"])
def test_same_seed_same_answer_when_the_budget_binds(name):
    """With a time limit far too short for the search's own caps, the work budget derived
    from it (not the clock) stops the search: two runs still give the same order."""
    problem = _problem(64, 256, 4, 2, seed=5)
    # On a fresh install the first calls compile the kernels, which a short limit would cut;
    # a small instance runs every kernel (they are compiled per type, not per size).
    solve(_problem(8, 32, 4, 2, seed=5), name, Options(time_limit=60.0))
    opts = Options(time_limit=0.5, seed=2)
    a, b = solve(problem, name, opts), solve(problem, name, opts)
    assert np.array_equal(a.order, b.order)
    stops = [a.stats[s]["stopped_by"] for s in ("tabu", "lns") if s in a.stats] if name == "auto" \
        else [a.stopped_by]
    assert "clock" not in stops and not a.interrupted
    if name == "anneal":
        from solvers.group.anneal import move_budget
        assert a.iterations < move_budget(problem)
    elif name in ("tabu", "apex-window2", "auto"):
        assert stops[0] == "budget"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("N", [4, 6, 8])
def test_matching_equals_brute_force(N, seed):
    """For k = 2 the matching is optimal and says so."""
    problem = _problem(5, N, 2, 1, seed=seed, density=0.6)
    result = solve(problem, "matching")
    assert result.status == "optimal"
    assert result.kept == pytest.approx(brute_force(problem), rel=1e-9)


@pytest.mark.parametrize("k,n,N", [(4, 2, 8), (4, 1, 8), (4, 3, 8), (3, 1, 6), (2, 1, 8)])
def test_cpsat_optimum_equals_brute_force(k, n, N):
    """CP-SAT proves the brute-force optimum on tiny instances."""
    problem = _problem(6, N, k, n, seed=k * 10 + n, density=0.8)
    result = solve(problem, "cpsat", Options(time_limit=5.0))
    assert result.status == "optimal"
    assert result.kept == pytest.approx(brute_force(problem), rel=1e-6)
    assert result.upper_bound >= brute_force(problem) - 1e-9


def test_cpsat_assignment_model_matches_brute_force(monkeypatch):
    """The assignment model (used when C(N, k) is large) also proves the optimum."""
    from solvers.group import cpsat

    monkeypatch.setattr(cpsat, "MAX_SUBSETS", 0)
    problem = _problem(4, 8, 4, 2, seed=2, density=0.8)
    result = solve(problem, "cpsat", Options(time_limit=10.0))
    assert "assignment" in result.stats["method"]
    assert result.status == "optimal"
    assert result.kept == pytest.approx(brute_force(problem), rel=1e-6)


def test_cpsat_too_large_falls_back_and_says_so():
    """Beyond the model caps CP-SAT is skipped and the stats name the fallback."""
    problem = _problem(16, 64, 8, 1)
    result = solve(problem, "cpsat", Options(time_limit=1.0))
    assert result.fallback
    assert result.kept >= result.identity_kept


def test_auto_uses_exact_methods_when_small():
    """The portfolio proves optimality for k = 2 and for tiny instances."""
    assert solve(_problem(6, 10, 2, 1), "auto").status == "optimal"
    tiny = _problem(6, 8, 4, 2)
    result = solve(tiny, "auto", Options(time_limit=5.0))
    assert result.status == "optimal"
    assert result.kept == pytest.approx(brute_force(tiny), rel=1e-6)


def test_identity_is_the_unpermuted_order(medium):
    """The identity solver keeps exactly the unpermuted magnitude."""
    result = solve(medium, "identity")
    assert np.array_equal(result.order, np.arange(32))
    assert result.kept == result.identity_kept
    assert result.efficacy == 0.0


@pytest.mark.parametrize("k,n", [(4, 2), (4, 1), (4, 3), (3, 2), (8, 2)])
def test_kernels_agree_with_the_checker(k, n):
    """Kernel group values, replacements and LNS insertions match the numpy checker."""
    problem = _problem(7, 4 * k, k, n, seed=k + n, density=0.6)
    magT = K.prepare(problem.magnitude)
    order = np.random.default_rng(0).permutation(4 * k).astype(np.int64)
    assert K.all_group_kept(magT, order, k, n).sum() == pytest.approx(kept_magnitude(problem, order))
    swapped = order.copy()
    swapped[[1, 2 * k]] = swapped[[2 * k, 1]]
    assert K.replace_kept(magT, order, k, n, 1, order[2 * k]) + K.replace_kept(magT, order, k, n, 2 * k, order[1]) \
        + K.all_group_kept(magT, order, k, n)[[1, 3]].sum() == pytest.approx(kept_magnitude(problem, swapped))
    removed = np.arange(4, dtype=np.int64) * k
    values = K.insertion_values(magT, order, k, n, removed)
    assert np.diag(values).sum() == pytest.approx(kept_magnitude(problem, order))


@pytest.mark.parametrize("k,m", [(2, 2), (2, 4), (3, 3), (4, 2), (4, 3)])
def test_window_partitions_are_complete_and_distinct(k, m):
    """The window table lists every partition of m k columns into groups of k exactly once."""
    subsets, parts = window_partitions(k, m)
    assert len(parts) == partition_count(k, m)
    canon = {tuple(sorted(tuple(subsets[s]) for s in p)) for p in parts}
    assert len(canon) == len(parts)
    for p in parts:
        assert sorted(np.concatenate(subsets[p]).tolist()) == list(range(m * k))


def test_matching_refuses_k_other_than_2(medium):
    """matching names the restriction instead of answering k = 4."""
    with pytest.raises(ProblemError, match="k=2"):
        solve(medium, "matching")


@pytest.mark.parametrize("k,n,N", [(1, 1, 8), (4, 4, 8), (4, 5, 8), (16, 1, 8), (3, 1, 8), (4, 0, 8)])
def test_bad_parameters_raise(k, n, N):
    """k < 2, n >= k, n < 1, k > N and N not a multiple of k are refused."""
    with pytest.raises(ProblemError):
        GroupProblem.from_weights(np.ones((3, N)), k, n)


def test_unknown_solver_lists_the_allowed_ones(medium):
    """An unknown solver name raises and lists the registered names."""
    with pytest.raises(ProblemError, match="lns"):
        solve(medium, "nope")


def test_efficacy_on_the_apex_instance_is_measured_from_identity():
    """On the public Apex matrix the identity order and rows bound match Apex's figures."""
    np.random.seed(1)
    W = np.random.rand(128, 64)
    problem = GroupProblem.from_weights(W, 4, 2)
    result = solve(problem, "identity")
    assert result.kept == pytest.approx(2852.377, abs=1e-3)
    assert result.upper_bound == pytest.approx(3042.332, abs=1e-3)
    assert math.isclose(result.efficacy, 0.0)


def test_swap_searches_refuse_tables_too_large(monkeypatch, medium):
    """Above the N x N table cap the swap searches name the limit and the alternatives."""
    from solvers.group import apex

    monkeypatch.setattr(apex, "MAX_TABLE_COLUMNS", 16)
    with pytest.raises(ProblemError, match="anneal"):
        solve(medium, "tabu")


@pytest.mark.parametrize("name", [n for n in SOLVERS if n != "matching"])
def test_time_limit_is_honoured_on_a_large_instance(name):
    """On 64 x 512 at k = 4 every search stops near its 0.3 s limit (the slack absorbs machine noise)."""
    W = np.random.default_rng(5).random((64, 512))
    result = solve(GroupProblem.from_weights(W, k=4, n=2), name, Options(time_limit=0.3, seed=1))
    assert result.seconds <= 0.3 + 1.5
    assert result.kept >= result.identity_kept - 1e-9


def test_efficacy_is_measured_against_the_rows_bound():
    """A solver's tighter bound narrows the gap but not the efficacy scale (Apex's definition)."""
    np.random.seed(1)
    problem = GroupProblem.from_weights(np.random.rand(12, 8), k=4, n=2)
    result = solve(problem, "cpsat", Options(time_limit=10.0))
    assert result.status == "optimal"
    assert result.upper_bound < result.rows_bound          # the proof is tighter than the rows bound
    assert result.efficacy < 1.0
    room = result.rows_bound - result.identity_kept
    assert result.efficacy == pytest.approx((result.kept - result.identity_kept) / room)
