"""P2 at scale, on small shapes: the fast checker, budgeted setup steps, single groups, scores."""

from __future__ import annotations

import numpy as np
import pytest

import arrange
from solvers import GroupProblem, Options
from solvers.budget import OPS_PER_SECOND
from solvers.check import kept_and_mask, kept_magnitude, kept_mask
from solvers.group import SOLVERS, solve
from solvers.group.lns import BLOCK_GROUPS


def _reference(problem: GroupProblem, order: np.ndarray):
    """Kept magnitude and mask by a full sort of every cell (slow, obviously right)."""
    R, N = problem.shape
    cells = problem.magnitude[:, order].reshape(R, N // problem.k, problem.k)
    kept = float(np.sort(cells, axis=2)[:, :, problem.k - problem.n:].sum())
    top = np.argsort(-cells, axis=2, kind="stable")[:, :, :problem.n]
    keep = np.zeros(cells.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=2)
    mask = np.empty((R, N), dtype=bool)
    mask[:, order] = keep.reshape(R, N)
    return kept, mask & (problem.magnitude > 0)


@pytest.mark.parametrize("seed", range(40))
def test_the_checker_matches_a_full_sort_with_ties_and_zeros(seed):
    """kept_and_mask equals sorting every cell, for any k, n, with ties (earlier position wins) and zeros."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    n = int(rng.integers(1, k))
    G, R = int(rng.integers(1, 6)), int(rng.integers(1, 600))
    W = rng.integers(0, 4, size=(R, G * k)).astype(float) if seed % 2 else \
        rng.random((R, G * k)) * (rng.random((R, G * k)) < 0.6)
    W[0, 0] = 1.0
    problem = GroupProblem.from_weights(W, k, n)
    order = rng.permutation(G * k)
    kept, mask = kept_and_mask(problem, order)
    ref_kept, ref_mask = _reference(problem, order)
    assert kept == pytest.approx(ref_kept, rel=1e-12)
    assert np.array_equal(mask, ref_mask)
    assert kept_magnitude(problem, order) == kept       # exactly: one summation order in both paths
    assert np.array_equal(kept_mask(problem, order), mask)


def test_the_swap_searches_fall_back_to_lns_when_their_table_does_not_fit():
    """A 2048-column table at a 0.2 s limit is not built: LNS answers, says why, within the budget."""
    W = np.abs(np.random.default_rng(0).standard_normal((64, 2048)))
    for name in ("apex-swap", "tabu"):
        r = arrange.permute(W, k=4, n=2, solver=name, time_limit=0.2)
        assert "swap table" in r.fallback and "LNS instead" in r.fallback
        assert r.kept >= r.identity_kept and r.stopped_by == "budget"


@pytest.mark.parametrize("name", sorted(set(SOLVERS) - {"matching"}))
def test_no_solver_spends_much_beyond_its_budget(name):
    """Each solver's charged operations stay within 2% of what the limit credits (one window's slack)."""
    W = np.abs(np.random.default_rng(0).standard_normal((64, 1024)))
    r = arrange.permute(W, k=4, n=2, solver=name, time_limit=0.2)
    assert r.ops <= 1.02 * 0.2 * OPS_PER_SECOND


def test_lns_moves_take_blocks_of_groups_on_wide_layers():
    """With G > BLOCK_GROUPS each assignment move reassigns one block; same seed, same order."""
    W = np.abs(np.random.default_rng(2).standard_normal((32, 4 * (BLOCK_GROUPS + 72))))
    problem = GroupProblem.from_weights(W, 4, 2)
    a = solve(problem, "lns", Options(time_limit=0.3, seed=4))
    b = solve(problem, "lns", Options(time_limit=0.3, seed=4))
    assert a.stats["block_groups"] == BLOCK_GROUPS and a.iterations > 1
    assert np.array_equal(a.order, b.order) and a.kept > a.identity_kept


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_takes_a_single_group(name):
    """N = k is one group: every solver returns it as optimal; N < k is a one-line error."""
    W = np.abs(np.random.default_rng(0).standard_normal((6, 4)))
    r = arrange.permute(W, k=4, n=2, solver=name)
    assert r.status == "optimal" and r.padded == 0 and r.keep_mask.sum() == 12
    with pytest.raises(arrange.ArrangeError, match="k <= number of columns"):
        arrange.permute(W[:, :3], k=4, n=2, solver=name)


def test_an_outlier_layer_in_two_to_four_auto_beats_identity_and_ria_alone():
    """2:4 with a few heavy channels: auto keeps at least what RIA alone keeps, both above identity."""
    rng = np.random.default_rng(3)
    W = np.abs(rng.standard_normal((64, 512)))
    W[:, rng.choice(512, size=6, replace=False)] *= 25.0
    W[:, :4] *= 25.0                                   # four of them in one identity group
    ria = arrange.permute(W, k=4, n=2, solver="ria", time_limit=0.5)
    auto = arrange.permute(W, k=4, n=2, solver="auto", time_limit=0.5)
    assert ria.kept > ria.identity_kept
    assert auto.kept >= ria.kept - 1e-9


def test_the_score_is_what_auto_maximises():
    """With score=, kept is the score the order keeps (checked by the checker on the score matrix)."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((32, 128))
    S = np.abs(W) * rng.uniform(0.1, 10.0, size=128)
    r = arrange.permute(W, k=4, n=2, time_limit=0.3, score=S)
    problem = GroupProblem.from_weights(S, 4, 2)
    assert r.kept == pytest.approx(kept_magnitude(problem, r.order))
    assert np.array_equal(r.keep_mask, kept_mask(problem, r.order))
