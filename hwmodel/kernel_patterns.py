"""PCNN pattern-pruned and PENNI shared-kernel conv layers on the systolic array.

Problem: the cycles, traffic and energy of a conv layer stored in the PCNN or
PENNI format, against the dense layer on the same array.

Method: both map onto the existing GEMM model (:func:`hwmodel.timing.schedule`
through :func:`hwmodel.simulate.simulate_layer`); no new timing formula.

- PCNN: with the reduction ordered (channel, y, x), each kernel is a run of
  kh*kw consecutive reduction inputs of which n are kept, so the layer is the
  fixed-ratio (k = kh*kw, n) layout of :func:`hwmodel.packed.fixed_ratio_layer`
  (K' = n * channels; each cell multiplexes the kh*kw activations of its
  kernel window).  Only the index differs: PCNN stores one pattern id of
  ceil(log2 K) bits per kernel rather than a position per value, charged here
  as ceil(ceil(log2 K) / n) bits per stored value (rounded up, so never
  under-counted); the K x kh*kw pattern table is a few bytes held in the
  decoders and is not charged.
- PENNI: two GEMMs run one after the other.  The basis convolution applies the
  d shared kernels to every kept input channel: as one GEMM the channels stack
  along the pixels (M * I' rows, N = d, K = kh*kw).  The combination is a 1x1
  convolution, M pixels, N = O' kept filters, K = the (input, basis) pairs in
  use, with the sparse coefficients stored densely on the array (a zero still
  takes its cell; useful MACs count the nonzeros only).

References: J. Tan et al., "PCNN: Pattern-based Fine-Grained Regular Pruning
Towards Optimizing CNN Accelerators", DAC 2020, doi:10.1109/DAC18072.2020.9218498;
S. Li et al., "PENNI: Pruned Kernel Sharing for Efficient CNN Inference",
ICML 2020, arXiv:2005.07133.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwmodel.energy import energy_table
from hwmodel.packed import LayerSpec, dense_layer, fixed_ratio_layer, index_bits_for
from hwmodel.simulate import Comparison, LayerResult, compare_layer, simulate_layer
from hwmodel.timing import ceil_div
from hwmodel.validation import HwModelError, check_int

__all__ = ["pcnn_layer", "simulate_pcnn", "penni_layers", "PenniComparison", "simulate_penni"]


def pcnn_layer(M: int, N: int, channels: int, kernel_size: int, n: int, patterns: int,
               weight_bits: int = 8, act_bits: int = 8, ifmap_words=None, name: str = "") -> LayerSpec:
    """A PCNN layer: N filters over ``channels`` kernels of ``kernel_size`` (kh*kw) keeping n each.

    Raises HwModelError unless 1 <= n <= kernel_size and kernel_size >= 2.
    """
    k2 = check_int("kernel_size", kernel_size, minimum=2)
    n, patterns = check_int("n", n), check_int("patterns", patterns)
    if n > k2:
        raise HwModelError(f"n must be <= kernel_size={k2}, got {n}")
    C = check_int("channels", channels)
    spec = fixed_ratio_layer(M, N, C * k2, k=k2, n=n, weight_bits=weight_bits, act_bits=act_bits,
                             nnz=N * C * n, ifmap_words=ifmap_words, name=name)
    return replace(spec, index_bits=ceil_div(index_bits_for(patterns), n))


def simulate_pcnn(M: int, N: int, channels: int, kernel_size: int, n: int, patterns: int,
                  rows: int = 32, cols: int = 32, dataflow: str = "ws", energy=None,
                  ifmap_words=None) -> Comparison:
    """A PCNN layer and its dense form (same pruned work) on the same array.

    Examples
    --------
    >>> c = simulate_pcnn(64, 32, 16, 9, n=4, patterns=8, dataflow="os")
    >>> c.packed.spec.K_packed, c.packed.spec.index_bits, round(c.speedup, 2)
    (64, 1, 1.63)
    """
    spec = pcnn_layer(M, N, channels, kernel_size, n, patterns, ifmap_words=ifmap_words)
    return compare_layer(spec, rows, cols, dataflow, energy)


def penni_layers(M: int, out_kept: int, in_kept: int, kernel_size: int, d: int, pairs: int, nnz: int,
                 weight_bits: int = 8, act_bits: int = 8, name: str = "") -> tuple[LayerSpec, LayerSpec]:
    """The basis GEMM (M * I', d, kh*kw) and the combination GEMM (M, O', pairs) of a PENNI layer."""
    I, d, k2 = check_int("in_kept", in_kept), check_int("d", d), check_int("kernel_size", kernel_size)
    pairs, nnz = check_int("pairs", pairs), check_int("nnz", nnz, minimum=0)
    if pairs > I * d:
        raise HwModelError(f"pairs must be <= in_kept * d = {I * d}, got {pairs}")
    basis = dense_layer(check_int("M", M) * I, d, k2, weight_bits, act_bits, name=f"{name}.basis")
    combine = dense_layer(M, check_int("out_kept", out_kept), pairs, weight_bits, act_bits, nnz=nnz,
                          name=f"{name}.combine")
    return basis, combine


@dataclass(frozen=True)
class PenniComparison:
    """The dense layer against PENNI's two GEMMs (run back to back) on the same array."""

    dense: LayerResult
    basis: LayerResult
    combine: LayerResult

    @property
    def cycles(self) -> int:
        return self.basis.cycles + self.combine.cycles

    @property
    def speedup(self) -> float:
        return self.dense.cycles / self.cycles

    @property
    def energy_ratio(self) -> float:
        return self.dense.total_energy_pj / (self.basis.total_energy_pj + self.combine.total_energy_pj)


def simulate_penni(M: int, out_channels: int, in_channels: int, kernel_size: int, out_kept: int,
                   in_kept: int, d: int, pairs: int, nnz: int, rows: int = 32, cols: int = 32,
                   dataflow: str = "ws", energy=None) -> PenniComparison:
    """A PENNI layer against the dense conv (M pixels, out x in kernels of kernel_size) on one array.

    Examples
    --------
    >>> c = simulate_penni(64, 32, 16, 9, 32, 16, d=4, pairs=64, nnz=256, dataflow="os")
    >>> c.basis.cycles, c.combine.cycles, round(c.speedup, 2)
    (2272, 252, 0.16)
    """
    table = energy_table(energy)
    dense = simulate_layer(dense_layer(M, out_channels, in_channels * kernel_size), rows, cols,
                           dataflow, table)
    basis, combine = penni_layers(M, out_kept, in_kept, kernel_size, d, pairs, nnz)
    return PenniComparison(dense, simulate_layer(basis, rows, cols, dataflow, table),
                           simulate_layer(combine, rows, cols, dataflow, table))
