"""Numba kernels shared by the P2 grouping heuristics: kept magnitude and its deltas.

State is a column order (N,) int64; group g is ``order[g*k:(g+1)*k]``. Magnitudes
come transposed, ``magT`` (N, R) float64 contiguous, so a column is one
contiguous run of memory. Group values are always recomputed from the columns,
never accumulated from deltas, so float error cannot drift over a long search.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..rng import rand_below

__all__ = [
    "prepare",
    "group_kept",
    "all_group_kept",
    "replace_kept",
    "slot_threshold",
    "replace_value",
    "swap_positions",
    "replacement_table",
    "refresh_table_groups",
    "random_cross_pair",
    "insertion_values",
    "tolerance",
    "chunk_steps",
]

# Elementary operations one kernel call may do before Python checks the deadline
# and Ctrl-C again: about 20-50 ms.
_CHUNK_WORK = 2e7
# Rows per tile of the insertion table: 4 KB of a column, B of them in L2.
_ROW_TILE = 512


def prepare(magnitude: np.ndarray) -> np.ndarray:
    """The (N, R) contiguous float64 layout every kernel takes."""
    return np.ascontiguousarray(np.asarray(magnitude, dtype=np.float64).T)


@njit(cache=True)
def _top_n_sum(buf, k, n):
    # Bubble passes of branch-free compare-exchanges: random magnitudes make
    # comparison branches unpredictable, and min/max compile to selects.
    # n passes float the n largest to the end; k - n passes sink the smallest.
    if 2 * n <= k:
        total = 0.0
        for t in range(n):
            for i in range(k - 1 - t):
                lo = min(buf[i], buf[i + 1])
                buf[i + 1] = max(buf[i], buf[i + 1])
                buf[i] = lo
            total += buf[k - 1 - t]
        return total
    whole = 0.0
    for i in range(k):
        whole += buf[i]
    for t in range(k - n):
        for i in range(k - 1, t, -1):
            hi = max(buf[i], buf[i - 1])
            buf[i - 1] = min(buf[i], buf[i - 1])
            buf[i] = hi
        whole -= buf[t]
    return whole


@njit(cache=True)
def _kept(magT, order, start, k, n, pos, col):
    # Kept magnitude of order[start:start+k] with slot ``pos`` (absolute, -1 for
    # none) holding ``col``; one small buffer, no copies of the order.
    R = magT.shape[1]
    buf = np.empty(k)
    cols = np.empty(k, dtype=np.int64)
    for i in range(k):
        cols[i] = col if start + i == pos else order[start + i]
    total = 0.0
    for r in range(R):
        for i in range(k):
            buf[i] = magT[cols[i], r]
        total += _top_n_sum(buf, k, n)
    return total


@njit(cache=True)
def group_kept(magT, cols, n):
    """Kept magnitude of one group given its k column indices."""
    return _kept(magT, cols, 0, cols.shape[0], n, -1, 0)


@njit(cache=True)
def replace_kept(magT, order, k, n, pos, col):
    """Kept magnitude of the group holding position ``pos`` with that slot set to ``col``."""
    return _kept(magT, order, (pos // k) * k, k, n, pos, col)


@njit(cache=True)
def all_group_kept(magT, order, k, n):
    """(G,) kept magnitude of every group of ``order``."""
    G = order.shape[0] // k
    out = np.empty(G)
    for g in range(G):
        out[g] = group_kept(magT, order[g * k:(g + 1) * k], n)
    return out


@njit(cache=True)
def swap_positions(magT, order, k, n, gvals, a, b):
    """Swap the columns at positions a and b in place and refresh both group values."""
    tmp = order[a]
    order[a] = order[b]
    order[b] = tmp
    ga = a // k
    gb = b // k
    gvals[ga] = group_kept(magT, order[ga * k:(ga + 1) * k], n)
    gvals[gb] = group_kept(magT, order[gb * k:(gb + 1) * k], n)


@njit(cache=True)
def slot_threshold(magT, order, k, n, pos, thr):
    """Prepare O(R) replacement scoring for slot ``pos``; returns the base value.

    With the slot emptied, each row r keeps the top n of the other k - 1
    entries (their sum over rows is the base) and a new entry v adds
    max(0, v - thr[r]), thr[r] being the n-th largest of those k - 1 entries.
    """
    start = (pos // k) * k
    R = magT.shape[1]
    m = k - 1
    cols = np.empty(m, dtype=np.int64)
    j = 0
    for i in range(k):
        if start + i != pos:
            cols[j] = order[start + i]
            j += 1
    buf = np.empty(m)
    base = 0.0
    for r in range(R):
        for i in range(m):
            buf[i] = magT[cols[i], r]
        for t in range(n):
            for i in range(m - 1 - t):
                lo = min(buf[i], buf[i + 1])
                buf[i + 1] = max(buf[i], buf[i + 1])
                buf[i] = lo
            base += buf[m - 1 - t]
        thr[r] = buf[m - n]
    return base


@njit(cache=True, inline="always")
def _gain_sum(magT, col, thr, r0, r1):
    # sum over rows r0..r1-1 of max(0, magT[col, r] - thr[r]), in four interleaved
    # partial sums so the loop vectorises without reassociating (same answer on any
    # machine and alignment)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    r = r0
    while r + 4 <= r1:
        s0 += max(0.0, magT[col, r] - thr[r])
        s1 += max(0.0, magT[col, r + 1] - thr[r + 1])
        s2 += max(0.0, magT[col, r + 2] - thr[r + 2])
        s3 += max(0.0, magT[col, r + 3] - thr[r + 3])
        r += 4
    while r < r1:
        s0 += max(0.0, magT[col, r] - thr[r])
        r += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def replace_value(magT, base, thr, col):
    """Group value once ``col`` fills the slot prepared by :func:`slot_threshold`."""
    return base + _gain_sum(magT, col, thr, 0, magT.shape[1])


@njit(cache=True)
def _fill_table_row(magT, order, k, n, table, pos, thr):
    g = pos // k
    base = slot_threshold(magT, order, k, n, pos, thr)
    for c in range(order.shape[0]):
        if c // k != g:
            table[pos, order[c]] = replace_value(magT, base, thr, order[c])


@njit(cache=True)
def replacement_table(magT, order, k, n):
    """(N, N) table: [pos, col] = group value at pos's group with pos's column replaced by col.

    Only entries whose column sits in another group are filled (the rest are
    never read): a swap of positions a, b changes the total by
    table[a, order[b]] + table[b, order[a]] - gvals[a//k] - gvals[b//k].
    """
    N = order.shape[0]
    table = np.zeros((N, N))
    thr = np.empty(magT.shape[1])
    for pos in range(N):
        _fill_table_row(magT, order, k, n, table, pos, thr)
    return table


@njit(cache=True)
def refresh_table_groups(magT, order, k, n, table, ga, gb):
    """Refill the table rows of groups ga and gb after they changed.

    Rows of other groups stay valid: an entry depends only on the other
    columns of its own group and the incoming column.
    """
    thr = np.empty(magT.shape[1])
    for g in (ga, gb):
        for pos in range(g * k, (g + 1) * k):
            _fill_table_row(magT, order, k, n, table, pos, thr)


@njit(cache=True)
def random_cross_pair(N, k, rng):
    """Two uniformly random positions in different groups, drawn from the xorshift state ``rng``."""
    a = rand_below(rng, N)
    b = rand_below(rng, N - k)
    # Skip over a's group so b is uniform over the other groups' positions.
    if b >= (a // k) * k:
        b += k
    return a, b


@njit(cache=True)
def insertion_values(magT, order, k, n, removed):
    """(B, B) values for LNS: [i, g] = the group of removed[g] with that slot holding column order[removed[i]].

    Rows are taken in tiles of _ROW_TILE so the B columns and thresholds of a
    tile stay in cache while every (i, g) pair is scored.
    """
    B = removed.shape[0]
    R = magT.shape[1]
    thr = np.empty((B, R))
    base = np.empty(B)
    cols = np.empty(B, dtype=np.int64)
    for g in range(B):
        base[g] = slot_threshold(magT, order, k, n, removed[g], thr[g])
        cols[g] = order[removed[g]]
    out = np.zeros((B, B))
    for r0 in range(0, R, _ROW_TILE):
        r1 = min(R, r0 + _ROW_TILE)
        for g in range(B):
            for i in range(B):
                out[i, g] += _gain_sum(magT, cols[i], thr[g], r0, r1)
    for i in range(B):
        for g in range(B):
            out[i, g] += base[g]
    return out


def tolerance(magT: np.ndarray) -> float:
    """Smallest gain a search counts as an improvement; below it float noise could cycle."""
    return 1e-12 * max(1.0, float(magT.sum()))


def chunk_steps(work_per_step: float, cap: int) -> int:
    """Steps per kernel call, so that one call stays within about _CHUNK_WORK operations."""
    return int(max(1, min(cap, _CHUNK_WORK // max(work_per_step, 1.0))))
