"""Layer specs, packed-array checks and SRAM/DRAM traffic."""

import numpy as np
import pytest

from hwmodel import (
    HwModelError, check_packed, column_combined_layer, compare_layer, dense_layer,
    fixed_ratio_layer, layer_from_packed, simulate_conv, simulate_gemm, subword_layer,
)


def test_sram_reads_match_scalesim():
    """SRAM ifmap/filter reads equal SCALE-Sim 3.0.0's on two measured layers."""
    r = simulate_gemm(64, 64, 64, 32, 32, "os")
    assert (r.sram_reads["ifmap"], r.sram_reads["filter"]) == (8192, 8192)
    r = simulate_conv(10, 10, 3, 3, 4, 8, 1, rows=8, cols=8, dataflow="ws")
    assert (r.sram_reads["ifmap"], r.sram_reads["filter"], r.sram_writes["ofmap"]) == (2304, 288, 2560)
    assert r.scalesim_cycles == 429


def test_conv_lowering():
    """A conv maps to M = output pixels, N = filters, K = kh*kw*C (SCALE-Sim's output size)."""
    r = simulate_conv(9, 9, 3, 3, 16, 32, stride=2)
    assert (r.spec.M, r.spec.N, r.spec.K, r.spec.ifmap_words) == (16, 32, 144, 9 * 9 * 16)


def test_column_combined_vs_dense():
    """Combining 512 columns into 64 (alpha 8) cuts ws cycles 8x and stores 3 index bits per value."""
    spec = column_combined_layer(1024, 64, 512, groups=64, alpha=8, nnz=64 * 60)
    cmp = compare_layer(spec, 32, 32, "ws")
    assert cmp.speedup == 8.0
    assert spec.index_bits == 3
    assert cmp.packed.dram_bits["filter"] == 64 * 64 * (8 + 3)
    assert cmp.packed.dram_index_bits == 64 * 64 * 3
    assert cmp.dense.dram_bits["filter"] == 64 * 512 * 8
    assert cmp.packed.utilization == pytest.approx(8 * cmp.dense.utilization)
    assert cmp.energy_ratio > 1


def test_fixed_ratio_and_subword_specs():
    """(k, n) groups map K to n*ceil(K/k); subword values are s+1 bits with the shift in the index."""
    f = fixed_ratio_layer(10, 8, 64, k=4, n=2)
    assert (f.K_packed, f.fan_in, f.index_bits, f.useful_macs) == (32, 4, 2, 10 * 8 * 32)
    s = subword_layer(10, 8, 64, groups=40, alpha=4)
    assert (s.K_packed, s.value_bits, s.index_bits, s.subword_bits) == (40, 5, 2, 4)
    assert s.dense().K_packed == 64 and not s.dense().packed


def test_ofmap_partial_sums_ws():
    """ws writes partial sums once per row fold and reads them back on all folds but the first."""
    r = simulate_gemm(10, 20, 100, rows=32, cols=32, dataflow="ws")
    assert r.sram_writes["ofmap"] == 10 * 20 * 4
    assert r.sram_reads["ofmap"] == 10 * 20 * 3


def test_layer_from_packed_counts_weights_once():
    """Two subwords of one weight count as one useful MAC per pixel."""
    values = np.array([[3, 1], [0, 2]])
    select = np.array([[0, 0], [0, 1]])
    groups = np.array([[0, -1], [0, 1]])
    shifts = np.array([[4, 0], [0, 0]])
    spec = layer_from_packed(values, select, groups, M=5, K=2, shifts=shifts, subword_bits=4)
    # filter 0: column 0 (two subwords) -> 1 weight; filter 1: column 1 -> 1 weight
    assert spec.useful_macs == 5 * 2
    assert (spec.K_packed, spec.fan_in, spec.value_bits, spec.index_bits) == (2, 2, 5, 1)


def test_select_outside_group():
    """A select index beyond its group's size is rejected, naming the cell."""
    groups = np.array([[0, 1], [2, -1]])
    with pytest.raises(HwModelError, match=r"^select\[0, 1\]=1 points outside group 1 of size 1$"):
        check_packed(np.ones((1, 2)), np.array([[0, 1]]), groups)


@pytest.mark.parametrize("groups,msg", [
    (np.array([[0, -1], [-1, 2]]), "groups must hold column indices >= 0 followed only by -1"),
    (np.array([[0, 1], [-1, -1]]), "groups must be non-empty; group 1"),
    (np.array([[0, 1]]), r"groups must be a \(2, alpha\) array"),
])
def test_bad_groups(groups, msg):
    """Malformed group tables raise one-line errors naming groups."""
    with pytest.raises(HwModelError, match=msg):
        check_packed(np.ones((1, 2)), np.zeros((1, 2)), groups)


@pytest.mark.parametrize("make,field", [
    (lambda: dense_layer(0, 1, 1), "M"),
    (lambda: column_combined_layer(4, 4, 4, groups=2, alpha=0), "alpha"),
    (lambda: fixed_ratio_layer(4, 4, 4, k=2, n=3), "n"),
    (lambda: dense_layer(2, 2, 2, nnz=9), "useful_macs"),
    (lambda: subword_layer(2, 2, 2, groups=2, alpha=2, subword_bits=3), "subword_bits"),
    (lambda: subword_layer(2, 2, 2, groups=2, alpha=2, lanes=3), "lanes"),
    (lambda: layer_from_packed(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), 1, 1, lanes=2), "lanes"),
])
def test_bad_specs(make, field):
    """Bad layer descriptions name the offending field."""
    with pytest.raises(HwModelError, match=f"^{field} must"):
        make()
