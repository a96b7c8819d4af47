"""Sparse-tensor-core model: N:M reduction shrink through the dense fold formulas."""

import pytest

from hwmodel import HwModelError, fixed_ratio_layer, schedule, simulate_layer
from hwmodel.sparse_core import simulate_sparse_gemm, sparse_core_layer


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_cycles_are_dense_formula_with_reduced_k(dataflow):
    """Sparse cycles equal the dense schedule at K' = n * ceil(K / m)."""
    c = simulate_sparse_gemm(50, 40, 130, n=2, m=4, rows=16, cols=8, dataflow=dataflow)
    assert c.packed.spec.K_packed == 2 * 33
    assert c.packed.cycles == schedule(50, 40, 66, 16, 8, dataflow).cycles
    assert c.dense.cycles == schedule(50, 40, 130, 16, 8, dataflow).cycles


def test_hand_checked_output_stationary():
    """os, 32x32 array, M=N=64, K=128 at 2:4: 4 folds of 64+62 vs 128+62 cycles."""
    c = simulate_sparse_gemm(64, 64, 128, n=2, m=4, dataflow="os")
    assert (c.packed.cycles, c.dense.cycles) == (4 * 126, 4 * 190)
    assert c.speedup == pytest.approx(190 / 126)


def test_metadata_and_layer_equal_fixed_ratio():
    """The layer is the fixed-ratio (k=m) layout: 2-bit metadata per value for 2:4."""
    spec = sparse_core_layer(8, 16, 64, 2, 4)
    assert spec == fixed_ratio_layer(8, 16, 64, k=4, n=2)
    assert spec.index_bits == 2 and spec.fan_in == 4
    assert simulate_layer(spec).cycles == simulate_sparse_gemm(8, 16, 64).packed.cycles


@pytest.mark.parametrize("n,m", [(4, 4), (5, 4), (1, 1), (0, 4)])
def test_bad_nm(n, m):
    """n must be in [1, m) and m >= 2."""
    with pytest.raises(HwModelError):
        sparse_core_layer(8, 8, 8, n, m)
