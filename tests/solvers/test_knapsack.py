"""Multiple-choice knapsack DP against brute force."""

import numpy as np
import pytest

from solvers import knapsack
from solvers.problem import ProblemError


def random_instance(rng, groups, items, max_cost):
    costs = [rng.integers(0, max_cost + 1, size=rng.integers(1, items + 1)) for _ in range(groups)]
    values = [rng.normal(size=c.size) for c in costs]
    return costs, values


@pytest.mark.parametrize("seed", range(12))
def test_dp_matches_brute_force(seed):
    """The DP value equals exhaustive search, and its choice is feasible and attains it."""
    rng = np.random.default_rng(seed)
    costs, values = random_instance(rng, groups=4, items=4, max_cost=5)
    low = sum(int(c.min()) for c in costs)
    budget = int(rng.integers(low, low + 8))
    ref = knapsack.brute_force(costs, values, budget)
    got = knapsack.solve(costs, values, budget)
    assert got.value == pytest.approx(ref.value)
    assert got.cost <= budget
    assert got.cost == sum(int(costs[g][i]) for g, i in enumerate(got.choice))
    assert got.value == pytest.approx(sum(values[g][i] for g, i in enumerate(got.choice)))


def test_gcd_reduction_keeps_answer():
    """Costs sharing a large factor (PCNN's n * O * I) give the same answer as unit costs."""
    costs = [np.array([1, 2, 3]) * 64, np.array([1, 2, 3]) * 64]
    values = [np.array([1.0, 1.8, 2.1]), np.array([0.5, 1.5, 1.6])]
    got = knapsack.solve(costs, values, 4 * 64 + 10)
    assert got.choice.tolist() == [1, 1]
    assert got.value == pytest.approx(3.3)


def test_same_input_same_answer():
    """Ties are broken the same way on every call."""
    costs = [np.array([1, 1, 1])] * 3
    values = [np.array([1.0, 1.0, 1.0])] * 3
    a = knapsack.solve(costs, values, 3)
    b = knapsack.solve(costs, values, 3)
    assert a.choice.tolist() == b.choice.tolist() == [0, 0, 0]


@pytest.mark.parametrize("costs, values, budget, match", [
    ([[2], [3]], [[1.0], [1.0]], 4, "below the cheapest"),
    ([[1]], [[1.0]], -1, "budget >= 0"),
    ([[1.5]], [[1.0]], 3, "non-negative integers"),
    ([[1, 2]], [[1.0]], 3, "equal-length"),
    ([], [], 3, "at least one group"),
])
def test_bad_input(costs, values, budget, match):
    """Infeasible budgets and malformed groups give a one-line ProblemError."""
    with pytest.raises(ProblemError, match=match):
        knapsack.solve(costs, values, budget)
