"""Numba kernels of the P2 set-partitioning LP bound (:mod:`.lp_bound`)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["k_subsets", "reduced_costs"]


@njit(cache=True)
def k_subsets(N, k, count):
    """(count, k) int64: every k-subset of range(N) in lexicographic order (count = C(N, k))."""
    out = np.empty((count, k), dtype=np.int64)
    cur = np.arange(k)
    for s in range(count):
        out[s] = cur
        i = k - 1
        while i >= 0 and cur[i] == N - k + i:
            i -= 1
        if i < 0:
            break
        cur[i] += 1
        for t in range(i + 1, k):
            cur[t] = cur[t - 1] + 1
    return out


@njit(cache=True)
def reduced_costs(subsets, values, pi, out):
    """out[s] = values[s] - sum of pi over subset s; returns the largest."""
    best = -np.inf
    for s in range(subsets.shape[0]):
        v = values[s]
        for t in range(subsets.shape[1]):
            v -= pi[subsets[s, t]]
        out[s] = v
        if v > best:
            best = v
    return best
