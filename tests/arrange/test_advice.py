"""Gamma advice in pack reports: when a packing is larger than dense, why, and what a gamma ladder measures."""

import itertools

import numpy as np
import pytest

import arrange
from arrange.layer import Layer
from arrange.pipeline import GAMMA_LADDER, gamma_advice, pack_layers, pair_conflicts
from arrange.report import format_table


def _sparse(R, N, density, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(R, N)) * (rng.random((R, N)) < density)


def test_pair_conflicts_matches_brute_force():
    """Every pair counted exactly when there are few; empty columns are not columns."""
    W = _sparse(12, 20, 0.2, seed=3)
    W[:, 7] = 0.0
    cols = [j for j in range(20) if W[:, j].any()]
    pairs = list(itertools.combinations(cols, 2))
    shared = sum(bool(np.any((W[:, i] != 0) & (W[:, j] != 0))) for i, j in pairs)
    assert pair_conflicts(W) == shared / len(pairs)
    assert pair_conflicts(np.eye(5)) == 0.0 and pair_conflicts(np.ones((3, 1))) == 0.0


def test_pair_conflicts_sampled_is_seeded():
    """Past the pair budget it samples: same seed same answer, close to the exact density."""
    W = _sparse(16, 400, 0.1, seed=4)
    exact = pair_conflicts(W, pairs=10 ** 6)
    assert pair_conflicts(W, seed=1) == pair_conflicts(W, seed=1)
    assert abs(pair_conflicts(W, seed=1) - exact) < 0.05


def test_near_complete_conflict_graph_gets_a_measured_ladder():
    """gamma = 0 on a 70%-sparse 128 x 192 matrix: 1x, larger than dense; each rung equals a direct ffd packing."""
    W = _sparse(128, 192, 0.3)
    report, _ = pack_layers([Layer.from_matrix(W, "fc")], solver="ffd", time_limit=2.0)
    (row,) = report.layers
    assert row.storage_compression < 1 and row.matrix_compression < 1.2
    advice = row.advice
    assert advice["conflict_pairs"] >= 0.9 and advice["density"] == pytest.approx(np.count_nonzero(W) / W.size)
    assert [r["gamma"] for r in advice["ladder"]] == list(GAMMA_LADDER)
    for rung in advice["ladder"]:
        direct = arrange.pack(W, gamma=rung["gamma"], solver="ffd", time_limit=2.0)
        assert rung["groups"] == direct.num_groups
        assert rung["pruned_pct"] == pytest.approx(100 * direct.pruned_fraction)
    paying = [r["gamma"] for r in advice["ladder"] if r["storage_compression"] >= 1]
    assert paying and advice["suggested_gamma"] == paying[0]
    assert f"Try --gamma {paying[0]:g}." in advice["message"] and "share a nonzero row" in advice["message"]
    assert f"advice fc: storage {row.storage_compression:.2f}x" in format_table(report)
    again, _ = pack_layers([Layer.from_matrix(W, "fc")], solver="ffd", time_limit=2.0)
    assert again.layers[0].advice == advice


def test_no_advice_when_packing_pays_and_ladder_starts_above_gamma():
    """A packing that beats dense gets none; at gamma = 0.1 only the larger rungs are tried."""
    good = np.kron(np.eye(8), np.ones((4, 1))) * 2.0   # 32 x 8, each column its own rows: one group of 8
    report, _ = pack_layers([Layer.from_matrix(np.tile(good, (1, 4)), "good")], solver="ffd", time_limit=2.0)
    assert report.layers[0].storage_compression >= 1 and report.layers[0].advice is None
    W = _sparse(64, 192, 0.5)
    result = arrange.pack(W, gamma=0.1, solver="ffd", time_limit=2.0)
    advice = gamma_advice(W, result, 0.9, alpha=8, gamma=0.1, time_limit=2.0)
    assert [r["gamma"] for r in advice["ladder"]] == [0.2]
    off, _ = pack_layers([Layer.from_matrix(W, "w")], solver="ffd", time_limit=2.0, advise=False)
    assert off.layers[0].advice is None
