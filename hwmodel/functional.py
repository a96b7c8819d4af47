"""Cycle-stepped functional execution of a packed (column-combined) layer on the array.

Problem: run a packed layer for real on an R x C systolic array and return its
outputs and cycle count, so the packing and the timing model can both be
checked: the outputs must equal the masked dense product exactly (integer
arithmetic) and the cycles must equal :func:`hwmodel.timing.schedule`'s.

Packed layer: ``values`` and ``select`` (N filters x G packed columns), the
group table ``groups`` (G x alpha input-column indices, padded with -1) and
optional ``shifts`` (N x G, subword layers).  Cell (n, g) contributes
``(values[n, g] * x[groups[g, select[n, g]]]) << shifts[n, g]`` to output n.
Dense layers are alpha = 1, groups[g, 0] = g; subword layers list the input
column of each subword column and shift each cell's product, so the partial
products of one weight's subwords meet in the same accumulation chain.

Method: SCALE-Sim's orientation (array rows carry the reduction for ``ws`` and
``is``, pixels for ``os``; array columns carry filters, or pixels for ``is``).
Each fold simulates every cycle:

* ``ws``: R cycles shift (value, select, shift) registers down into the
  cells; then for M + R + C - 2 cycles each array row receives the alpha input
  streams of its packed column, skewed one cycle per row and column, each cell
  picks the stream its select names, and partial sums move down the columns
  and leave the bottom row into the ofmap buffer (accumulated across row
  folds).
* ``os``: for G + R + C - 2 cycles weights with their select and shift move
  down the columns through registers while input streams flow along the rows;
  each cell accumulates its own output, written out at the end of the fold.
* ``is``: R cycles shift each cell's alpha stationary activations down into
  place; then for N + R + C - 2 cycles weights (with select and shift) stream
  along the rows and partial sums move down the columns.

The operand moving along the rows is read at the position its skewed timing
gives (the value that entered the row c cycles earlier), which is what the row
registers would hold, without copying alpha values through every register.

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, ASPLOS 2019,
doi:10.1145/3297858.3304028 (column-combined systolic cells with a select
multiplexer); SCALE-Sim v3 compute models ``systolic_compute_{os,ws,is}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from hwmodel.packed import check_packed
from hwmodel.validation import HwModelError, check_dataflow, check_int

__all__ = ["FunctionalResult", "execute_packed", "dense_from_packed"]


@njit(cache=True)
def _run_ws(values, select, groups, shifts, acts_t, R, C, out):
    N, G = values.shape
    M = acts_t.shape[1]
    w = np.zeros((R, C), np.int64)
    sel = np.zeros((R, C), np.int64)
    sh = np.zeros((R, C), np.int64)
    src = np.zeros((R, C), np.int64)
    psum = np.zeros((R, C), np.int64)
    cycles = 0
    for g0 in range(0, G, R):
        for n0 in range(0, N, C):
            for t in range(R):
                # the row injected at load cycle t ends, after R - 1 - t more shifts, in row R - 1 - t
                g = g0 + R - 1 - t
                for r in range(R - 1, 0, -1):
                    for c in range(C):
                        w[r, c] = w[r - 1, c]
                        sel[r, c] = sel[r - 1, c]
                        sh[r, c] = sh[r - 1, c]
                for c in range(C):
                    n = n0 + c
                    if g < G and n < N:
                        w[0, c] = values[n, g]
                        sel[0, c] = select[n, g]
                        sh[0, c] = shifts[n, g]
                    else:
                        w[0, c] = 0
                        sel[0, c] = 0
                        sh[0, c] = 0
                cycles += 1
            # The stationary cells are loaded: resolve each cell's select to its input row once.
            for r in range(R):
                for c in range(C):
                    src[r, c] = groups[g0 + r, sel[r, c]] if g0 + r < G else -1
            for t in range(M + R + C - 2):
                # rows bottom-up so psum[r - 1] still holds the previous cycle's value
                for r in range(R - 1, -1, -1):
                    c_lo = max(0, t - r - M + 1)
                    c_hi = min(C, t - r + 1)
                    for c in range(c_lo, c_hi):
                        m = t - r - c
                        above = psum[r - 1, c] if r > 0 else 0
                        prod = 0
                        if src[r, c] >= 0:
                            prod = (w[r, c] * acts_t[src[r, c], m]) << sh[r, c]
                        psum[r, c] = above + prod
                # the bottom row's sums leave the array into the ofmap buffer
                c_lo = max(0, t - (R - 1) - M + 1)
                c_hi = min(C, t - (R - 1) + 1, N - n0)
                for c in range(c_lo, c_hi):
                    out[t - (R - 1) - c, n0 + c] += psum[R - 1, c]
                cycles += 1
    return cycles


@njit(cache=True)
def _run_os(values, select, groups, shifts, acts_t, R, C, out):
    N, G = values.shape
    M = acts_t.shape[1]
    w = np.zeros((R, C), np.int64)
    sel = np.zeros((R, C), np.int64)
    sh = np.zeros((R, C), np.int64)
    acc = np.zeros((R, C), np.int64)
    cycles = 0
    for m0 in range(0, M, R):
        for n0 in range(0, N, C):
            acc[:, :] = 0
            for t in range(G + R + C - 2):
                for r in range(R - 1, -1, -1):
                    m = m0 + r
                    for c in range(C):
                        if r > 0:
                            w[r, c] = w[r - 1, c]
                            sel[r, c] = sel[r - 1, c]
                            sh[r, c] = sh[r - 1, c]
                        else:
                            g = t - c
                            n = n0 + c
                            if g >= 0 and g < G and n < N:
                                w[0, c] = values[n, g]
                                sel[0, c] = select[n, g]
                                sh[0, c] = shifts[n, g]
                            else:
                                w[0, c] = 0
                                sel[0, c] = 0
                                sh[0, c] = 0
                        g = t - r - c
                        if g >= 0 and g < G and m < M:
                            acc[r, c] += (w[r, c] * acts_t[groups[g, sel[r, c]], m]) << sh[r, c]
                cycles += 1
            for r in range(min(R, M - m0)):
                for c in range(min(C, N - n0)):
                    out[m0 + r, n0 + c] = acc[r, c]
    return cycles


@njit(cache=True)
def _run_is(values, select, groups, shifts, acts_t, R, C, out):
    N, G = values.shape
    M = acts_t.shape[1]
    A = groups.shape[1]
    # streamed weights indexed [group, filter]: consecutive cells of a row read neighbours
    vt = np.ascontiguousarray(values.T)
    st = np.ascontiguousarray(select.T)
    sht = np.ascontiguousarray(shifts.T)
    x = np.zeros((R, C, A), np.int64)
    psum = np.zeros((R, C), np.int64)
    cycles = 0
    for g0 in range(0, G, R):
        for m0 in range(0, M, C):
            for t in range(R):
                g = g0 + R - 1 - t
                for r in range(R - 1, 0, -1):
                    for c in range(C):
                        for a in range(A):
                            x[r, c, a] = x[r - 1, c, a]
                for c in range(C):
                    m = m0 + c
                    for a in range(A):
                        x[0, c, a] = 0
                        if g < G and m < M and groups[g, a] >= 0:
                            x[0, c, a] = acts_t[groups[g, a], m]
                cycles += 1
            for t in range(N + R + C - 2):
                for r in range(R - 1, -1, -1):
                    g = g0 + r
                    c_lo = max(0, t - r - N + 1)
                    c_hi = min(C, t - r + 1)
                    if g < G:
                        for c in range(c_lo, c_hi):
                            n = t - r - c
                            above = psum[r - 1, c] if r > 0 else 0
                            psum[r, c] = above + ((vt[g, n] * x[r, c, st[g, n]]) << sht[g, n])
                    else:
                        for c in range(c_lo, c_hi):
                            psum[r, c] = psum[r - 1, c] if r > 0 else 0
                # the bottom row's sums leave the array into the ofmap buffer
                c_lo = max(0, t - (R - 1) - N + 1)
                c_hi = min(C, t - (R - 1) + 1, M - m0)
                for c in range(c_lo, c_hi):
                    out[m0 + c, t - (R - 1) - c] += psum[R - 1, c]
                cycles += 1
    return cycles


_KERNELS = {"ws": _run_ws, "os": _run_os, "is": _run_is}


@dataclass(frozen=True)
class FunctionalResult:
    """Outputs (M x N int64) and the cycle count of a functional run."""

    outputs: np.ndarray
    cycles: int


def _int_array(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise HwModelError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a


def execute_packed(values, select, groups, acts, rows: int = 32, cols: int = 32,
                   dataflow: str = "ws", shifts=None) -> FunctionalResult:
    """Run a packed layer cycle by cycle on a rows x cols array.

    Parameters
    ----------
    values : (N, G) int, packed value of filter n in packed column g.
    select : (N, G) int, index into ``groups[g]`` of the input the value multiplies.
    groups : (G, alpha) int, input-column indices of each packed column, -1 padded.
    acts : (M, K) int activations (im2col rows), K > every index in ``groups``.
    rows, cols : array size.
    dataflow : "ws", "os" or "is".
    shifts : (N, G) int left shifts (subword layers) or None.

    Returns
    -------
    FunctionalResult with ``outputs`` = acts @ W.T for the masked dense W that
    the packed layer encodes (:func:`dense_from_packed`), and ``cycles`` =
    ``hwmodel.timing.schedule(M, N, G, rows, cols, dataflow).cycles``.

    Raises
    ------
    HwModelError
        On bad sizes, an unknown dataflow, non-integer arrays, a select index
        outside its group or a group column outside ``acts``.
    """
    R, C = check_int("rows", rows), check_int("cols", cols)
    kernel = _KERNELS[check_dataflow(dataflow)]
    values, select, groups, shifts, _ = check_packed(
        _int_array("values", values), _int_array("select", select), _int_array("groups", groups),
        None if shifts is None else _int_array("shifts", shifts))
    acts = _int_array("acts", acts)
    if acts.ndim != 2 or acts.shape[0] < 1:
        raise HwModelError(f"acts must be a 2-D (pixels x inputs) array with >= 1 row, got shape {acts.shape}")
    if groups.max() >= acts.shape[1]:
        raise HwModelError(f"groups index column {int(groups.max())} but acts has {acts.shape[1]} columns")
    acts_t = np.ascontiguousarray(acts.T, dtype=np.int64)
    out = np.zeros((acts.shape[0], values.shape[0]), np.int64)
    cycles = kernel(values, select, groups, shifts, acts_t, R, C, out)
    return FunctionalResult(out, int(cycles))


def dense_from_packed(values, select, groups, K: int, shifts=None) -> np.ndarray:
    """The (N, K) int64 dense matrix a packed layer encodes (subwords shifted and summed)."""
    values, select, groups, shifts, _ = check_packed(values, select, groups, shifts)
    K = check_int("K", K)
    if groups.max() >= K:
        raise HwModelError(f"groups must hold column indices < K={K}, got {int(groups.max())}")
    N, G = values.shape
    cols = groups[np.arange(G)[None, :], select]
    W = np.zeros((N, K), np.int64)
    np.add.at(W, (np.repeat(np.arange(N), G), cols.ravel()), (values << shifts).ravel())
    return W
