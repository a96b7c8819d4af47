"""Tests for arrange.prune: magnitude pruning per layer and global."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.layer import Layer
from arrange.prune import magnitude_prune, prune_layers


def _layers():
    rng = np.random.default_rng(0)
    return [Layer("c", "conv", rng.normal(size=(4, 3, 3, 3))),
            Layer("fc", "linear", 10 * rng.normal(size=(5, 8)), rng.random((5, 8)) < 0.8)]


def _zeros(M):
    return int(np.count_nonzero(M == 0))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_layer_scope_hits_sparsity_and_keeps_largest(sparsity):
    """Per layer: round(s * n) zeros (or the existing ones, if more), and every kept |w| >= every pruned |w|."""
    for before, after in zip(_layers(), prune_layers(_layers(), sparsity)):
        M0, M1 = before.matrix, after.matrix
        assert _zeros(M1) == max(_zeros(M0), int(sparsity * M0.size + 0.5))
        assert np.all(M1[M0 == 0] == 0), "already-pruned weights must stay pruned"
        kept, cut = np.abs(M0[M1 != 0]), np.abs(M0[(M1 == 0) & (M0 != 0)])
        assert cut.size == 0 or kept.min() >= cut.max()
        np.testing.assert_array_equal(M1[M1 != 0], M0[M1 != 0])
        np.testing.assert_array_equal(after.mask, after.weight != 0)


def test_global_scope_uses_one_threshold():
    """Global: total zeros = round(s * total) and one magnitude threshold across layers."""
    before = _layers()
    after = prune_layers(before, 0.6, scope="global")
    total = sum(l.matrix.size for l in before)
    assert sum(_zeros(l.matrix) for l in after) == int(0.6 * total + 0.5)
    kept = np.concatenate([np.abs(b.matrix[a.matrix != 0]) for b, a in zip(before, after)])
    cut = np.concatenate([np.abs(b.matrix[(a.matrix == 0) & (b.matrix != 0)]) for b, a in zip(before, after)])
    assert kept.min() >= cut.max()
    # the large-magnitude linear layer keeps more than the conv layer under one threshold
    assert _zeros(after[1].matrix) / after[1].matrix.size < _zeros(after[0].matrix) / after[0].matrix.size


def test_ties_are_deterministic_lowest_index_first():
    """Equal magnitudes are pruned in flat-index order."""
    M = np.array([[1.0, -1.0, 1.0], [2.0, 1.0, -1.0]])
    np.testing.assert_array_equal(magnitude_prune(M, 0.5), [[0, 0, 0], [2, 1, -1]])
    np.testing.assert_array_equal(magnitude_prune(M, 0.5), magnitude_prune(M.copy(), 0.5))


def test_prune_small_brute_force():
    """magnitude_prune keeps the largest-|w| entries, checked against sorting by hand."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        M = rng.normal(size=(3, 5)).round(1)
        s = rng.choice([0.2, 0.4, 0.6])
        k = int(s * M.size + 0.5)
        order = sorted(range(M.size), key=lambda i: (abs(M.flat[i]), i))
        ref = M.copy().ravel()
        ref[order[:k]] = 0.0
        np.testing.assert_array_equal(magnitude_prune(M, s), ref.reshape(M.shape))


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, "half", None])
def test_bad_sparsity_raises(sparsity):
    """Sparsity outside [0, 1) is a one-line ArrangeError."""
    with pytest.raises(ArrangeError, match=r"sparsity must be"):
        prune_layers(_layers(), sparsity)


def test_bad_scope_raises():
    """An unknown scope names the allowed ones."""
    with pytest.raises(ArrangeError, match="allowed: layer, global"):
        prune_layers(_layers(), 0.5, scope="model")
