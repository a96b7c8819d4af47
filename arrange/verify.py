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

from .formats import column_combine

__all__ = ["VerificationError", "verify_packing"]


class VerificationError(AssertionError):
    """A packed result is wrong: a bug in a solver or encoder, never user error."""


def _labels_from_table(table: np.ndarray, N: int) -> np.ndarray:
    labels = np.full(N, -1, dtype=np.int64)
    for g, row in enumerate(table):
        for j in row[row >= 0]:
            if labels[j] != -1:
                raise VerificationError(f"column {int(j)} is in groups {int(labels[j])} and {g}")
            labels[j] = g
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
    for g, row in enumerate(packed.table):
        members = row[row >= 0]
        if np.any(np.abs(packed.values[:, g]) < mag[:, members].max(axis=1)):
            raise VerificationError(f"group {g}: a cell does not keep its largest weight")
        if np.any(packed.select[:, g] >= members.size) or np.any(packed.select[:, g] < 0):
            raise VerificationError(f"group {g}: select index outside the group")
    try:
        decoded = column_combine.decode(packed)
    except ValueError as exc:
        raise VerificationError(str(exc)) from None
    if not np.array_equal(decoded, expected):
        bad = np.argwhere(decoded != expected)[0]
        raise VerificationError(f"decode differs from the pruned matrix at row {bad[0]}, column {bad[1]}")
    return expected
