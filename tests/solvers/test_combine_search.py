"""P1 local search (tabu, anneal) and the "auto" portfolio: validity, monotonicity, determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest

from solvers.check import check_labels
from solvers.combine import SOLVERS, canonical_labels, portfolio, reduce, solve
from solvers.combine.anneal import AnnealParams
from solvers.combine.tabu import TabuParams
from solvers.problem import CombineProblem, Options, ProblemError


def _random(seed: int, R: int, N: int, density: float, alpha: int = 8, gamma: float = 0.0):
    rng = np.random.default_rng(seed)
    W = (rng.random((R, N)) < density) * rng.random((R, N))
    W[0, 0] = 1.0
    return CombineProblem.from_weights(W, alpha=alpha, gamma=gamma)


INSTANCES = [
    (0, 24, 48, 0.12, 8, 0.0),
    (1, 16, 40, 0.25, 4, 0.0),
    (2, 20, 36, 0.20, 5, 0.1),
    (3, 32, 60, 0.08, 3, 0.0),
]


@pytest.fixture(scope="module", params=INSTANCES, ids=[f"inst{i[0]}" for i in INSTANCES])
def problem(request):
    return _random(*request.param)


def _singletons(problem: CombineProblem) -> np.ndarray:
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    return labels


@pytest.mark.parametrize("search", ["tabu", "anneal"])
def test_local_search_never_worse_than_its_start(problem, search):
    """From the all-singletons start, and from the fast heuristic, the answer is valid and no worse."""
    for start in (_singletons(problem), reduce.start_labels(problem, Options())):
        result = solve(problem, search, Options(time_limit=2.0, hint=start))
        check_labels(problem, result.labels)
        assert result.num_groups <= start.max() + 1
        assert result.num_groups >= result.lower_bound


@pytest.mark.parametrize("name", ["tabu", "anneal", "auto"])
def test_same_seed_same_answer(problem, name):
    """Two runs with one seed give identical labels."""
    opts = Options(time_limit=5.0, seed=3)
    first = solve(problem, name, opts)
    second = solve(problem, name, opts)
    assert np.array_equal(first.labels, second.labels)


def test_tabu_reaches_the_optimum_of_a_known_instance():
    """Cliques of 3 sharing nothing pack into exactly 3 groups (alpha = 4) from the singletons."""
    mask = np.kron(np.eye(4, dtype=bool), np.ones((1, 3), dtype=bool))    # 4 rows, 12 columns
    problem = CombineProblem.from_weights(mask, alpha=4)
    result = solve(problem, "tabu", Options(time_limit=2.0, hint=_singletons(problem)))
    assert result.num_groups == 3 and result.status == "optimal"


def test_tabu_params_are_validated():
    """A negative iteration setting is refused with a one-line message."""
    with pytest.raises(ProblemError, match="base_iters"):
        TabuParams(base_iters=-1)
    with pytest.raises(ProblemError, match="t_end"):
        AnnealParams(t_start=0.1, t_end=1.0)


def test_invalid_hint_is_refused(problem):
    """A hint that breaks the rules is a user error naming the broken rule."""
    bad = np.zeros(problem.shape[1], dtype=np.int64)
    bad[~problem.mask.any(axis=0)] = -1
    with pytest.raises(ProblemError, match="hint"):
        solve(problem, "tabu", Options(time_limit=1.0, hint=bad))


def test_auto_matches_exact_on_small_instances(problem):
    """auto is never worse than CP-SAT and its bound is never above CP-SAT's answer."""
    auto = solve(problem, "auto", Options(time_limit=3.0))
    exact = solve(problem, "cpsat", Options(time_limit=3.0))
    assert auto.num_groups <= exact.num_groups or exact.status != "optimal"
    assert auto.lower_bound <= exact.num_groups
    if exact.status == "optimal":
        assert auto.num_groups == exact.num_groups


def test_auto_uses_a_good_hint():
    """A hint at the lower bound comes back unchanged and proven (gamma = 0)."""
    problem = _random(5, 16, 30, 0.1, alpha=4)
    best = solve(problem, "cpsat", Options(time_limit=3.0))
    assert best.status == "optimal"
    result = solve(problem, "auto", Options(time_limit=3.0, hint=best.labels))
    assert result.num_groups == best.num_groups and result.status == "optimal"


def test_auto_returns_best_so_far_on_ctrl_c(monkeypatch):
    """KeyboardInterrupt during a stage returns the best earlier answer, marked interrupted."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(portfolio.tabu, "tabu", interrupted)
    problem = _random(6, 24, 60, 0.2, alpha=4)
    result = solve(problem, "auto", Options(time_limit=2.0))
    check_labels(problem, result.labels)
    assert result.interrupted is True


def test_auto_time_limit_is_honoured():
    """A medium instance returns loosely within its time limit, valid."""
    problem = _random(7, 48, 300, 0.12, alpha=8)
    start = time.perf_counter()
    result = solve(problem, "auto", Options(time_limit=2.0))
    assert time.perf_counter() - start < 2.0 + 5.0
    check_labels(problem, result.labels)


@pytest.mark.parametrize("name", ["tabu", "anneal", "auto"])
def test_gamma_budget_is_respected(name):
    """With gamma > 0 every group stays within floor(gamma * R) conflicts (checked) and uses it."""
    problem = _random(8, 20, 40, 0.3, alpha=6, gamma=0.15)
    result = solve(problem, name, Options(time_limit=2.0))
    check_labels(problem, result.labels)
    strict = solve(_random(8, 20, 40, 0.3, alpha=6, gamma=0.0), name, Options(time_limit=2.0))
    assert result.num_groups <= strict.num_groups


def test_labels_are_canonical_in_results(problem):
    """The front door renumbers groups by first column, so equal answers compare equal."""
    result = solve(problem, "tabu", Options(time_limit=1.0))
    assert np.array_equal(result.labels, canonical_labels(result.labels))
    assert "tabu" in SOLVERS and "auto" in SOLVERS


@pytest.mark.parametrize("gamma", [0.0, 0.1])
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_time_limit_is_honoured_on_a_hard_instance(name, gamma):
    """On 64 x 512 at density 0.15 every solver stops near its 0.3 s limit (slack for machine noise)."""
    problem = _random(11, 64, 512, 0.15, alpha=8, gamma=gamma)
    result = solve(problem, name, Options(time_limit=0.3, seed=1))
    assert result.seconds <= 0.3 + 1.5
    check_labels(problem, result.labels)
