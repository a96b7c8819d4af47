"""Shared Numba kernels for P1: sparse incidence lists and incremental group bookkeeping.

Every P1 heuristic (first-fit, DSatur, tabu, annealing) keeps the same state for
a partial or full partition of the columns into groups:

- ``counts`` (G_cap, R) int32: nonzeros of group g in row r;
- ``conflicts`` (G_cap,) int64: sum over rows of max(0, counts[g, r] - 1);
- ``sizes`` (G_cap,) int64: columns in group g.

A column j is given by its row list ``col_rows[col_ptr[j]:col_ptr[j + 1]]``
(CSR of columns -> rows, built once by :func:`incidence`). Adding j to g raises
the conflicts by the number of j's rows already occupied in g; removing it
lowers them by the number of its rows occupied at least twice. The delta
functions below compute that in O(nnz(j)) without touching the state, and the
add/remove functions apply it, so a move is evaluated and made in O(nnz(j)).

Heuristics that only ever add columns (first fit, DSatur) need less: whether a
row is occupied, not how often. They keep ``occ`` (G_cap, W) uint64, the
occupied rows of each group as a bitset of W = ceil(R / 64) words, and the
columns as bitsets ``bits`` (m, W) from :func:`column_bits`. The conflicts a
column adds to a group are then popcount(occ[g] & bits[j]), a few word
operations instead of nnz(j) scattered lookups.

Dtypes are fixed for every kernel: counts int32, bitsets uint64, every other
array int64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "incidence",
    "compact",
    "expand_labels",
    "add_delta",
    "remove_delta",
    "fits",
    "add_column",
    "remove_column",
    "group_state",
    "first_open",
    "close_group",
    "column_bits",
    "popcount",
    "bits_delta",
    "bits_fit",
    "bits_add",
]


def incidence(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSR lists of a bool (R, N) mask: (col_ptr, col_rows, row_ptr, row_cols), all int64.

    ``col_rows[col_ptr[j]:col_ptr[j+1]]`` are the rows of column j and
    ``row_cols[row_ptr[r]:row_ptr[r+1]]`` the columns of row r, both ascending.
    """
    mask = np.asarray(mask, dtype=bool)
    cols, rows = np.nonzero(mask.T)            # column-major order: rows ascending per column
    col_ptr = np.zeros(mask.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=mask.shape[1]), out=col_ptr[1:])
    r2, c2 = np.nonzero(mask)
    row_ptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r2, minlength=mask.shape[0]), out=row_ptr[1:])
    return col_ptr, rows.astype(np.int64), row_ptr, c2.astype(np.int64)


def compact(mask: np.ndarray):
    """Drop empty columns: (kept column ids, incidence lists of the kept columns).

    Empty columns need no array column, so every heuristic works on the kept
    ones, numbered 0..m-1, and :func:`expand_labels` maps the answer back.
    """
    keep = np.flatnonzero(np.asarray(mask, dtype=bool).any(axis=0))
    return keep, incidence(mask[:, keep])


def expand_labels(n_columns: int, keep: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Labels for all columns from labels of the kept ones; empty columns get -1."""
    labels = np.full(n_columns, -1, dtype=np.int64)
    labels[keep] = local
    return labels


@njit(cache=True, inline="always")
def add_delta(counts, g, col_ptr, col_rows, j):
    """Conflicts group g gains if column j joins it."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 0:
            d += 1
    return d


@njit(cache=True, inline="always")
def remove_delta(counts, g, col_ptr, col_rows, j):
    """Conflicts group g loses if its member column j leaves it (a value >= 0)."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 1:
            d += 1
    return d


@njit(cache=True, inline="always")
def fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, budget):
    """Whether column j can join group g within the size limit and conflict budget.

    Stops at the first row that exhausts the budget, so a rejection on a
    conflict-free problem costs only a few row lookups.
    """
    if sizes[g] >= alpha:
        return False
    room = budget - conflicts[g]
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 0:
            room -= 1
            if room < 0:
                return False
    return True


@njit(cache=True, inline="always")
def add_column(counts, conflicts, sizes, g, col_ptr, col_rows, j):
    """Put column j into group g, updating the state in place."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        r = col_rows[p]
        if counts[g, r] > 0:
            d += 1
        counts[g, r] += 1
    conflicts[g] += d
    sizes[g] += 1


@njit(cache=True, inline="always")
def remove_column(counts, conflicts, sizes, g, col_ptr, col_rows, j):
    """Take column j out of group g, updating the state in place."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        r = col_rows[p]
        counts[g, r] -= 1
        if counts[g, r] > 0:
            d += 1
    conflicts[g] -= d
    sizes[g] -= 1


@njit(cache=True, inline="always")
def group_state(labels, col_ptr, col_rows, R, G):
    """(counts, conflicts, sizes) of a labelling with G groups; label -1 means unassigned."""
    counts = np.zeros((G, R), dtype=np.int32)
    conflicts = np.zeros(G, dtype=np.int64)
    sizes = np.zeros(G, dtype=np.int64)
    for j in range(labels.shape[0]):
        if labels[j] >= 0:
            add_column(counts, conflicts, sizes, labels[j], col_ptr, col_rows, j)
    return counts, conflicts, sizes


@njit(cache=True, inline="always")
def first_open(skip, g):
    """Lowest group id >= g not closed by :func:`close_group` (path-compressed skip list).

    ``skip`` has G_cap + 1 entries initialised to arange; full groups are never
    scanned again, which keeps first-fit scans short when alpha is small.
    """
    root = g
    while skip[root] != root:
        root = skip[root]
    while skip[g] != root:
        nxt = skip[g]
        skip[g] = root
        g = nxt
    return root


@njit(cache=True, inline="always")
def close_group(skip, g):
    """Mark group g as full so :func:`first_open` jumps over it."""
    skip[g] = g + 1


def column_bits(mask: np.ndarray) -> np.ndarray:
    """Row bitsets of the columns of a bool (R, m) mask: (m, ceil(R / 64)) uint64.

    Bit r % 64 of word r // 64 is set when the column has a nonzero in row r.
    """
    R, m = mask.shape
    W = (R + 63) // 64
    padded = np.zeros((m, W * 64), dtype=bool)
    padded[:, :R] = mask.T
    packed = np.packbits(padded, axis=1, bitorder="little")   # (m, W * 8) bytes
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64)


@njit(cache=True, inline="always")
def popcount(x):
    """Set bits of a uint64 (SWAR count; Numba has no portable popcount intrinsic)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always")
def bits_delta(occ, g, bits, j):
    """Conflicts group g gains if column j joins it (bitset state)."""
    d = 0
    for w in range(bits.shape[1]):
        d += popcount(occ[g, w] & bits[j, w])
    return d


@njit(cache=True, inline="always")
def bits_fit(occ, conflicts, sizes, g, bits, j, alpha, budget):
    """Whether column j can join group g within the size limit and budget (bitset state)."""
    if sizes[g] >= alpha:
        return False
    room = budget - conflicts[g]
    if room == 0:
        for w in range(bits.shape[1]):
            if occ[g, w] & bits[j, w]:
                return False
        return True
    return bits_delta(occ, g, bits, j) <= room


@njit(cache=True, inline="always")
def bits_add(occ, conflicts, sizes, g, bits, j):
    """Put column j into group g, updating the bitset state in place."""
    conflicts[g] += bits_delta(occ, g, bits, j)
    for w in range(bits.shape[1]):
        occ[g, w] |= bits[j, w]
    sizes[g] += 1
