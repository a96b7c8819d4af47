"""Shared Numba kernels for P1: sparse incidence lists and incremental group bookkeeping.

Every P1 heuristic (first-fit, DSatur, tabu, annealing) keeps the same state for
a partial or full partition of the columns into groups:

- ``counts`` (G_cap, R) int32: nonzeros of group g in row r;
- ``conflicts`` (G_cap,) int64: sum over rows of max(0, counts[g, r] - 1);
- ``sizes`` (G_cap,) int64: columns in group g.

A column j is given by its row list ``col_rows[col_ptr[j]:col_ptr[j + 1]]``
(CSR of columns -> rows, built once by :func:`compact`). Adding j to g raises
the conflicts by the number of j's rows already occupied in g; removing it
lowers them by the number of its rows occupied at least twice. The delta
functions below compute that in O(nnz(j)) without touching the state, and the
add/remove functions apply it, so a move is evaluated and made in O(nnz(j)).

Heuristics that only ever add columns (first fit, DSatur) need less: whether a
row is occupied, not how often. They keep ``occ`` (G_cap, W) uint64, the
occupied rows of each group as a bitset of W = ceil(R / 64) words, and the
columns as bitsets ``bits`` (m, W) from :func:`column_bits`. The conflicts a
column adds to a group are then popcount(occ[g] & bits[j]), a few word
operations instead of nnz(j) scattered lookups. For conflict-free first fit,
``row_groups`` (R, ceil(G_cap / 64)) holds the transpose, the groups occupying
each row, so :func:`first_free_group` tests 64 groups per word.

Performance note, measured: every call of a Numba function that takes arrays
pays reference counting (tens of ns, not removed by inlining), which is more
than one fit test costs. So call the per-column kernels once per move, and
write scans over many groups as one kernel (as :func:`first_budget_fit` and
:func:`first_free_group` are) rather than calling :func:`fits` in a loop.

Dtypes are fixed for every kernel: counts int32, bitsets uint64, every other
array int64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..sparse import column_bits, incidence, popcount

__all__ = [
    "compact",
    "expand_labels",
    "add_delta",
    "remove_delta",
    "fits",
    "add_column",
    "remove_column",
    "group_state",
    "excess",
    "drop_group",
    "column_bits",
    "popcount",
    "bits_delta",
    "bits_fit",
    "bits_add",
    "first_budget_fit",
    "group_words",
    "first_free_group",
    "mark_group",
    "pruned_magnitude",
]


def compact(mask: np.ndarray):
    """Drop empty columns: (kept column ids, (col_ptr, col_rows, row_ptr, row_cols)).

    The lists are CSR incidence of the kept columns, numbered 0..m-1 (int64):
    ``col_rows[col_ptr[j]:col_ptr[j+1]]`` are the rows of kept column j and
    ``row_cols[row_ptr[r]:row_ptr[r+1]]`` the kept columns of row r, both
    ascending. Empty columns need no array column, so every heuristic works on
    the kept ones and :func:`expand_labels` maps the answer back.
    """
    keep, col_ptr, col_rows, row_ptr, row_cols = incidence(np.ascontiguousarray(mask, dtype=np.bool_))
    return keep, (col_ptr, col_rows, row_ptr, row_cols)


def expand_labels(n_columns: int, keep: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Labels for all columns from labels of the kept ones; empty columns get -1."""
    labels = np.full(n_columns, -1, dtype=np.int64)
    labels[keep] = local
    return labels


@njit(cache=True)
def add_delta(counts, g, col_ptr, col_rows, j):
    """Conflicts group g gains if column j joins it."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 0:
            d += 1
    return d


@njit(cache=True)
def remove_delta(counts, g, col_ptr, col_rows, j):
    """Conflicts group g loses if its member column j leaves it (a value >= 0)."""
    d = 0
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 1:
            d += 1
    return d


@njit(cache=True)
def fits(counts, conflicts, sizes, g, col_ptr, col_rows, j, alpha, budget):
    """Whether column j can join group g within the size limit and conflict budget.

    Stops at the first row that exhausts the budget, so a rejection on a
    conflict-free problem costs only a few row lookups.
    """
    room = budget - conflicts[g]
    if sizes[g] >= alpha or room < 0:
        return False
    for p in range(col_ptr[j], col_ptr[j + 1]):
        if counts[g, col_rows[p]] > 0:
            room -= 1
            if room < 0:
                return False
    return True


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def group_state(labels, col_ptr, col_rows, R, G):
    """(counts, conflicts, sizes) of a labelling with G groups; label -1 means unassigned."""
    counts = np.zeros((G, R), dtype=np.int32)
    conflicts = np.zeros(G, dtype=np.int64)
    sizes = np.zeros(G, dtype=np.int64)
    for j in range(labels.shape[0]):
        if labels[j] >= 0:
            add_column(counts, conflicts, sizes, labels[j], col_ptr, col_rows, j)
    return counts, conflicts, sizes


@njit(cache=True)
def bits_delta(occ, g, bits, j):
    """Conflicts group g gains if column j joins it (bitset state)."""
    d = 0
    for w in range(bits.shape[1]):
        d += popcount(occ[g, w] & bits[j, w])
    return d


@njit(cache=True)
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


@njit(cache=True)
def bits_add(occ, conflicts, sizes, g, bits, j):
    """Put column j into group g, updating the bitset state in place."""
    conflicts[g] += bits_delta(occ, g, bits, j)
    for w in range(bits.shape[1]):
        occ[g, w] |= bits[j, w]
    sizes[g] += 1


@njit(cache=True)
def first_budget_fit(occ, conflicts, sizes, G, bits, j, alpha, budget):
    """Lowest group < G that column j joins within alpha and the budget, or G (bitset state).

    The scan is written out here rather than calling :func:`bits_fit` per group:
    every Numba call taking arrays pays reference counting, which would cost
    more than the test itself.
    """
    W = bits.shape[1]
    for g in range(G):
        if sizes[g] >= alpha:
            continue
        room = budget - conflicts[g]
        for w in range(W):
            x = occ[g, w] & bits[j, w]
            if x:
                room -= popcount(x)
                if room < 0:
                    break
        if room >= 0:
            return g
    return G


def group_words(R: int, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty state for :func:`first_free_group`: (row_groups (R, ceil(n/64)) uint64, closed (ceil(n/64),) uint64)."""
    words = (n_groups + 63) // 64
    return np.zeros((R, words), dtype=np.uint64), np.zeros(words, dtype=np.uint64)


@njit(cache=True)
def first_free_group(row_groups, closed, col_ptr, col_rows, j):
    """Lowest group that column j joins with no conflict and that is not full (budget 0).

    ``row_groups[r]`` is the bitset of groups occupying row r and ``closed`` the
    bitset of full groups; a group id never opened has no bits set, so the
    answer is at most the number of open groups (that id means "open a new
    one"). OR-ing j's rows tests 64 groups per word operation, and a word is
    left as soon as all its groups are out, so a dense column where nothing
    fits costs a few rows per word, not nnz(j) (4096 x 11008 at half density:
    the full scan was 1.9e9 scattered reads).
    """
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    for w in range(closed.shape[0]):
        taken = closed[w]
        for p in range(col_ptr[j], col_ptr[j + 1]):
            if taken == full:
                break           # all 64 groups of this word are out: stop reading j's rows
            taken |= row_groups[col_rows[p], w]
        if taken != full:
            free = ~taken
            bit = 0
            while not (free >> np.uint64(bit)) & np.uint64(1):
                bit += 1
            return w * 64 + bit
    return closed.shape[0] * 64


@njit(cache=True)
def mark_group(row_groups, closed, sizes, g, col_ptr, col_rows, j, alpha):
    """Record column j joining group g in the :func:`first_free_group` state."""
    w = g >> 6
    b = np.uint64(1) << np.uint64(g & 63)
    for p in range(col_ptr[j], col_ptr[j + 1]):
        row_groups[col_rows[p], w] |= b
    sizes[g] += 1
    if sizes[g] >= alpha:
        closed[w] |= b


# ------------------------------------------- group removal (tabu, annealing)

@njit(cache=True)
def excess(conflicts, size, alpha, budget):
    """How far one group is from feasible: conflict excess plus size excess."""
    return max(0, conflicts - budget) + max(0, size - alpha)


@njit(cache=True)
def drop_group(k, G, labels, counts, conflicts, sizes, col_ptr, col_rows, alpha, budget):
    """Empty group k into the other G - 1 groups (least added excess each), renumber G-1 as k."""
    for j in range(labels.shape[0]):
        if labels[j] != k:
            continue
        remove_column(counts, conflicts, sizes, k, col_ptr, col_rows, j)
        best, best_d = -1, 1 << 62
        for g in range(G):
            if g == k:
                continue
            d = excess(conflicts[g] + add_delta(counts, g, col_ptr, col_rows, j), sizes[g] + 1,
                       alpha, budget) - excess(conflicts[g], sizes[g], alpha, budget)
            if d < best_d:
                best, best_d = g, d
        add_column(counts, conflicts, sizes, best, col_ptr, col_rows, j)
        labels[j] = best
    last = G - 1
    if k != last:
        for j in range(labels.shape[0]):
            if labels[j] == last:
                labels[j] = k
        counts[k, :] = counts[last, :]
        conflicts[k] = conflicts[last]
        sizes[k] = sizes[last]
    counts[last, :] = 0
    conflicts[last] = 0
    sizes[last] = 0


# ------------------------------------------- the objective's second part

@njit(cache=True)
def pruned_magnitude(labels, G, col_ptr, col_rows, col_mag, R):
    """Magnitude a labelling of the kept columns prunes: per (row, group) cell, its sum less its largest.

    ``col_mag`` holds the magnitudes in ``col_rows``' order.  One pass over the
    groups' columns with an R-sized scratch: O(nnz + R), no sort.  A cell with
    one entry adds exactly 0, so an answer that prunes nothing scores 0.0.
    """
    m = labels.shape[0]
    start = np.zeros(G + 1, dtype=np.int64)
    for j in range(m):
        start[labels[j] + 1] += 1
    for g in range(G):
        start[g + 1] += start[g]
    members = np.empty(m, dtype=np.int64)
    fill = start[:G].copy()
    for j in range(m):
        members[fill[labels[j]]] = j
        fill[labels[j]] += 1
    best = np.zeros(R)
    total = np.zeros(R)
    touched = np.empty(R, dtype=np.int64)
    pruned = 0.0
    for g in range(G):
        k = 0
        for t in range(start[g], start[g + 1]):
            j = members[t]
            for p in range(col_ptr[j], col_ptr[j + 1]):
                r = col_rows[p]
                v = col_mag[p]
                if total[r] == 0.0:
                    touched[k] = r
                    k += 1
                total[r] += v
                if v > best[r]:
                    best[r] = v
        for i in range(k):
            r = touched[i]
            pruned += total[r] - best[r]
            total[r] = 0.0
            best[r] = 0.0
    return pruned
