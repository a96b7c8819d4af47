"""Group labellings of P1 answers: one canonical numbering, and the groups as column lists."""

from __future__ import annotations

import numpy as np

__all__ = ["canonical_labels", "group_lists"]


def canonical_labels(labels) -> np.ndarray:
    """Renumber groups 0..G-1 in order of their lowest column (same answer, same labels); -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full_like(labels, -1)
    used = labels >= 0
    if not used.any():
        return out
    _, first, inverse = np.unique(labels[used], return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    out[used] = rank[inverse.ravel()]
    return out


def group_lists(labels: np.ndarray, G: int) -> list:
    """The columns of each group 0..G-1, ascending (one sort, not G scans)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels[labels >= 0], minlength=G)
    return np.split(order[order.size - counts.sum():], np.cumsum(counts)[:-1])
