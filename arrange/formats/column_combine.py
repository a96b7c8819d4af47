"""Column-combined format: P1's packed matrix plus a select index (DESIGN.md section 3).

A packing of an R x N matrix into G groups of at most alpha columns stores
- ``values`` (R x G): in each (row, group) cell the largest-magnitude weight
  among the group's columns (ties: the lowest column), 0 for an empty cell;
- ``select`` (R x G): which member of the group that weight came from,
  ceil(log2 alpha) bits per cell (held in the smallest integer dtype that
  reaches alpha - 1);
- ``table`` (G x alpha): the columns of each group, -1 padded; this is the
  input routing, ceil(log2 N) bits per entry.

:func:`encode` solves P1 (:mod:`arrange.solve`) and packs; :func:`verify` is
the full checker every packing passes before it is returned: structure
(:func:`solvers.check.check_labels`), each cell keeping its largest weight,
select indices inside their groups, and an exact decode.

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing Sparse Convolutional
Neural Networks for Efficient Systolic Array Implementations: Column Combining
Under Joint Optimization", ASPLOS 2019, doi:10.1145/3297858.3304028.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import hwmodel
from hwmodel.packed import index_bits_for
from solvers import CombineProblem, InvalidSolution, check_labels
from solvers.check import conflict_pruned

from ..errors import VerificationError
from ..prune import magnitude_prune
from ..solve import solve_combine
from .base import FormatAdapter, gap_over_lower_bound, index_dtype, on_array

__all__ = ["ColumnCombined", "encode", "encode_groups", "from_solution", "decode", "bits", "verify", "mask",
           "reencode", "group_chunks", "ADAPTER"]


@dataclass(eq=False)
class ColumnCombined:
    """A packed layer; ``decode`` rebuilds the dense matrix of what was kept."""

    values: np.ndarray   # (R, G) kept weights
    select: np.ndarray   # (R, G) member index within the group (index_dtype(alpha))
    table: np.ndarray    # (G, alpha) int64 column indices, -1 padded
    shape: tuple         # (R, N) of the dense matrix
    alpha: int

    @property
    def num_groups(self) -> int:
        return self.values.shape[1]


def _table(groups, alpha: int) -> np.ndarray:
    table = np.full((len(groups), alpha), -1, dtype=np.int64)
    for g, cols in enumerate(groups):
        cols = np.sort(np.asarray(cols, dtype=np.int64))
        if cols.size > alpha:
            raise ValueError(f"group {g} has {cols.size} columns > alpha={alpha}")
        table[g, :cols.size] = cols
    return table


# Groups gathered per vectorised step: R x chunk x alpha elements at most.
_GATHER = 1 << 22


def group_chunks(R: int, G: int, alpha: int):
    """Ranges (g0, g1) of groups small enough to gather as one (R, g1 - g0, alpha) array."""
    step = max(1, _GATHER // max(1, R * alpha))
    return [(g0, min(G, g0 + step)) for g0 in range(0, G, step)]


# Matrix cells per block of rows in the per-nonzero passes (bounds their temporaries).
_BLOCK = 1 << 23


def _row_blocks(R: int, N: int):
    """Ranges (r0, r1) of rows with about _BLOCK cells each."""
    step = max(1, _BLOCK // max(1, N))
    return [(r0, min(R, r0 + step)) for r0 in range(0, R, step)]


def _members(table: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """(group of each column, its slot in the group's row of the table); -1 for columns in no group."""
    groups, slots = np.nonzero(table >= 0)
    labels = np.full(N, -1, dtype=np.int64)
    slot = np.full(N, -1, dtype=np.int64)
    labels[table[groups, slots]] = groups
    slot[table[groups, slots]] = slots
    return labels, slot


def encode_groups(W, groups, alpha: int, keep=None) -> ColumnCombined:
    """Pack W given its column groups (each cell keeps its max-|W| member, ties to the lowest column).

    ``keep`` (bool, W's shape) is the kept entries when already known (a checked
    result's ``keep_mask``), else they are found here (:func:`solvers.check.conflict_pruned`).
    One scatter of the kept entries: O(nnz), no R x G x alpha gather.
    """
    W = np.asarray(W)
    R, N = W.shape
    table = _table(groups, alpha)
    G = table.shape[0]
    values = np.zeros((R, G), dtype=W.dtype)
    select = np.zeros((R, G), dtype=index_dtype(alpha))
    labels, slot = _members(table, N)
    if keep is None:
        keep = (W != 0) & ~conflict_pruned(np.abs(W).astype(np.float64), labels)
    flat_values, flat_select = values.ravel(), select.ravel()
    for r0, r1 in _row_blocks(R, N):
        flat = np.flatnonzero(keep[r0:r1])              # flat indices: 1-D gathers, not 2-D
        rows = flat // N
        cols = flat - rows * N
        groups = labels[cols]
        grouped = groups >= 0
        if not grouped.all():
            flat, rows, cols, groups = flat[grouped], rows[grouped], cols[grouped], groups[grouped]
        cell = (rows + r0) * G + groups                 # one kept entry per (row, group) cell
        flat_values[cell] = W[r0:r1].ravel()[flat]
        flat_select[cell] = slot[cols]
    select[values == 0] = 0  # an empty cell selects nothing; keep its index canonical
    return ColumnCombined(values, select, table, (R, N), int(alpha))


def from_solution(W, result) -> ColumnCombined:
    """W packed along a checked P1 answer's groups, then verified (a bool mask packs as 0/1)."""
    values = np.asarray(W)
    if values.dtype == bool:
        values = values.astype(np.float64)
    packed = encode_groups(values, result.groups, result.alpha, keep=result.keep_mask)
    verify(values, packed, result.gamma)
    return packed


def encode(W, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
           seed: int = 0) -> ColumnCombined:
    """Solve P1 on W (see :func:`arrange.pack`) and pack it, verified."""
    return from_solution(W, solve_combine(W, alpha, gamma, solver, time_limit, seed))


def decode(packed: ColumnCombined) -> np.ndarray:
    """The dense matrix holding exactly the kept weights."""
    R, N = packed.shape
    dense = np.zeros((R, N), dtype=packed.values.dtype)
    rows = np.arange(R)[:, None]
    for g0, g1 in group_chunks(R, packed.num_groups, packed.alpha):
        values = packed.values[:, g0:g1]
        select = packed.select[:, g0:g1].astype(np.int64)
        nz = values != 0
        inside = (select >= 0) & (select < packed.table.shape[1])
        cols = np.where(inside, packed.table[g0:g1][np.arange(g1 - g0)[None, :], np.where(inside, select, 0)], -1)
        bad = nz & (cols < 0)
        if bad.any():
            raise ValueError(f"group {g0 + int(np.argwhere(bad)[0][1])}: select index points outside the group")
        dense[np.broadcast_to(rows, nz.shape)[nz], cols[nz]] = values[nz]
    return dense


def bits(packed: ColumnCombined, value_bits: int = 8) -> dict:
    """Storage: packed values, select indices and the group routing table, in bits."""
    R, N = packed.shape
    G = packed.num_groups
    select_bits = index_bits_for(packed.alpha)
    table_bits = index_bits_for(N)
    members = int(np.count_nonzero(packed.table >= 0))
    return {
        "values": R * G * value_bits,
        "index": R * G * select_bits + members * table_bits,
        "select": R * G * select_bits,
        "table": members * table_bits,
        "dense": R * N * value_bits,
    }


def _labels_from_table(table: np.ndarray, N: int) -> np.ndarray:
    groups, slots = np.nonzero(table >= 0)
    cols = table[groups, slots]
    counts = np.bincount(cols, minlength=N)
    if counts.max(initial=0) > 1:
        j = int(np.argmax(counts))
        first, second = groups[cols == j][:2]
        raise VerificationError(f"column {j} is in groups {int(first)} and {int(second)}")
    labels = np.full(N, -1, dtype=np.int64)
    labels[cols] = groups
    return labels


def verify(W, packed: ColumnCombined, gamma: float) -> np.ndarray:
    """Check ``packed`` against the original W; return the pruned matrix it encodes.

    Each nonempty column in exactly one group, group sizes <= alpha, per-group
    conflicts <= floor(gamma * R) (:func:`solvers.check.check_labels`), each
    cell keeps the max-|W| entry of its group row, select indices inside their
    groups, and decoding reproduces the conflict-pruned matrix exactly.
    Raises :class:`~arrange.errors.VerificationError` naming the first fault.
    """
    W = np.asarray(W)
    R, N = W.shape
    if packed.shape != (R, N):
        raise VerificationError(f"packed shape {packed.shape} != matrix shape {(R, N)}")
    if np.any(packed.table >= N):
        raise VerificationError("group table names a column outside the matrix")
    labels = _labels_from_table(packed.table, N)
    problem = CombineProblem.from_weights(W, alpha=packed.alpha, gamma=gamma)
    try:
        pruned = check_labels(problem, labels)
    except InvalidSolution as exc:
        raise VerificationError(str(exc)) from None
    expected = np.where(pruned, 0, W)
    sizes = (packed.table >= 0).sum(axis=1)
    select = packed.select.astype(np.int64)
    outside = (select < 0) | (select >= sizes[None, :])
    if outside.any():
        raise VerificationError(f"group {int(np.argwhere(outside)[0][1])}: select index outside the group")
    # Each cell keeps the max-|W| member of its group row, the lowest column on ties
    # (so conflicts prune the smallest): every nonzero against its cell, O(nnz).
    flat_values, flat_select, flat_table = packed.values.ravel(), select.ravel(), packed.table.ravel()
    for r0, r1 in _row_blocks(R, N):
        flat = np.flatnonzero(W[r0:r1])                 # flat indices: 1-D gathers, not 2-D
        rows = flat // N
        cols = flat - rows * N
        groups = labels[cols]
        cell = (rows + r0) * packed.num_groups + groups
        kept = np.abs(flat_values[cell])
        mag = np.abs(W[r0:r1].ravel()[flat])
        chosen = flat_table[groups * packed.table.shape[1] + flat_select[cell]]
        short = (mag > kept) | ((mag == kept) & (cols < chosen))
        if short.any():
            raise VerificationError(f"group {int(groups[np.argmax(short)])}: a cell does not keep its largest weight")
    try:
        decoded = decode(packed)
    except ValueError as exc:
        raise VerificationError(str(exc)) from None
    if not np.array_equal(decoded, expected):
        bad = np.argwhere(decoded != expected)[0]
        raise VerificationError(f"decode differs from the pruned matrix at row {bad[0]}, column {bad[1]}")
    return expected


def mask(packed: ColumnCombined) -> np.ndarray:
    """Bool R x N: the weights the packing keeps (nonzero), what fine-tuning holds the rest around."""
    return decode(packed) != 0


def reencode(packed: ColumnCombined, W) -> ColumnCombined:
    """W (fine-tuned weights, any shape of R * N entries) packed in the same groups."""
    groups = [row[row >= 0] for row in packed.table]
    return encode_groups(np.asarray(W).reshape(packed.shape), groups, packed.alpha)


def _project(layer, setting: dict, solver, time_limit: float, seed: int):
    """Magnitude-prune the layer to the setting's sparsity, then P1 at its alpha and gamma."""
    W = magnitude_prune(layer.matrix, setting["sparsity"])
    result = solve_combine(W, setting["alpha"], setting["gamma"], solver, time_limit, seed, name=layer.name)
    return from_solution(W, result), (result.num_groups, result.lower_bound)


def _on_array(packed: ColumnCombined, layer, M: int, stored_bits: int, rows: int, cols: int, dataflow: str):
    spec = hwmodel.column_combined_layer(M, *layer.shape2d, packed.num_groups, packed.alpha,
                                         nnz=int(np.count_nonzero(packed.values)))
    return on_array(spec, rows, cols, dataflow)


#: column combining in a model: prune, P1 on every layer, G combined columns of fan-in alpha on the array
ADAPTER = FormatAdapter(
    name="column_combine", project=_project, decode=decode, bits=bits, hardware=_on_array,
    settings=tuple({"sparsity": s, "alpha": 8, "gamma": g}
                   for s, g in ((0.8, 0.25), (0.7, 0.25), (0.6, 0.25), (0.5, 0.25), (0.7, 0.1), (0.6, 0.1))),
    solver="tabu", mask=mask, reencode=reencode, gap=gap_over_lower_bound, gap_kind="groups over P1 lower bound")
