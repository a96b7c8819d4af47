"""Exact P1 solving: CP-SAT against brute force, bounds, and the structural reductions."""

from __future__ import annotations

import time

import numpy as np
import pytest

from solvers.check import check_labels
from solvers.bounds import combine_lower_bound
from solvers.budget import Budget
from solvers.combine import SOLVERS, cpsat, reduce, solve
from solvers.problem import CombineProblem, Options


def _partitions(items):
    """All set partitions of a list (Bell number many)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def brute_force(problem: CombineProblem) -> tuple[int, float]:
    """Lexicographic optimum (groups, pruned magnitude) by enumerating all partitions."""
    N = problem.shape[1]
    best = None
    for part in _partitions(problem.nonempty.tolist()):
        labels = np.full(N, -1, dtype=np.int64)
        for g, cols in enumerate(part):
            labels[cols] = g
        try:
            pruned = check_labels(problem, labels)
        except AssertionError:
            continue
        score = (len(part), float(problem.magnitude[pruned].sum()))
        if best is None or score < best:
            best = score
    return best


def _instance(seed: int, R: int, N: int, density: float, alpha: int, gamma: float) -> CombineProblem:
    rng = np.random.default_rng(seed)
    mask = rng.random((R, N)) < density
    mask[rng.integers(R), 0] = True
    W = mask * rng.integers(1, 10, size=(R, N))    # integer magnitudes: phase 2 is exact
    return CombineProblem.from_weights(W, alpha=alpha, gamma=gamma)


CASES = [
    (0, 5, 7, 0.35, 3, 0.0),
    (1, 6, 8, 0.30, 2, 0.0),
    (2, 4, 8, 0.25, 4, 0.0),
    (3, 6, 8, 0.05, 3, 0.0),     # several components
    (4, 5, 7, 0.45, 3, 0.2),     # budget 1
    (5, 6, 7, 0.40, 4, 0.35),    # budget 2
]


@pytest.fixture(scope="module", params=CASES, ids=[f"case{c[0]}" for c in CASES])
def case(request):
    problem = _instance(*request.param)
    return problem, brute_force(problem)


@pytest.mark.parametrize("model", ["set", "assignment"])
def test_cpsat_proves_brute_force_optimum(case, model, monkeypatch):
    """Both CP-SAT models report 'optimal' with exactly the enumerated lexicographic optimum."""
    problem, (G, pruned) = case
    if model == "assignment":
        monkeypatch.setattr(cpsat, "feasible_groups", lambda problem, **limits: None)
    elif problem.budget > 0:
        pytest.skip("the set model is for gamma = 0")
    result = solve(problem, "cpsat", Options(time_limit=5.0))
    assert result.status == "optimal"
    assert result.num_groups == G
    assert result.pruned_magnitude == pytest.approx(pruned)


@pytest.mark.parametrize("name", ["ffd", "dsatur", "tabu", "anneal", "cpsat", "auto"])
def test_bounds_bracket_the_optimum(case, name):
    """Every solver's lower bound <= the true optimum <= its group count; 'optimal' is never wrong."""
    if name not in SOLVERS:
        pytest.skip(f"{name} not registered")
    problem, (G, pruned) = case
    result = solve(problem, name, Options(time_limit=2.0))
    assert result.lower_bound <= G <= result.num_groups
    if result.status == "optimal":
        assert (result.num_groups, result.pruned_magnitude) == (G, pytest.approx(pruned))


def test_twin_classes_name_lowest_identical_column():
    """Identical columns share the lowest index of their class; empty columns get -1."""
    mask = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 1], [1, 0, 1, 1, 0]], dtype=bool)
    assert reduce.twin_classes(mask).tolist() == [0, -1, 0, 3, 4]


def test_components_partition_the_nonempty_columns():
    """gamma = 0 components are the conflict graph's connected components, largest first."""
    mask = np.zeros((4, 7), dtype=bool)
    mask[0, [0, 3]] = mask[1, [3, 5]] = mask[2, [1, 2]] = mask[3, 6] = True
    structure = reduce.analyse(CombineProblem.from_weights(mask, alpha=2))
    assert [c.tolist() for c in structure.components] == [[0, 3, 5], [1, 2], [6]]


def _two_cliques_and_single() -> np.ndarray:
    mask = np.zeros((3, 5), dtype=bool)
    mask[0, [0, 1]] = mask[1, [2, 3]] = mask[2, 4] = True
    return mask


def test_lift_shares_groups_across_components():
    """Groups of different components share one array column when alpha allows it."""
    problem = CombineProblem.from_weights(_two_cliques_and_single(), alpha=3)
    comps = reduce.analyse(problem).components
    subs = [np.arange(c.size) if c.size > 1 else np.zeros(1, dtype=np.int64) for c in comps]
    labels = reduce.lift(5, comps, subs, alpha=3)
    check_labels(problem, labels)
    assert labels.max() + 1 == 2 == reduce.lifted_bound([2, 2, 1], 5, 3)


def test_lift_packs_best_fit():
    """Two paths a-b-c (groups {a, c}, {b}) pack into 2 groups of alpha = 3, the bound."""
    mask = np.zeros((4, 6), dtype=bool)
    mask[0, [0, 1]] = mask[1, [1, 2]] = mask[2, [3, 4]] = mask[3, [4, 5]] = True
    problem = CombineProblem.from_weights(mask, alpha=3)
    comps = reduce.analyse(problem).components
    labels = reduce.lift(6, comps, [np.array([0, 1, 0]), np.array([0, 1, 0])], alpha=3)
    check_labels(problem, labels)
    assert labels.max() + 1 == 2 == reduce.lifted_bound([2, 2], 6, 3)


def test_components_match_the_unsplit_model():
    """Solving components separately and packing them gives the unsplit model's optimum."""
    problem = _instance(3, 8, 40, 0.04, 3, 0.0)
    assert len(reduce.analyse(problem).components) > 1
    split = solve(problem, "cpsat", Options(time_limit=5.0))
    budget = Budget.start(5.0)
    whole = cpsat._solve_one(problem, reduce.start_labels(problem, Options(), budget), Options(), budget,
                             combine_lower_bound(problem), cpsat.feasible_groups(problem))
    assert split.status == "optimal" and whole[2]
    assert split.num_groups == int(whole[0].max()) + 1


def test_too_large_falls_back_to_the_heuristic(monkeypatch):
    """Past the model size limit CP-SAT is not run; the heuristic answer comes back, marked."""
    monkeypatch.setattr(cpsat, "MAX_ASSIGN_VARS", 10)
    problem = _instance(7, 10, 20, 0.3, 4, 0.2)   # gamma > 0: no early exit at the bound
    result = solve(problem, "cpsat", Options(time_limit=1.0))
    assert result.fallback
    check_labels(problem, result.labels)


def test_cpsat_time_limit_is_honoured():
    """A model too hard to close in 1 s still returns, loosely within the limit."""
    rng = np.random.default_rng(11)
    problem = CombineProblem.from_weights(rng.random((40, 90)) < 0.12, alpha=6)
    start = time.perf_counter()
    result = solve(problem, "cpsat", Options(time_limit=1.0))
    assert time.perf_counter() - start < 1.0 + 5.0
    check_labels(problem, result.labels)


def test_build_model_accepts_its_hint():
    """The canonicalised heuristic hint satisfies the model with symmetry breaking (gamma 0 and > 0)."""
    from ortools.sat.python import cp_model

    for gamma in (0.0, 0.3):
        problem = _instance(9, 6, 12, 0.3, 3, gamma)
        hint = reduce.start_labels(problem, Options())
        model, _ = cpsat.build_model(problem, int(hint.max()) + 1, hint, combine_lower_bound(problem))
        model.clear_objective()
        solver = cp_model.CpSolver()
        solver.parameters.fix_variables_to_their_hinted_value = True
        solver.parameters.num_workers = 1
        assert solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def test_feasible_groups_are_all_conflict_free_subsets():
    """The set model's groups are exactly the conflict-free subsets of 1..alpha columns."""
    from itertools import combinations

    problem = _instance(12, 5, 8, 0.3, 3, 0.0)
    cols = problem.nonempty
    m = problem.mask[:, cols]
    expected = {c for k in range(1, 4) for c in combinations(range(cols.size), k)
                if m[:, list(c)].sum(axis=1).max() <= 1}
    groups = cpsat.feasible_groups(problem)
    assert len(groups) == len(expected) and set(groups) == expected
    assert cpsat.feasible_groups(problem, limit=3) is None or len(expected) <= 3


@pytest.mark.parametrize("solver", ["tabu", "anneal", "auto"])
def test_same_seed_same_answer_when_the_budget_binds(solver):
    """gamma > 0 and a time limit far below the searches' iteration caps: the work budget
    derived from it, not the clock, ends them, so two runs give the same labels."""
    rng = np.random.default_rng(11)
    problem = CombineProblem(rng.random((128, 256)) * (rng.random((128, 256)) < 0.1), 8, 0.05)
    # On a fresh install the first calls compile the kernels, which a short limit would cut.
    solve(problem, solver, Options(time_limit=60.0))
    opts = Options(time_limit=0.5, seed=4)
    a, b = solve(problem, solver, opts), solve(problem, solver, opts)
    assert np.array_equal(a.labels, b.labels)
    if solver == "auto":
        assert a.stats["stages"] == b.stats["stages"]
    else:
        assert a.stopped_by == "budget" and not a.interrupted
