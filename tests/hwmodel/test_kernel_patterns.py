"""PCNN and PENNI layers on the array: built from the GEMM model, index bits as documented."""

import pytest

from hwmodel import simulate_gemm
from hwmodel.kernel_patterns import pcnn_layer, simulate_pcnn, simulate_penni
from hwmodel.validation import HwModelError


def test_pcnn_layer_shape_and_index():
    """PCNN keeps n of 9 per kernel (K' = n * channels) with ceil(log2 K)/n index bits per value."""
    spec = pcnn_layer(100, 32, 16, 9, n=4, patterns=16)
    assert (spec.K, spec.K_packed, spec.fan_in) == (144, 64, 9)
    assert spec.index_bits == 1  # 4 id bits per kernel over 4 values
    assert spec.useful_macs == 100 * 32 * 16 * 4
    assert pcnn_layer(100, 32, 16, 9, n=2, patterns=32).index_bits == 3  # ceil(5 / 2)
    assert pcnn_layer(100, 32, 16, 9, n=4, patterns=1).index_bits == 0


def test_pcnn_cycles_are_the_packed_gemm():
    """The packed layer runs the dense fold formulas with K replaced by n * channels."""
    c = simulate_pcnn(64, 32, 16, 9, n=4, patterns=8, dataflow="os")
    assert c.packed.cycles == simulate_gemm(64, 32, 64, dataflow="os").cycles
    assert c.dense.cycles == simulate_gemm(64, 32, 144, dataflow="os").cycles


def test_penni_is_two_gemms():
    """PENNI's cycles are the basis GEMM (M*I', d, k2) plus the combination GEMM (M, O', pairs)."""
    c = simulate_penni(64, 32, 16, 9, 30, 12, d=4, pairs=40, nnz=200, dataflow="ws")
    assert c.basis.cycles == simulate_gemm(64 * 12, 4, 9, dataflow="ws").cycles
    assert c.combine.cycles == simulate_gemm(64, 30, 40, dataflow="ws").cycles
    assert c.cycles == c.basis.cycles + c.combine.cycles
    assert c.dense.cycles == simulate_gemm(64, 32, 144, dataflow="ws").cycles


@pytest.mark.parametrize("call, match", [
    (lambda: pcnn_layer(10, 4, 4, 1, n=1, patterns=1), "kernel_size"),
    (lambda: pcnn_layer(10, 4, 4, 9, n=10, patterns=1), "n must be <="),
    (lambda: simulate_penni(10, 4, 4, 9, 4, 4, d=2, pairs=9, nnz=9), "pairs must be <="),
])
def test_bad_input(call, match):
    """1x1 kernels, n > kh*kw and impossible pair counts are refused."""
    with pytest.raises(HwModelError, match=match):
        call()
