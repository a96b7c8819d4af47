"""PCNN pattern selection: greedy, CP-SAT and the frequency rule against brute force."""

import math

import numpy as np
import pytest

from solvers import Budget, patterns
from solvers.problem import Options, ProblemError

FAST = Options(time_limit=2.0, seed=0)


def tiny(seed, kernels=8, k2=6):
    return np.random.default_rng(seed).random((kernels, k2)) ** 2


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("K", [1, 2, 3])
def test_greedy_within_guarantee_and_bound(seed, K):
    """Greedy reaches (1 - 1/e) of the brute-force optimum and its bound is >= the optimum."""
    e = tiny(seed)
    best = patterns.brute_force(e, 3, K)
    r = patterns.select_patterns(e, 3, K, solver="greedy")
    assert r.value <= best + 1e-9
    assert r.value >= (1 - 1 / math.e) * best - 1e-9
    assert r.bound >= best - 1e-9


def test_lazy_greedy_equals_plain_greedy():
    """Lazy evaluation picks the same set as recomputing every gain each round."""
    e = tiny(7, kernels=30, k2=9)
    problem = patterns.PatternProblem.build(e, 4, 4)
    V = problem.values
    chosen, current = [], np.zeros(V.shape[0])
    for _ in range(4):
        gains = np.maximum(V - current[:, None], 0).sum(axis=0)
        gains[chosen] = -1
        p = int(np.argmax(gains))
        chosen.append(p)
        current = np.maximum(current, V[:, p])
    lazy = patterns.greedy(problem, FAST, Budget.start(FAST.time_limit)).solution
    assert sorted(lazy.tolist()) == sorted(chosen)


@pytest.mark.parametrize("seed", range(4))
def test_cpsat_equals_brute_force(seed):
    """CP-SAT proves the brute-force optimum on tiny instances."""
    e = tiny(seed)
    best = patterns.brute_force(e, 2, 2)
    r = patterns.select_patterns(e, 2, 2, solver="cpsat", options=FAST)
    assert r.status == "optimal"
    assert r.value == pytest.approx(best, rel=1e-9)
    assert best <= r.bound <= best * (1 + 1e-5)


def test_cpsat_all_candidates():
    """Over all C(k*k, n) patterns CP-SAT matches brute force and is no worse than top-n candidates."""
    e = tiny(3, kernels=5, k2=4)
    best = patterns.brute_force(e, 2, 2, candidates="all")
    r = patterns.select_patterns(e, 2, 2, solver="cpsat", candidates="all", options=FAST)
    assert r.value == pytest.approx(best)
    assert r.value >= patterns.brute_force(e, 2, 2) - 1e-9


def test_frequency_rule():
    """Frequency picks the K most common top-n masks, and every kernel takes its best pattern."""
    e = np.array([[9.0, 8, 0, 0], [9, 8, 0, 0], [0, 0, 8, 9], [1, 0, 2, 0]])
    r = patterns.select_patterns(e, 2, 1, solver="frequency")
    assert r.patterns.astype(int).tolist() == [[1, 1, 0, 0]]
    assert r.value == pytest.approx(17 + 17 + 0 + 1)
    assert r.bound >= patterns.brute_force(e, 2, 1)


@pytest.mark.parametrize("solver", sorted(patterns.SOLVERS))
def test_every_solver_valid(solver):
    """Every registered solver returns <= K patterns of n positions and the argmax assignment."""
    e = tiny(11, kernels=12, k2=9)
    r = patterns.select_patterns(e, 3, 3, solver=solver, options=FAST)
    assert 1 <= r.patterns.shape[0] <= 3
    assert np.all(r.patterns.sum(axis=1) == 3)
    kept = e @ r.patterns.T.astype(float)
    assert np.allclose(kept[np.arange(12), r.assignment], kept.max(axis=1))
    assert r.value == pytest.approx(kept.max(axis=1).sum())
    assert r.bound >= r.value


def test_few_candidates_is_trivially_optimal():
    """With no more candidate masks than K every kernel keeps its own top-n mask."""
    e = np.array([[3.0, 1, 0, 0], [2, 1, 0, 0]])
    r = patterns.select_patterns(e, 2, 4)
    assert r.status == "optimal" and r.value == pytest.approx(7.0)


def test_same_seed_same_answer():
    """Same input and seed give the same patterns."""
    e = tiny(5, kernels=20, k2=9)
    a = patterns.select_patterns(e, 4, 3, solver="cpsat", options=Options(time_limit=1.0, seed=3))
    b = patterns.select_patterns(e, 4, 3, solver="cpsat", options=Options(time_limit=1.0, seed=3))
    assert np.array_equal(a.patterns, b.patterns)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0, "K": 1}, "n >= 1"),
    ({"n": 7, "K": 1}, "n <= k"),
    ({"n": 2, "K": 0}, "K >= 1"),
    ({"n": 2, "K": 1, "solver": "magic"}, "unknown pattern solver"),
    ({"n": 2, "K": 1, "candidates": "some"}, "unknown candidates"),
])
def test_bad_input(kwargs, match):
    """Bad parameters give a one-line ProblemError naming the fault."""
    with pytest.raises(ProblemError, match=match):
        patterns.select_patterns(tiny(0), **kwargs)


def test_negative_energy_rejected():
    """Energies must be non-negative."""
    with pytest.raises(ProblemError, match=">= 0"):
        patterns.select_patterns(-tiny(0), 2, 1)
