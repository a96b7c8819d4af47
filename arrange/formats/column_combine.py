"""Column-combined format: P1's packed matrix plus a select index (DESIGN.md section 3).

A packing of an R x N matrix into G groups of at most alpha columns stores
- ``values`` (R x G): in each (row, group) cell the largest-magnitude weight
  among the group's columns (ties: the lowest column), 0 for an empty cell;
- ``select`` (R x G): which member of the group that weight came from,
  ceil(log2 alpha) bits per cell;
- ``table`` (G x alpha): the columns of each group, -1 padded; this is the
  input routing, ceil(log2 N) bits per entry.

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing Sparse Convolutional
Neural Networks for Efficient Systolic Array Implementations: Column Combining
Under Joint Optimization", ASPLOS 2019, doi:10.1145/3297858.3304028.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnCombined", "encode", "encode_groups", "decode", "bits"]


@dataclass(eq=False)
class ColumnCombined:
    """A packed layer; ``decode`` rebuilds the dense matrix of what was kept."""

    values: np.ndarray   # (R, G) kept weights
    select: np.ndarray   # (R, G) int16 member index within the group
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


def encode_groups(W, groups, alpha: int) -> ColumnCombined:
    """Pack W given its column groups (each cell keeps its max-|W| member)."""
    W = np.asarray(W)
    R, N = W.shape
    table = _table(groups, alpha)
    G = table.shape[0]
    values = np.zeros((R, G), dtype=W.dtype)
    select = np.zeros((R, G), dtype=np.int16)
    rows = np.arange(R)
    for g in range(G):
        members = table[g][table[g] >= 0]
        if members.size == 0:
            continue
        sub = np.abs(W[:, members])
        pick = np.argmax(sub, axis=1)  # first max = lowest column, members are sorted
        select[:, g] = pick
        values[:, g] = W[rows, members[pick]]
    select[values == 0] = 0  # an empty cell selects nothing; keep its index canonical
    return ColumnCombined(values, select, table, (R, N), int(alpha))


def encode(W, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
           seed: int = 0) -> ColumnCombined:
    """Solve P1 on W (see :func:`arrange.pack`) and pack it."""
    from ..pack import pack

    result = pack(W, alpha=alpha, gamma=gamma, solver=solver, time_limit=time_limit, seed=seed)
    return encode_groups(W, result.groups, alpha)


def decode(packed: ColumnCombined) -> np.ndarray:
    """The dense matrix holding exactly the kept weights."""
    R, N = packed.shape
    dense = np.zeros((R, N), dtype=packed.values.dtype)
    rows = np.arange(R)
    for g in range(packed.num_groups):
        nz = packed.values[:, g] != 0
        cols = packed.table[g, packed.select[nz, g]]
        if np.any(cols < 0):
            raise ValueError(f"group {g}: select index points outside the group")
        dense[rows[nz], cols] = packed.values[nz, g]
    return dense


def bits(packed: ColumnCombined, value_bits: int = 8) -> dict:
    """Storage: packed values, select indices and the group routing table, in bits."""
    R, N = packed.shape
    G = packed.num_groups
    select_bits = math.ceil(math.log2(packed.alpha)) if packed.alpha > 1 else 0
    table_bits = math.ceil(math.log2(N)) if N > 1 else 0
    members = int(np.count_nonzero(packed.table >= 0))
    return {
        "values": R * G * value_bits,
        "index": R * G * select_bits + members * table_bits,
        "select": R * G * select_bits,
        "table": members * table_bits,
        "dense": R * N * value_bits,
    }
