"""RIA channel reallocation: checked, deterministic, spreads heavy channels, and follows the user's score."""

from __future__ import annotations

import numpy as np
import pytest

import arrange
from solvers import Budget, GroupProblem, Options, kept_magnitude
from solvers.group import SOLVERS, solve
from solvers.group.ria import deal, refine


def _heavy(R=24, N=64, heavy=(3, 9, 17, 40, 41, 63), scale=30.0, seed=0):
    rng = np.random.default_rng(seed)
    W = np.abs(rng.standard_normal((R, N)))
    W[:, list(heavy)] *= scale
    return W, list(heavy)


def test_ria_is_registered_and_its_answer_passes_the_checker():
    """solve(..., "ria") returns a permutation within the bound, marked as RIA's in its stats."""
    W, _ = _heavy()
    problem = GroupProblem.from_weights(W, 4, 2)
    r = solve(problem, "ria", Options(time_limit=1.0, seed=2))
    assert "ria" in SOLVERS and sorted(r.order.tolist()) == list(range(64))
    assert r.kept == pytest.approx(kept_magnitude(problem, r.order))
    assert r.identity_kept <= r.kept <= r.upper_bound + 1e-9
    assert r.stats["method"].startswith("RIA")


def test_deal_puts_the_heaviest_columns_in_distinct_groups():
    """The deal sends the G heaviest columns to G different groups, the next G likewise."""
    W, heavy = _heavy()
    problem = GroupProblem.from_weights(W, 4, 2)
    order = deal(problem)
    group = np.empty(64, dtype=int)
    group[order] = np.arange(64) // 4
    assert len(set(group[heavy])) == len(heavy)
    ranked = np.argsort(-W.sum(axis=0), kind="stable")
    for tier in range(4):
        assert sorted(group[ranked[tier * 16:(tier + 1) * 16]].tolist()) == list(range(16))


def test_refine_never_loses_and_the_same_seed_gives_the_same_order():
    """Refinement keeps at least the deal's value; two runs with one seed agree, under a binding budget too."""
    rng = np.random.default_rng(4)
    problem = GroupProblem.from_weights(np.abs(rng.standard_normal((64, 1024))), 4, 2)   # G = 256: blocks
    start = deal(problem)
    runs = [refine(problem, start, 5, Budget.start(0.05)) for _ in range(2)]
    assert np.array_equal(runs[0].solution, runs[1].solution)
    assert kept_magnitude(problem, runs[0].solution) >= kept_magnitude(problem, start) - 1e-9
    assert runs[0].stats["block_groups"] == 128 and runs[0].iterations > 0
    free = refine(problem, start, 5, Budget.start(10.0))
    assert kept_magnitude(problem, free.solution) >= kept_magnitude(problem, runs[0].solution) - 1e-9


def test_ria_keeps_more_than_identity_when_heavy_channels_share_groups():
    """Heavy channels placed side by side in the identity order get spread, so RIA keeps more."""
    W, _ = _heavy(heavy=(0, 1, 2, 3, 4, 5, 6, 7))
    r = arrange.permute(W, k=4, n=2, solver="ria", time_limit=1.0)
    assert r.kept > r.identity_kept
    group = np.empty(64, dtype=int)
    group[r.order] = np.arange(64) // 4
    assert len(set(group[:8])) == 8


def test_a_single_group_is_answered_as_optimal():
    """N = k: the one grouping is returned, proven."""
    W = np.abs(np.random.default_rng(0).standard_normal((5, 4)))
    r = arrange.permute(W, k=4, n=2, solver="ria")
    assert r.status == "optimal" and sorted(r.order.tolist()) == [0, 1, 2, 3]


def test_auto_starts_from_ria_and_never_below_the_hint():
    """auto records its start; with a good hint it keeps at least the hint's value."""
    W, _ = _heavy(heavy=(0, 1, 2, 3, 4, 5, 6, 7))
    problem = GroupProblem.from_weights(W, 4, 2)
    r = solve(problem, "auto", Options(time_limit=1.0))
    assert r.stats["start"] in ("ria", "identity")
    hint = solve(problem, "tabu", Options(time_limit=1.0)).order
    r2 = solve(problem, "auto", Options(time_limit=0.2, hint=hint))
    assert r2.kept >= kept_magnitude(problem, hint) - 1e-9


def test_a_score_vector_spreads_the_channels_it_weights():
    """score= per-channel norms: the orders follow the score, not |W|, and equal the matrix form."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((16, 32))
    norms = np.ones(32)
    norms[[0, 1, 2, 3]] = 100.0                     # four outlier channels in one identity group
    r = arrange.permute(W, k=4, n=2, solver="ria", time_limit=1.0, score=norms)
    group = np.empty(32, dtype=int)
    group[r.order] = np.arange(32) // 4
    assert len(set(group[:4])) == 4
    same = arrange.permute(W, k=4, n=2, solver="ria", time_limit=1.0, score=np.abs(W) * norms)
    assert np.array_equal(r.order, same.order) and r.kept == pytest.approx(same.kept)
    plain = arrange.permute(W, k=4, n=2, solver="ria", time_limit=1.0)
    assert not np.array_equal(plain.order, r.order)


def test_the_keep_mask_follows_the_score():
    """In a cell where |W| and the score disagree, the entries with the higher score are kept."""
    W = np.array([[4.0, 3.0, 2.0, 1.0]])
    score = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert arrange.permute(W, k=4, n=2).keep_mask.tolist() == [[True, True, False, False]]
    assert arrange.permute(W, k=4, n=2, score=score).keep_mask.tolist() == [[False, False, True, True]]
    masked = arrange.permute(np.array([[4.0, 0.0, 2.0, 1.0]]), k=4, n=2, score=score)
    assert masked.keep_mask.tolist() == [[False, False, True, True]]   # a zero weight scores zero


@pytest.mark.parametrize("bad", [np.ones(31), -np.ones(32), np.full((8, 32), np.nan), np.ones((8, 31)), "x"])
def test_bad_scores_are_one_line_errors(bad):
    """Wrong shape, negative, NaN or non-numeric scores raise ArrangeError."""
    with pytest.raises(arrange.ArrangeError, match="score"):
        arrange.permute(np.ones((8, 32)), k=4, n=2, score=bad)
