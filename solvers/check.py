"""The checker every solver answer passes before it is returned.

Written in plain numpy, independent of the solvers' Numba kernels, so a bug in
a kernel cannot hide itself.
"""

from __future__ import annotations

import numpy as np

from .problem import CombineProblem, GroupProblem, InvalidSolution

__all__ = ["check_labels", "conflict_pruned", "kept_magnitude", "kept_mask", "kept_and_mask"]


def _cells(magnitude: np.ndarray, labels: np.ndarray):
    """Rows and columns of the nonzeros in groups of two or more columns, and which of them their
    (row, group) cell keeps (a column alone in its group keeps everything, so it is left out).

    A cell keeps its largest magnitude, ties to the lowest column. One sort by
    cell (row-major nonzeros are nearly in cell order already, so numpy's
    introsort is fast; no stability needed), then per-cell maxima and, among
    the maxima, the lowest column: O(nnz log nnz) without an N x G table.
    """
    grouped = labels >= 0
    sizes = np.bincount(labels[grouped], minlength=1)
    shared = np.zeros(labels.shape, dtype=bool)
    shared[grouped] = sizes[labels[grouped]] > 1
    if not shared.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    rows, cols = np.nonzero(magnitude)
    if not shared.all():
        keep = shared[cols]
        rows, cols = rows[keep], cols[keep]
    if rows.size == 0:
        return rows, cols, np.zeros(0, dtype=bool)
    groups = labels[cols]
    keys = rows * (int(groups.max()) + 1) + groups
    del groups
    order = np.argsort(keys)
    keys = keys[order]
    rows, cols = rows[order], cols[order]
    del order
    new_cell = np.empty(rows.size, dtype=bool)
    new_cell[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new_cell[1:])
    del keys
    starts = np.flatnonzero(new_cell)
    cell = np.cumsum(new_cell) - 1
    del new_cell
    mag = magnitude[rows, cols]
    is_max = mag == np.maximum.reduceat(mag, starts)[cell]
    lowest = np.minimum.reduceat(np.where(is_max, cols, magnitude.shape[1]), starts)
    keeps = cols == lowest[cell]
    return rows, cols, keeps


def _pruned_mask(shape: tuple, rows: np.ndarray, cols: np.ndarray, keeps: np.ndarray) -> np.ndarray:
    pruned = np.zeros(shape, dtype=bool)
    pruned[rows[~keeps], cols[~keeps]] = True
    return pruned


def conflict_pruned(magnitude: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Bool (R, N): nonzeros removed because a larger one shares their (row, group) cell.

    Ties keep the lowest column index, the rule the packed formats decode with.
    """
    return _pruned_mask(magnitude.shape, *_cells(magnitude, np.asarray(labels)))


def check_labels(problem: CombineProblem, labels) -> np.ndarray:
    """Validate a P1 labelling and return its conflict-pruned mask.

    Raises InvalidSolution naming the first violated rule: every nonempty column
    in exactly one group, empty columns in none, group ids 0..G-1 all used,
    sizes <= alpha, conflicts <= floor(gamma * R) per group.
    """
    labels = np.asarray(labels)
    R, N = problem.shape
    if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidSolution(f"labels must be {N} integers, got shape {labels.shape} dtype {labels.dtype}")
    mask = problem.mask
    empty = ~mask.any(axis=0)
    if np.any(labels[empty] != -1):
        raise InvalidSolution("an empty column was placed in a group")
    used = labels[~empty]
    if np.any(used < 0):
        raise InvalidSolution(f"nonempty column {int(np.flatnonzero(~empty)[np.argmax(used < 0)])} is in no group")
    G = int(used.max()) + 1
    sizes = np.bincount(used, minlength=G)
    if np.any(sizes == 0):
        raise InvalidSolution(f"group ids are not contiguous: group {int(np.argmin(sizes))} is empty")
    if sizes.max() > problem.alpha:
        raise InvalidSolution(f"group {int(np.argmax(sizes))} has {int(sizes.max())} columns > alpha={problem.alpha}")
    # conflicts of group g = sum over rows of (nonzeros in cell (r, g)) - 1: the entries
    # its cells do not keep, so one pass gives both the conflicts and the pruned mask
    rows, cols, keeps = _cells(problem.magnitude, labels)
    conflicts = np.bincount(labels[cols[~keeps]], minlength=G)
    if conflicts.max() > problem.budget:
        g = int(np.argmax(conflicts))
        raise InvalidSolution(f"group {g} has {int(conflicts[g])} conflicts > budget {problem.budget}")
    return _pruned_mask((R, N), rows, cols, keeps)


# Rows per block of the P2 checker: bounds its temporary copies to a few MB at any width.
_ROW_BLOCK = 256


def _check_order(problem: GroupProblem, order) -> np.ndarray:
    order = np.asarray(order)
    R, N = problem.shape
    if order.shape != (N,) or not np.issubdtype(order.dtype, np.integer):
        raise InvalidSolution(f"order must be {N} integers, got shape {order.shape}")
    if order.min() < 0 or order.max() >= N or np.any(np.bincount(order, minlength=N) != 1):
        raise InvalidSolution("order is not a permutation of the columns")
    return order.astype(np.int64, copy=False)


def _top_n(problem: GroupProblem, order: np.ndarray, want_mask: bool):
    """Kept magnitude of ``order`` and (if asked) the kept mask, in blocks of rows.

    Position i of every group is one (rows, G) slice; n bubble passes of
    elementwise min/max over the k slices float each cell's n largest values
    to the top, giving their sum and the n-th largest value thr.  A cell keeps
    its entries above thr, then entries equal to thr in position order until
    it has n: the earlier position wins a tie.  O(R N n) with no per-cell sort.
    """
    R, N = problem.shape
    k, n = problem.k, problem.n
    slots = [order[i::k] for i in range(k)]
    total = 0.0
    mask = np.zeros((R, N), dtype=bool) if want_mask else None
    for r0 in range(0, R, _ROW_BLOCK):
        block = problem.magnitude[r0:r0 + _ROW_BLOCK]
        # C order whatever numpy's fancy indexing returns, so both paths sum in one order
        vals = [np.ascontiguousarray(block[:, s]) for s in slots]
        work = [v.copy() for v in vals] if want_mask else vals
        for t in range(n):
            for i in range(k - 1 - t):
                lo = np.minimum(work[i], work[i + 1])
                np.maximum(work[i], work[i + 1], out=work[i + 1])
                work[i] = lo
            total += float(work[k - 1 - t].sum())
        if want_mask:
            thr = work[k - n]
            above = [v > thr for v in vals]
            needed = n - sum(a.astype(np.int32) for a in above)
            ties = bool(needed.any())
            for v, a, s in zip(vals, above, slots):
                if ties:
                    tie = (v == thr) & (needed > 0)
                    needed -= tie
                    a |= tie
                mask[r0:r0 + _ROW_BLOCK, s] = a
    if want_mask:
        mask &= problem.magnitude > 0
    return total, mask


def kept_magnitude(problem: GroupProblem, order) -> float:
    """Validate a P2 column order and return the kept magnitude."""
    return _top_n(problem, _check_order(problem, order), False)[0]


def kept_mask(problem: GroupProblem, order) -> np.ndarray:
    """Bool (R, N) in the original column order: the nonzeros a P2 order keeps.

    Each (row, group) cell keeps its n largest magnitudes; among equal ones the
    earlier position in the order (the rule the N:M format encodes with).
    """
    return _top_n(problem, _check_order(problem, order), True)[1]


def kept_and_mask(problem: GroupProblem, order) -> tuple[float, np.ndarray]:
    """:func:`kept_magnitude` and :func:`kept_mask` in one pass."""
    return _top_n(problem, _check_order(problem, order), True)
