"""A sparse-tensor-core style array that skips by N:M structure.

Problem: the cost of a GEMM whose weights are n:m sparse (n kept in every m
consecutive reduction inputs, e.g. 2:4) on an R x C array that stores only the
kept values plus metadata, against the dense GEMM on the same array.

Method: as in the NVIDIA A100 sparse tensor core, the weights are stored
compressed along the reduction (K' = n * ceil(K / m) values per filter) with a
ceil(log2 m)-bit position per value; the metadata drives an m:1 multiplexer
that picks, from the m activations of the group, the one each stored value
multiplies.  The array therefore runs the dense fold formulas with K replaced
by K' (:func:`hwmodel.timing.schedule`, SCALE-Sim 3.0.0 stall-free), so the
ideal speedup is m / n when K is a multiple of m and the array is filled; the
multiplexers, the index bits in storage and traffic, and the m activation
streams per cell are charged by :mod:`hwmodel.energy` and
:mod:`hwmodel.traffic` through :func:`hwmodel.packed.fixed_ratio_layer`, which
describes exactly this layout.  This module only names the hardware, checks
the N:M parameters and returns the dense-vs-sparse comparison.

References: NVIDIA, "NVIDIA A100 Tensor Core GPU Architecture" whitepaper
(2020), section "Fine-Grained Structured Sparsity"; A. Mishra et al.,
"Accelerating Sparse Deep Neural Networks", arXiv:2104.08378 (2021).
"""

from __future__ import annotations

from hwmodel.packed import LayerSpec, fixed_ratio_layer
from hwmodel.simulate import Comparison, compare_layer
from hwmodel.validation import HwModelError, check_int

__all__ = ["sparse_core_layer", "simulate_sparse_gemm"]


def sparse_core_layer(M: int, N: int, K: int, n: int = 2, m: int = 4, weight_bits: int = 8,
                      act_bits: int = 8, nnz=None, ifmap_words=None, name: str = "") -> LayerSpec:
    """An n:m sparse layer as the sparse core stores it (K' = n * ceil(K/m), ceil(log2 m)-bit metadata).

    Raises HwModelError unless 1 <= n < m and m >= 2.
    """
    n, m = check_int("n", n), check_int("m", m, minimum=2)
    if n >= m:
        raise HwModelError(f"n must be < m={m} for N:M sparsity, got n={n}")
    return fixed_ratio_layer(M, N, K, k=m, n=n, weight_bits=weight_bits, act_bits=act_bits, nnz=nnz,
                             ifmap_words=ifmap_words, name=name)


def simulate_sparse_gemm(M: int, N: int, K: int, n: int = 2, m: int = 4, rows: int = 32, cols: int = 32,
                         dataflow: str = "ws", nnz=None, energy=None) -> Comparison:
    """An n:m sparse (M x K) @ (K x N) GEMM and its dense form on the same array.

    Returns
    -------
    hwmodel.simulate.Comparison with ``.dense`` and ``.packed`` (cycles,
    utilisation, traffic, energy) and ``.speedup``, ``.energy_ratio``.

    Examples
    --------
    >>> c = simulate_sparse_gemm(64, 64, 128, n=2, m=4, dataflow="os")
    >>> c.packed.spec.K_packed, c.dense.cycles, c.packed.cycles
    (64, 760, 504)
    """
    spec = sparse_core_layer(M, N, K, n, m, nnz=nnz)
    return compare_layer(spec, rows, cols, dataflow, energy)
