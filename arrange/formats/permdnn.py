"""PermDNN format: p x p blocks, each a permuted diagonal with one stored shift.

An R x N matrix is padded with zero rows/columns to multiples of p (the object
says so in ``padded`` and ``message``), optionally reordered by a row and a
column permutation, and cut into p x p blocks.  Block (i, j) keeps the
entries (c, (c + k_ij) mod p), c = 0..p-1, and stores
- ``values`` (R/p, N/p, p): ``values[i, j, c]`` is the kept entry of block row c;
- ``shifts`` (R/p, N/p): k_ij, ceil(log2 p) bits each (no per-weight index);
- ``row_order`` / ``col_order``: position -> original (padded) index, or None
  when unpermuted; ceil(log2 R_pad) and ceil(log2 N_pad) bits per entry.
The weight compression is exactly p.  Shifts and orders come from
:mod:`solvers.permdiag` (best shift per block exactly; the permutations exact
on small layers, alternating assignment on large ones), maximising the kept
energy (sum of squares).

Reference: C. Deng, S. Liao, Y. Xie, K. K. Parhi, X. Qian, B. Yuan, "PermDNN:
Efficient Compressed DNN Architecture with Permuted Diagonal Matrices",
MICRO 2018, doi:10.1109/MICRO.2018.00024.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

import hwmodel
from hwmodel.energy import energy_table
from hwmodel.packed import index_bits_for
from solvers import Options, ProblemError
from solvers import permdiag as _permdiag

from ..errors import ArrangeError, is_int
from .base import VALUE_BITS, FormatAdapter, Hardware, check_weights, gap_under_upper_bound

__all__ = ["PermDiag", "encode", "encode_with", "decode", "bits", "mask", "positions", "pad", "reencode",
           "on_fc_engine", "ADAPTER"]


@dataclass(eq=False)
class PermDiag:
    """A packed layer; ``decode`` rebuilds the dense matrix of what was kept."""

    values: np.ndarray          # (R_pad/p, N_pad/p, p)
    shifts: np.ndarray          # (R_pad/p, N_pad/p) int64
    p: int
    shape: tuple                # (R, N) of the dense matrix before padding
    row_order: np.ndarray | None = None   # (R_pad,) position -> padded row, None = identity
    col_order: np.ndarray | None = None   # (N_pad,) position -> padded column
    padded: tuple = (0, 0)      # zero rows, zero columns appended
    message: str = ""           # says when and how the matrix was padded
    kept_energy: float = 0.0
    unpermuted_energy: float = 0.0   # kept energy of the best shifts without permutation
    total_energy: float = 0.0
    status: str = ""
    solver: str = ""

    @property
    def padded_shape(self) -> tuple:
        return self.shape[0] + self.padded[0], self.shape[1] + self.padded[1]

    @property
    def compression(self) -> float:
        """Weight slots of the dense matrix per stored value."""
        return self.shape[0] * self.shape[1] / self.values.size


def _check_p(p) -> int:
    if not is_int(p) or p < 1:
        raise ArrangeError(f"permdnn: block size p must be an integer >= 1, got {p!r}")
    return int(p)


def pad(W, p: int) -> tuple[np.ndarray, tuple, str]:
    """W padded with zero rows and columns to multiples of p, the amounts, and a message."""
    W = check_weights(W, 2, "permdnn")
    R, N = W.shape
    extra = ((-R) % p, (-N) % p)
    if extra == (0, 0):
        return W, extra, ""
    out = np.zeros((R + extra[0], N + extra[1]), dtype=W.dtype)
    out[:R, :N] = W
    message = (f"permdnn: shape {R}x{N} is not a multiple of p={p}; padded with "
               f"{extra[0]} zero rows and {extra[1]} zero columns to {out.shape[0]}x{out.shape[1]}")
    return out, extra, message


def positions(shifts: np.ndarray, p: int, row_order=None, col_order=None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols), each shaped like ``values``: the padded-matrix position of every stored value."""
    Rb, Nb = shifts.shape
    c = np.arange(p)
    rows = np.broadcast_to(np.arange(Rb)[:, None, None] * p + c, (Rb, Nb, p))
    cols = np.arange(Nb)[None, :, None] * p + (c + shifts[:, :, None]) % p
    if row_order is not None:
        rows = np.asarray(row_order)[rows]
    if col_order is not None:
        cols = np.asarray(col_order)[cols]
    return np.array(rows, dtype=np.int64), cols.astype(np.int64)


def encode_with(W, p: int, shifts, row_order=None, col_order=None) -> PermDiag:
    """Pack W (already padded to multiples of p) with given shifts and orders."""
    W = np.asarray(W)
    p = _check_p(p)
    shifts = np.asarray(shifts, dtype=np.int64)
    rows, cols = positions(shifts, p, row_order, col_order)
    return PermDiag(W[rows, cols], shifts, p, W.shape,
                    None if row_order is None else np.asarray(row_order, dtype=np.int64),
                    None if col_order is None else np.asarray(col_order, dtype=np.int64))


def encode(W, p: int = 4, permute: bool = True, solver="auto", time_limit: float = 10.0,
           seed: int = 0) -> PermDiag:
    """Project W onto p x p permuted-diagonal blocks, keeping the most energy.

    Parameters
    ----------
    W : 2-D array; sizes not divisible by p are padded with zeros (see ``.message``).
    p : block size (>= 1); the compression is exactly p.
    permute : search a row and a column permutation before blocking; False keeps
        the given order and only picks the best shift per block.
    solver : a name in ``solvers.permdiag.SOLVERS`` ("auto", "exact", "assign",
        "identity") or a callable.

    Returns
    -------
    PermDiag with ``kept_energy`` and ``unpermuted_energy`` for the report.

    Raises
    ------
    ArrangeError : bad matrix or parameters (one line).
    """
    p = _check_p(p)
    padded, extra, message = pad(W, p)
    try:
        problem = _permdiag.PermDiagProblem.from_weights(padded, p)
        result = _permdiag.solve(problem, solver if permute else "identity",
                                 Options(time_limit=time_limit, seed=seed))
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None
    packed = encode_with(padded, p, result.shifts,
                         result.row_order if permute else None, result.col_order if permute else None)
    packed.shape = np.asarray(W).shape
    packed.padded, packed.message = extra, message
    packed.kept_energy, packed.unpermuted_energy = result.kept, result.identity_kept
    packed.total_energy, packed.status, packed.solver = result.total, result.status, result.solver
    return packed


def _decode_padded(packed: PermDiag) -> np.ndarray:
    dense = np.zeros(packed.padded_shape, dtype=packed.values.dtype)
    rows, cols = positions(packed.shifts, packed.p, packed.row_order, packed.col_order)
    dense[rows, cols] = packed.values
    return dense


def decode(packed: PermDiag) -> np.ndarray:
    """The dense R x N matrix (original row/column order) holding exactly the kept weights."""
    R, N = packed.shape
    return _decode_padded(packed)[:R, :N]


def mask(packed: PermDiag) -> np.ndarray:
    """Bool R x N: the positions the structure keeps (p-fold fewer than the padded matrix)."""
    full = np.zeros(packed.padded_shape, dtype=bool)
    rows, cols = positions(packed.shifts, packed.p, packed.row_order, packed.col_order)
    full[rows, cols] = True
    R, N = packed.shape
    return full[:R, :N]


def bits(packed: PermDiag, value_bits: int = 8) -> dict:
    """Storage: values, one shift per block, and the permutations when used, in bits."""
    Rp, Np = packed.padded_shape
    shift_bits = packed.shifts.size * index_bits_for(packed.p)
    perm_bits = (0 if packed.row_order is None else Rp * index_bits_for(Rp)) + \
                (0 if packed.col_order is None else Np * index_bits_for(Np))
    R, N = packed.shape
    return {
        "values": packed.values.size * value_bits,
        "index": shift_bits + perm_bits,
        "shifts": shift_bits,
        "permutation": perm_bits,
        "dense": R * N * value_bits,
    }


def reencode(packed: PermDiag, W) -> PermDiag:
    """W (fine-tuned weights, any shape of R * N entries) in the same shifts and orders."""
    padded, _, _ = pad(np.asarray(W).reshape(packed.shape), packed.p)
    fresh = encode_with(padded, packed.p, packed.shifts, packed.row_order, packed.col_order)
    return dataclasses.replace(packed, values=fresh.values)


def _fc_dram_pj(weight_bits: int, R: int, N: int) -> float:
    """DRAM energy as the array model charges it: stored weights, inputs and outputs once."""
    return (weight_bits + (R + N) * VALUE_BITS) / 64 * energy_table()["dram_access_64b"]


def _fc_cost(weights: np.ndarray, n_pe: int, weight_bits: int) -> hwmodel.Cost:
    result = hwmodel.simulate_fc(weights, n_pe=n_pe)
    R, N = weights.shape
    energy = sum(hwmodel.fc_energy(result, index_bits=0).values()) + _fc_dram_pj(weight_bits, R, N)
    return hwmodel.Cost(result.cycles, energy, result.macs)


def on_fc_engine(packed: PermDiag, n_pe: int, stored_bits: int) -> Hardware:
    """The FC engine with ``n_pe`` PEs on one all-nonzero input vector, dense vs packed.

    Cycles, MACs and energy (MACs, SRAM, plus DRAM as the array model charges
    it: stored weights with their index, inputs and outputs once); no
    zero-input skipping is credited.
    """
    R, N = packed.shape
    dense = _fc_cost(np.ones((R, N), dtype=bool), n_pe, R * N * VALUE_BITS)
    return Hardware(dense, _fc_cost(mask(packed), n_pe, stored_bits), "FC engine")


def _project(layer, setting: dict, solver, time_limit: float, seed: int):
    packed = encode(layer.matrix, setting["p"], solver=solver, time_limit=time_limit, seed=seed)
    padded, _, _ = pad(layer.matrix, setting["p"])
    bound = _permdiag.upper_bound(_permdiag.PermDiagProblem.from_weights(padded, setting["p"]))
    return packed, (packed.kept_energy, bound)


def _hardware(packed: PermDiag, layer, M: int, stored_bits: int, rows: int, cols: int, dataflow: str):
    return on_fc_engine(packed, cols, stored_bits)


def _is_linear(layer) -> bool:
    return layer.kind == "linear"


#: PermDNN in a model: linear layers only (an FC format), on the FC engine with as many PEs as array columns
ADAPTER = FormatAdapter(
    name="permdnn", project=_project, decode=decode, bits=bits, hardware=_hardware,
    settings=({"p": 16}, {"p": 8}, {"p": 4}, {"p": 2}), solver="auto", applies=_is_linear, mask=mask,
    reencode=reencode, gap=gap_under_upper_bound, gap_kind="kept energy under row/col bound")
