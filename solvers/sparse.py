"""Sparse column incidence of a P1 mask, and the conflict-graph kernels built on it (Numba).

Problem: P1's structure (bounds, conflict-graph components, the exact models'
adjacency) is about which columns share a nonzero row.  Dense N x N tables or
R x N products cost O(N^2 R) time and O(N^2) memory, minutes and gigabytes on
LLM-sized layers (4096 x 11008), though the mask itself has only nnz entries.

Method: the mask is read once into CSR incidence lists, column -> rows and
row -> columns (:func:`incidence`), and, when pairwise tests are needed, into
row bitsets per column (:func:`column_bits`, R / 64 words each).  Everything
else works on those:

- :func:`components`: union-find over the rows' column lists, O(nnz);
- :func:`clique_extend`: a clique of the conflict graph grown from a start
  clique by first fit over a column order, each membership test an AND of
  bitsets that stops at the first shared word;
- :func:`shareable_pair`: whether any two columns can share a group at all
  (their common rows within the conflict budget), sparsest pairs first;
- :func:`adjacency_bits`: the conflict graph as (m, m / 64) bitsets, for
  the exact models that need it whole.

Every pairwise kernel takes the word operations it may spend and returns
what it spent, so callers charge the work budget (:data:`WORD_OPS` budget
operations per word) and the answer never depends on the clock.

Reference: compressed sparse column/row storage, e.g. Y. Saad, "Iterative
Methods for Sparse Linear Systems", 2nd ed., SIAM 2003, section 3.4;
union-find with path halving, R. E. Tarjan, J. van Leeuwen, J. ACM 31(2),
1984, doi:10.1145/62.2160.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Budget operations (:mod:`solvers.budget`) charged per word operation of the pairwise kernels.
#: Measured with both cores loaded about 3x: 2.6e8 words/s (shareable_pair, 4096 x 11008 at
#: half density) and 1.7e8 words/s (clique_extend, scattered members); at 2 operations a
#: word the budget credits 3e8 words/s, about half of the idle rate, as its calibration asks.
WORD_OPS = 2.0

__all__ = ["WORD_OPS", "incidence", "column_bits", "popcount", "components", "clique_extend", "shareable_pair",
           "adjacency_bits"]


@njit(cache=True)
def incidence(mask):
    """CSR incidence of the nonempty columns of a bool (R, N) mask, renumbered 0..m-1.

    Returns (keep, col_ptr, col_rows, row_ptr, row_cols), all int64:
    ``keep`` the original ids of the kept columns, ``col_rows[col_ptr[j]:col_ptr[j+1]]``
    the rows of kept column j and ``row_cols[row_ptr[r]:row_ptr[r+1]]`` the kept
    columns of row r, both ascending.  Two passes over the mask, O(R N) reads
    and O(nnz) memory.
    """
    R, N = mask.shape
    col_nnz = np.zeros(N, dtype=np.int64)
    row_ptr = np.zeros(R + 1, dtype=np.int64)
    for r in range(R):
        for j in range(N):
            if mask[r, j]:
                col_nnz[j] += 1
    local = np.full(N, -1, dtype=np.int64)
    m = 0
    for j in range(N):
        if col_nnz[j] > 0:
            local[j] = m
            m += 1
    keep = np.empty(m, dtype=np.int64)
    col_ptr = np.zeros(m + 1, dtype=np.int64)
    for j in range(N):
        if local[j] >= 0:
            keep[local[j]] = j
            col_ptr[local[j] + 1] = col_ptr[local[j]] + col_nnz[j]
    nnz = col_ptr[m]
    col_rows = np.empty(nnz, dtype=np.int64)
    row_cols = np.empty(nnz, dtype=np.int64)
    fill = col_ptr[:m].copy()
    k = 0
    for r in range(R):
        for j in range(N):
            if mask[r, j]:
                c = local[j]
                col_rows[fill[c]] = r
                fill[c] += 1
                row_cols[k] = c
                k += 1
        row_ptr[r + 1] = k
    return keep, col_ptr, col_rows, row_ptr, row_cols


@njit(cache=True)
def column_bits(col_ptr, col_rows, R):
    """Row bitsets of the columns: (m, ceil(R / 64)) uint64.

    Bit r % 64 of word r // 64 is set when the column has a nonzero in row r.
    """
    m = col_ptr.shape[0] - 1
    bits = np.zeros((m, (R + 63) // 64), dtype=np.uint64)
    for j in range(m):
        for p in range(col_ptr[j], col_ptr[j + 1]):
            r = col_rows[p]
            bits[j, r >> 6] |= np.uint64(1) << np.uint64(r & 63)
    return bits


@njit(cache=True)
def popcount(x):
    """Set bits of a uint64 (SWAR count; Numba has no portable popcount intrinsic)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def components(m, row_ptr, row_cols):
    """(m,) int64 component id per column (ids 0.. in order of each component's lowest column).

    Columns sharing a row are joined: O(nnz) finds with path halving.
    """
    parent = np.arange(m)
    for r in range(row_ptr.shape[0] - 1):
        a, b = row_ptr[r], row_ptr[r + 1]
        if b - a > 1:
            root = _find(parent, row_cols[a])
            for q in range(a + 1, b):
                other = _find(parent, row_cols[q])
                if other != root:
                    if other < root:
                        parent[root] = other
                        root = other
                    else:
                        parent[other] = root
    comp = np.full(m, -1, dtype=np.int64)
    ids = np.full(m, -1, dtype=np.int64)
    n = 0
    for j in range(m):
        root = _find(parent, j)
        if ids[root] < 0:
            ids[root] = n
            n += 1
        comp[j] = ids[root]
    return comp


@njit(cache=True)
def clique_extend(start, order, bits, ops_left):
    """Grow the clique ``start`` (columns pairwise sharing a row) by first fit over ``order``.

    Each column of ``order`` not in the clique joins it when it shares a row
    with every member; a test stops at the first member it misses and at the
    first shared word.  Stops once ``ops_left`` word operations are spent.
    Returns (clique size, operations spent).
    """
    m, W = bits.shape
    member = np.zeros(m, dtype=np.bool_)
    clique = np.empty(m, dtype=np.int64)
    size = 0
    for j in start:
        member[j] = True
        clique[size] = j
        size += 1
    ops = 0
    for j in order:
        if ops >= ops_left:
            break
        if member[j]:
            continue
        ok = True
        for t in range(size):
            c = clique[t]
            hit = False
            for w in range(W):
                ops += 1
                if bits[j, w] & bits[c, w]:
                    hit = True
                    break
            if not hit:
                ok = False
                break
        if ok:
            member[j] = True
            clique[size] = j
            size += 1
    return size, ops


@njit(cache=True)
def shareable_pair(order, bits, nnz, R, budget, ops_left):
    """Whether two columns can share a group: at most ``budget`` common rows.

    ``order`` lists the columns sparsest first; pairs are tried in that order
    and a pair is skipped outright when nnz_i + nnz_j - R > budget (they must
    then share more rows, pigeonhole).  Returns (1: such a pair exists, 0: no
    pair, -1: ``ops_left`` word operations spent first; operations spent).
    """
    m, W = bits.shape
    ops = 0
    for a in range(m):
        i = order[a]
        for b in range(a + 1, m):
            j = order[b]
            if nnz[i] + nnz[j] - R > budget:
                if b == a + 1:
                    return 0, ops     # every later pair is at least as dense
                break
            common = 0
            for w in range(W):
                ops += 1
                x = bits[i, w] & bits[j, w]
                if x:
                    common += popcount(x)
                    if common > budget:
                        break
            if common <= budget:
                return 1, ops
            if ops >= ops_left:
                return -1, ops
    return 0, ops


@njit(cache=True)
def adjacency_bits(bits, ops_left=np.inf):
    """(the conflict graph as (m, ceil(m / 64)) uint64, its edges, word operations spent, complete).

    Bit j of row i is set when columns i != j share a row; each pair's test
    stops at the first shared word.  ``complete`` is False when ``ops_left``
    ran out first (the table is then partial).
    """
    m, W = bits.shape
    adj = np.zeros((m, (m + 63) // 64), dtype=np.uint64)
    ops = 0
    edges = 0
    for i in range(m):
        for j in range(i + 1, m):
            for w in range(W):
                ops += 1
                if bits[i, w] & bits[j, w]:
                    adj[i, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
                    adj[j, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
                    edges += 1
                    break
        if ops >= ops_left:
            return adj, edges, ops, i == m - 1
    return adj, edges, ops, True
