"""Tests for arrange.layer: the matrix view of conv and linear weights."""

import numpy as np
import pytest

from arrange.errors import LayerError
from arrange.layer import Layer, check_packable


def test_conv_matrix_column_order():
    """Conv column (i * kh + y) * kw + x holds weight[o, i, y, x], as DESIGN.md section 2 says."""
    w = np.random.default_rng(0).normal(size=(5, 3, 2, 4))
    M = Layer("c", "conv", w).matrix
    assert M.shape == (5, 3 * 2 * 4)
    for o, i, y, x in np.ndindex(w.shape):
        assert M[o, (i * 2 + y) * 4 + x] == w[o, i, y, x]


def test_linear_matrix_is_weight():
    """A linear layer's matrix is its (out, in) weight in float64."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer = Layer("fc", "linear", w)
    assert layer.shape2d == (3, 4)
    assert layer.matrix.dtype == np.float64
    np.testing.assert_array_equal(layer.matrix, w)


def test_mask_zeroes_matrix_and_accepts_01():
    """A 0/1 mask becomes bool and zeroes exactly the masked entries."""
    w = np.ones((2, 3))
    layer = Layer("fc", "linear", w, mask=np.array([[1, 0, 1], [0, 0, 1]]))
    assert layer.mask.dtype == bool
    np.testing.assert_array_equal(layer.matrix, [[1, 0, 1], [0, 0, 1]])
    assert layer.nnz == 3


def test_with_matrix_round_trip():
    """with_matrix reshapes back to the conv weight and masks the zeros."""
    w = np.random.default_rng(1).normal(size=(4, 2, 3, 3))
    layer = Layer("c", "conv", w, group=1, groups=2)
    M = layer.matrix
    M[:, ::2] = 0.0
    new = layer.with_matrix(M)
    assert new.weight.shape == w.shape and (new.group, new.groups) == (1, 2)
    np.testing.assert_array_equal(new.matrix, M)
    np.testing.assert_array_equal(new.mask.reshape(4, -1), M != 0)
    with pytest.raises(LayerError, match="layer c: matrix shape"):
        layer.with_matrix(M[:, :3])


@pytest.mark.parametrize("weight, mask, message", [
    (np.array([[1.0, np.nan]]), None, "NaN"),
    (np.array([[1.0, np.inf]]), None, "inf"),
    (np.ones(3), None, "1-D weight"),
    (np.ones((1, 1, 1, 1, 1)), None, "5-D weight"),
    (np.ones((2, 2)), np.ones((2, 3), bool), "mask shape"),
    (np.ones((2, 2)), np.full((2, 2), 0.5), "mask values"),
])
def test_bad_layers_raise_one_line_layer_error(weight, mask, message):
    """Bad weights or masks raise a one-line LayerError naming the layer."""
    with pytest.raises(LayerError, match=message) as err:
        Layer("fc", "linear", weight, mask)
    assert err.value.layer == "fc" and "\n" not in str(err.value)
    assert str(err.value).startswith("layer fc: ")


def test_grouped_name_and_base_name():
    """A group layer's base_name drops the [gN] suffix."""
    layer = Layer("conv1[g1]", "conv", np.ones((2, 1, 3, 3)), group=1, groups=2)
    assert layer.base_name == "conv1"
    assert Layer("conv1", "conv", np.ones((2, 1, 3, 3))).base_name == "conv1"


def test_check_packable_rejects_all_zero_and_empty():
    """All-zero and empty layers load but are not packable."""
    zero = Layer("z", "linear", np.zeros((3, 4)))
    with pytest.raises(LayerError, match="layer z: all weights are zero"):
        check_packable(zero)
    masked = Layer("m", "linear", np.ones((2, 2)), np.zeros((2, 2), bool))
    with pytest.raises(LayerError, match="all weights are zero"):
        check_packable(masked)
    with pytest.raises(LayerError, match="empty weight"):
        check_packable(Layer("e", "linear", np.zeros((0, 4))))
    check_packable(Layer("ok", "linear", np.eye(2)))


def test_from_matrix_bool_and_float():
    """from_matrix accepts a float matrix (zeros pruned) or a bool mask."""
    M = np.array([[0.0, 2.0], [3.0, 0.0]])
    np.testing.assert_array_equal(Layer.from_matrix(M).matrix, M)
    np.testing.assert_array_equal(Layer.from_matrix(M != 0).matrix, M != 0)
