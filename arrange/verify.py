"""The full checker for packed results: structure, kept entries, and exact decode.

Every packing is verified here before it is returned or reported:
each nonempty column in exactly one group, group sizes <= alpha, per-group
conflicts <= floor(gamma * R) (via :func:`solvers.check.check_labels`), each
cell keeps the max-|W| entry of its group row, and decoding the packed values
and select indices reproduces the conflict-pruned matrix exactly.
"""

from __future__ import annotations

import numpy as np

from solvers import CombineProblem, InvalidSolution, check_labels

from .errors import VerificationError
from .formats import column_combine

__all__ = ["VerificationError", "verify_packing"]


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


def verify_packing(W, packed: column_combine.ColumnCombined, gamma: float) -> np.ndarray:
    """Check ``packed`` against the original W; return the pruned-matrix W it encodes."""
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
    # Kept entry is the max-|W| member of its cell (so conflicts prune the smallest).
    mag = np.abs(W)
    sizes = (packed.table >= 0).sum(axis=1)
    for g0, g1 in column_combine.group_chunks(R, packed.num_groups, packed.alpha):
        largest = column_combine.member_magnitudes(mag, packed.table[g0:g1]).max(axis=2)
        short = np.abs(packed.values[:, g0:g1]) < largest
        if short.any():
            raise VerificationError(f"group {g0 + int(np.argwhere(short)[0][1])}: a cell does not keep its largest weight")
        select = packed.select[:, g0:g1]
        outside = (select < 0) | (select >= sizes[None, g0:g1])
        if outside.any():
            raise VerificationError(f"group {g0 + int(np.argwhere(outside)[0][1])}: select index outside the group")
    try:
        decoded = column_combine.decode(packed)
    except ValueError as exc:
        raise VerificationError(str(exc)) from None
    if not np.array_equal(decoded, expected):
        bad = np.argwhere(decoded != expected)[0]
        raise VerificationError(f"decode differs from the pruned matrix at row {bad[0]}, column {bad[1]}")
    return expected
