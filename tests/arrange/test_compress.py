"""Layer compression: quantise, prune, arrange, pack, and the numbers it reports."""

import numpy as np
import pytest

from arrange.compress import CompressConfig, compress_matrix, group_keep, project_to_slots
from arrange.errors import ArrangeError
from arrange.formats import column_combine
from arrange.quant import from_subwords, quantize, to_subwords


@pytest.fixture(scope="module")
def W():
    """A 16 x 36 random matrix (a 4-channel 3x3 conv with 16 filters)."""
    return np.random.default_rng(1).normal(size=(16, 36))


@pytest.mark.parametrize("subword", [None, 4, 2])
def test_p1_effective_weights_decode_from_packing(W, subword):
    """The effective weights are exactly what the packed layer decodes to, dequantised."""
    cfg = CompressConfig(sparsity=0.7, subword=subword, solver="ffd", alpha=8, gamma=0.1, baseline=False)
    out = compress_matrix("l", W, cfg)
    dense = column_combine.decode(out.packed).astype(np.int32)
    if subword is not None:
        sw = to_subwords(np.zeros_like(W, dtype=np.int32), 8, subword)
        dense = from_subwords(type(sw)(dense, sw.shifts, sw.source, 8, subword))
    assert np.array_equal(out.weights, dense * out.scale[:, None])
    assert out.packed_cols == out.packed.num_groups >= out.bound
    slot = 8 if subword is None else subword
    assert out.matrix_compression == pytest.approx(36 * 8 / (out.packed_cols * slot))


def test_p2_keeps_top_n_per_group(W):
    """P2 keeps exactly the n largest of every (row, group) cell of the chosen order."""
    cfg = CompressConfig(sparsity=0.0, subword=None, problem="p2", k=4, n=1, solver="identity",
                         baseline=False)
    out = compress_matrix("l", W, cfg)
    q = quantize(W).q
    for g in range(9):
        cols = out.order[4 * g:4 * g + 4]
        kept = out.allowed[:, cols]
        assert np.all(kept.sum(axis=1) == 1)
        assert np.array_equal(np.abs(q[:, cols]).argmax(axis=1), kept.argmax(axis=1))
    assert out.matrix_compression == 4.0


def test_group_keep_ties_and_zeros():
    """Ties keep the earlier permuted column; zero entries are never kept."""
    M = np.array([[2, 2, 0, 0], [0, 0, 0, 5]])
    keep = group_keep(M, np.array([1, 0, 2, 3]), k=2, n=1)
    assert keep.tolist() == [[False, True, False, False], [False, False, False, True]]


def test_project_to_slots_nearest():
    """Projection picks the nearest value using only allowed subword slots."""
    q = np.array([[17, -100, 5, 0, 25]])
    allowed = np.array([[0, 1, 1, 1, 1, 0, 0, 0, 0, 1]], bool)
    assert project_to_slots(q, allowed, 8, 4).tolist() == [[16, -100, 5, 0, 32]]


def test_baseline_is_greedy_cc(W):
    """The column-combining baseline packs the same weight-level matrix with greedy-cc."""
    out = compress_matrix("l", W, CompressConfig(sparsity=0.8, solver="ffd", subword=None))
    assert out.baseline_cols is not None and out.baseline_compression == pytest.approx(36 / out.baseline_cols)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sparsity=1.0), "sparsity"),
    (dict(subword=3), "divisible"),
    (dict(problem="p3"), "problem"),
    (dict(problem="p2", k=4, n=4), "n < k"),
    (dict(alpha=0), "alpha"),
])
def test_bad_config(kwargs, message):
    """Meaningless settings are refused in one line."""
    with pytest.raises(ArrangeError, match=message):
        CompressConfig(**kwargs)


def test_all_zero_layer_refused():
    """A layer with nothing left after pruning names itself."""
    with pytest.raises(ArrangeError, match="layer z"):
        compress_matrix("z", np.zeros((3, 3)), CompressConfig())


def test_arrangement_aware_keeps_more_weights_within_budget(W):
    """Arrangement-aware pruning meets the budget yet keeps at least as many weights as prune-then-arrange."""
    plain = CompressConfig(sparsity=0.75, subword=None, solver="ffd", alpha=8, gamma=0.25, baseline=False)
    aware = CompressConfig(sparsity=0.75, subword=None, solver="ffd", alpha=8, gamma=0.25, baseline=False,
                           arrangement_aware=True)
    a = compress_matrix("l", W, aware)
    p = compress_matrix("l", W, plain)
    assert np.count_nonzero(a.weights) <= 0.25 * W.size
    assert np.count_nonzero(a.weights) >= np.count_nonzero(p.weights)


@pytest.mark.parametrize("problem", ["p1", "p2"])
def test_subword_cells_keep_largest_contribution(problem):
    """A cell keeps the subword worth most (|subword| * 2^shift), not the largest raw subword."""
    W = np.array([[127.0, 16.0, 15.0]] * 2)  # scale 1: subwords (low, high) = (15, 7), (0, 1), (15, 0)
    if problem == "p2":
        cfg = CompressConfig(sparsity=0.0, subword=4, problem="p2", k=6, n=2, solver="identity", baseline=False)
    else:   # a budget of 6 conflicts lets all six subword columns share one group
        cfg = CompressConfig(sparsity=0.0, subword=4, alpha=6, gamma=3.0, solver="ffd", baseline=False)
    out = compress_matrix("l", W, cfg)
    q = np.rint(out.weights / out.scale[:, None])
    expected = [112, 16, 0] if problem == "p2" else [112, 0, 0]
    assert out.packed_cols == (2 if problem == "p2" else 1)
    assert q.tolist() == [expected] * 2
