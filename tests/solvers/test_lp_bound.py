"""The set-covering LP bound for P1 (gamma = 0): valid, stronger than the clique bound, exact pricing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from solvers.combine import solve
from solvers.combine._kernels import column_bits, compact
from solvers.combine.lp_bound import branch_and_bound_pricing, lp_bound
from solvers.problem import CombineProblem, Options


def _odd_cycle(length: int) -> np.ndarray:
    """A mask whose conflict graph is a cycle: row i holds columns i and i + 1 (mod length)."""
    mask = np.zeros((length, length), dtype=bool)
    for i in range(length):
        mask[i, [i, (i + 1) % length]] = True
    return mask


def test_lp_bound_proves_the_odd_cycle():
    """C5: clique bound 2, fractional chromatic number 2.5, so the LP bound proves 3 groups optimal."""
    problem = CombineProblem.from_weights(_odd_cycle(5), alpha=5)
    labels = solve(problem, "dsatur").labels
    bound, stats = lp_bound(problem, labels, Options(time_limit=5.0))
    assert bound == 3 and stats["lp"] == pytest.approx(2.5)
    result = solve(problem, "auto", Options(time_limit=5.0))
    assert result.num_groups == 3 and result.lower_bound == 3 and result.status == "optimal"


@pytest.mark.parametrize("seed", range(6))
def test_lp_bound_never_exceeds_the_proven_optimum(seed):
    """On random instances CP-SAT solves exactly, the LP bound is at most the optimum."""
    rng = np.random.default_rng(seed)
    mask = rng.random((10, 14)) < 0.3
    mask[0, 0] = True
    problem = CombineProblem.from_weights(mask, alpha=3)
    exact = solve(problem, "cpsat", Options(time_limit=10.0))
    assert exact.status == "optimal"
    bound, _ = lp_bound(problem, exact.labels, Options(time_limit=5.0))
    assert bound <= exact.num_groups


@pytest.mark.parametrize("seed", range(5))
def test_branch_and_bound_pricing_matches_enumeration(seed):
    """Finds a set heavier than the target exactly when brute force says one exists."""
    rng = np.random.default_rng(seed)
    mask = rng.random((8, 12)) < 0.3
    mask[:, mask.sum(axis=0) == 0] = True
    keep, (col_ptr, col_rows, _, _) = compact(mask)
    bits = column_bits(col_ptr, col_rows, mask.shape[0])
    weight = rng.random(keep.size)
    alpha = 3
    best = max(sum(weight[list(s)]) for k in range(1, alpha + 1) for s in itertools.combinations(range(keep.size), k)
               if not (mask[:, keep[list(s)]].sum(axis=1) > 1).any())
    order = np.argsort(-weight, kind="stable").astype(np.int64)
    found = np.empty((4, alpha), dtype=np.int64)
    for target in (best - 1e-9, best + 1e-9):
        hits, finished = branch_and_bound_pricing(order, bits, weight, alpha, target, 10**7, found)
        assert finished and (hits > 0) == (target < best)
        for row in found[:hits]:
            members = row[row >= 0]
            assert weight[members].sum() > target
            assert not (mask[:, keep[members]].sum(axis=1) > 1).any()
