"""Quantisation and the subword view (DESIGN.md section 3, "Subword view").

Weights are quantised to b-bit symmetric integers with one scale per row
(output channel), held in sign-magnitude form, and each magnitude is split into
b/s subwords of s bits: q = sign * sum_t subword_t * 2^(t*s). Column j of the
weight matrix becomes b/s subword columns j*(b/s) + t carrying sign * subword_t
and the shift t*s. A zero subword is a zero entry, so the subword matrix is
sparser than the weight matrix and P1/P2 run on it unchanged.

Subword-level pruning (Tight Compression, TCAD 2022) removes the smallest
subword contributions |subword| * 2^shift instead of whole weights.

Reference: Y. Chen, Z. Zhu, Y. Jiang, C.-Y. Tsui, "Tight Compression: Compressing
CNN Through Fine-Grained Pruning and Weight Permutation for Efficient
Implementation", IEEE TCAD 2022, doi:10.1109/TCAD.2022.3178047.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ArrangeError, is_int

__all__ = ["Quantized", "Subwords", "quantize", "dequantize", "to_subwords", "from_subwords",
           "prune_subwords", "check_widths"]


def check_widths(bits: int, subword: int) -> None:
    """Bit width b >= 2, subword width s >= 1, and s divides b."""
    for name, value, low in (("bit width", bits, 2), ("subword width", subword, 1)):
        if not is_int(value) or value < low:
            raise ArrangeError(f"{name} must be an integer >= {low}, got {value!r}")
    if bits % subword:
        raise ArrangeError(f"bit width {bits} is not divisible by subword width {subword}")
    if bits > 16:
        raise ArrangeError(f"bit width must be <= 16, got {bits}")


@dataclass(eq=False)
class Quantized:
    """q (R, N) integers in [-(2^(b-1)-1), 2^(b-1)-1] and one scale per row: W ~ q * scale[:, None]."""

    q: np.ndarray
    scale: np.ndarray
    bits: int


def quantize(W, bits: int = 8) -> Quantized:
    """Symmetric per-row quantisation; zeros stay zero, so masks survive exactly."""
    check_widths(bits, 1)
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ArrangeError(f"expected a 2-D matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ArrangeError("matrix has NaN/inf entries")
    qmax = 2 ** (bits - 1) - 1
    peak = np.abs(W).max(axis=1)
    scale = np.where(peak > 0, peak / qmax, 1.0)
    q = np.clip(np.rint(W / scale[:, None]), -qmax, qmax).astype(np.int32)
    return Quantized(q, scale, bits)


def dequantize(Q: Quantized) -> np.ndarray:
    return Q.q * Q.scale[:, None]


@dataclass(eq=False)
class Subwords:
    """The subword matrix: values (R, N*b/s) = sign * subword, shift per column, source column."""

    values: np.ndarray
    shifts: np.ndarray
    source: np.ndarray
    bits: int
    subword: int

    @property
    def per_weight(self) -> int:
        return self.bits // self.subword


def to_subwords(q, bits: int = 8, subword: int = 4) -> Subwords:
    """Split sign-magnitude integers into s-bit subword columns (low subword first)."""
    check_widths(bits, subword)
    q = np.asarray(q)
    qmax = 2 ** (bits - 1) - 1
    if q.ndim != 2 or np.abs(q).max(initial=0) > qmax:
        raise ArrangeError(f"expected a 2-D matrix of {bits}-bit sign-magnitude integers")
    R, N = q.shape
    t = bits // subword
    shifts = np.arange(t) * subword
    mag = np.abs(q).astype(np.int32)
    parts = (mag[:, :, None] >> shifts[None, None, :]) & (2 ** subword - 1)   # (R, N, t)
    values = (np.sign(q)[:, :, None] * parts).reshape(R, N * t).astype(np.int32)
    return Subwords(values, np.tile(shifts, N), np.repeat(np.arange(N), t), bits, subword)


def from_subwords(sw: Subwords) -> np.ndarray:
    """Reassemble the integer weights: sum of subword << shift per source column."""
    R = sw.values.shape[0]
    N = sw.values.shape[1] // sw.per_weight
    contrib = sw.values.astype(np.int64) << sw.shifts[None, :].astype(np.int64)
    return contrib.reshape(R, N, sw.per_weight).sum(axis=2).astype(np.int32)


def prune_subwords(sw: Subwords, fraction: float) -> Subwords:
    """Zero the given fraction of nonzero subwords with the smallest |subword| * 2^shift.

    Ties go to the lower (row, column) index so the same input always prunes the same entries.
    """
    if not 0 <= fraction < 1:
        raise ArrangeError(f"subword sparsity must be in [0, 1), got {fraction}")
    values = sw.values.copy()
    nz = np.flatnonzero(values)
    drop = int(round(fraction * nz.size))
    if drop:
        contrib = np.abs(values.ravel()[nz]).astype(np.int64) << sw.shifts[nz % values.shape[1]]
        order = np.lexsort((nz, contrib))
        values.ravel()[nz[order[:drop]]] = 0
    return Subwords(values, sw.shifts, sw.source, sw.bits, sw.subword)
