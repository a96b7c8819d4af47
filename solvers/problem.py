"""Problem and result types shared by every solver (DESIGN.md section 3).

A problem object is built once from user data, validated, and frozen: it holds
contiguous float64 magnitudes and the problem parameters. Solvers receive it and
never loose arguments. Every solver returns an :class:`Outcome`; the front
doors (:func:`solvers.combine.solve`, :func:`solvers.group.solve`) turn it into a
checked :class:`CombineResult` or :class:`GroupResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ProblemError",
    "InvalidSolution",
    "CombineProblem",
    "GroupProblem",
    "Options",
    "Outcome",
    "CombineResult",
    "GroupResult",
    "magnitudes",
    "efficacy",
]


class ProblemError(ValueError):
    """Bad problem data or parameters; the message is one line naming the fault."""


class InvalidSolution(AssertionError):
    """A solver produced an answer that the checker rejects (a bug, never user error)."""


def magnitudes(W, name: str = "W") -> np.ndarray:
    """|W| as contiguous float64; a bool mask counts each nonzero as magnitude 1."""
    arr = np.asarray(W)
    if arr.ndim != 2:
        raise ProblemError(f"{name}: expected a 2-D matrix, got {arr.ndim}-D shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ProblemError(f"{name}: empty matrix of shape {arr.shape}")
    if arr.dtype == bool:
        return np.ascontiguousarray(arr, dtype=np.float64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ProblemError(f"{name}: expected a real numeric or bool matrix, got dtype {arr.dtype}")
    mag = np.abs(np.asarray(arr, dtype=np.float64))
    if not np.all(np.isfinite(mag)):
        bad = int(np.count_nonzero(~np.isfinite(mag)))
        raise ProblemError(f"{name}: {bad} NaN/inf entries")
    return np.ascontiguousarray(mag)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ProblemError(f"Expected integer {name}, got {value!r}")
    if value < low:
        raise ProblemError(f"Expected {name} >= {low}, got {value}")
    return int(value)


@dataclass(frozen=True, eq=False)
class CombineProblem:
    """P1, min-width combining: partition columns into groups of <= alpha columns.

    In each (row, group) cell only the largest magnitude survives; a group's
    conflicts (sum over rows of nnz - 1) may not exceed ``budget = floor(gamma * R)``.
    Empty columns carry no weight and need no array column: they are left out of
    the groups. Objective: fewest groups, then least pruned magnitude.
    """

    magnitude: np.ndarray
    alpha: int
    gamma: float

    @classmethod
    def from_weights(cls, W, alpha: int = 8, gamma: float = 0.0, name: str = "W") -> "CombineProblem":
        alpha = _check_int(alpha, "alpha", 1)
        try:
            gamma = float(gamma)
        except (TypeError, ValueError):
            raise ProblemError(f"Expected a number for gamma, got {gamma!r}") from None
        if not math.isfinite(gamma) or gamma < 0:
            raise ProblemError(f"Expected gamma >= 0, got {gamma}")
        mag = magnitudes(W, name)
        if not np.any(mag > 0):
            raise ProblemError(f"{name}: all entries are zero, nothing to pack")
        return cls(mag, alpha, gamma)

    @property
    def shape(self) -> tuple[int, int]:
        return self.magnitude.shape

    @property
    def mask(self) -> np.ndarray:
        return self.magnitude > 0

    @property
    def budget(self) -> int:
        """Per-group conflict budget floor(gamma * R)."""
        return int(math.floor(self.gamma * self.magnitude.shape[0] + 1e-9))

    @property
    def nonempty(self) -> np.ndarray:
        """Indices of columns with at least one nonzero."""
        return np.flatnonzero(self.mask.any(axis=0))


@dataclass(frozen=True, eq=False)
class GroupProblem:
    """P2, fixed-ratio grouping: order columns, runs of k form a group, keep top n per cell.

    N must be a multiple of k (the arrange layer pads with empty columns).
    Objective: maximise the kept magnitude.
    """

    magnitude: np.ndarray
    k: int
    n: int

    @classmethod
    def from_weights(cls, W, k: int, n: int = 1, name: str = "W") -> "GroupProblem":
        k = _check_int(k, "k", 2)
        n = _check_int(n, "n", 1)
        if n >= k:
            raise ProblemError(f"Expected n < k, got n={n}, k={k}")
        mag = magnitudes(W, name)
        N = mag.shape[1]
        if k > N:
            raise ProblemError(f"Expected k <= number of columns {N}, got k={k}")
        if N % k:
            raise ProblemError(f"{name}: {N} columns is not a multiple of k={k}; pad with empty columns")
        return cls(mag, k, n)

    @property
    def shape(self) -> tuple[int, int]:
        return self.magnitude.shape

    @property
    def num_groups(self) -> int:
        return self.magnitude.shape[1] // self.k


@dataclass(frozen=True)
class Options:
    """What every solver receives besides the problem."""

    time_limit: float = 10.0
    seed: int = 0
    workers: int = 1
    hint: np.ndarray | None = None  # a known solution (labels for P1, order for P2)
    # CP-SAT's deterministic-time budget; None: derived from time_limit (solvers.cpsat_budget).
    work_limit: float | None = None

    def __post_init__(self):
        if not isinstance(self.time_limit, (int, float)) or not math.isfinite(self.time_limit) \
                or self.time_limit <= 0:
            raise ProblemError(f"Expected time_limit > 0, got {self.time_limit!r}")
        _check_int(self.seed, "seed", 0)
        _check_int(self.workers, "workers", 1)
        if self.work_limit is not None and not (isinstance(self.work_limit, (int, float)) and self.work_limit > 0):
            raise ProblemError(f"Expected work_limit > 0 or None, got {self.work_limit!r}")


@dataclass
class Outcome:
    """A solver's raw answer before checking.

    P1: ``solution`` is labels (N,) int64, group id per column, -1 for empty columns.
    P2: ``solution`` is a column order (N,) int64.
    ``bound`` is the solver's own proven bound (None if it proves nothing) and
    ``proven`` says whether it proved its answer optimal.
    """

    solution: np.ndarray
    bound: float | None = None
    proven: bool = False
    stats: dict = field(default_factory=dict)


@dataclass
class CombineResult:
    """A checked P1 answer."""

    groups: list            # list of int64 arrays of column indices, each sorted
    labels: np.ndarray      # (N,) group id per column, -1 for empty columns
    num_groups: int
    lower_bound: int
    status: str             # "optimal" (proven) or "feasible"
    pruned: np.ndarray      # bool (R, N): nonzeros removed by conflicts
    keep_mask: np.ndarray   # bool (R, N): nonzeros that survive (the mask to fine-tune under)
    pruned_magnitude: float
    total_magnitude: float
    seconds: float
    solver: str
    shape: tuple
    alpha: int
    gamma: float
    stats: dict = field(default_factory=dict)
    packed: object = None   # the encoded format, set by arrange.pack

    @property
    def gap(self) -> float:
        """(found - bound) / bound."""
        return (self.num_groups - self.lower_bound) / self.lower_bound

    @property
    def compression(self) -> float:
        """Matrix compression rate (R * N) / (R * G)."""
        return self.shape[1] / self.num_groups

    @property
    def pruned_fraction(self) -> float:
        return self.pruned_magnitude / self.total_magnitude if self.total_magnitude else 0.0


def efficacy(kept: float, identity_kept: float, rows_bound: float) -> float:
    """P2 efficacy as Apex reports it: (kept - kept_identity) / (rows bound - kept_identity).

    1.0 when the unpermuted answer already meets the rows bound.
    """
    room = rows_bound - identity_kept
    return (kept - identity_kept) / room if room > 0 else 1.0


@dataclass
class GroupResult:
    """A checked P2 answer."""

    order: np.ndarray
    kept: float
    upper_bound: float      # best proven bound: the rows bound or a solver's tighter one
    identity_kept: float
    status: str
    seconds: float
    solver: str
    k: int
    n: int
    stats: dict = field(default_factory=dict)
    padded: int = 0         # empty columns arrange.permute appended to reach a multiple of k
    rows_bound: float = 0.0  # the rows bound alone, the reference efficacy is measured against

    @property
    def efficacy(self) -> float:
        """(kept - kept_identity) / (rows bound - kept_identity), as Apex reports it."""
        return efficacy(self.kept, self.identity_kept, self.rows_bound)

    @property
    def gap(self) -> float:
        return (self.upper_bound - self.kept) / self.upper_bound if self.upper_bound else 0.0
