"""Problem types and the solver-facing contract (DESIGN.md section 3).

A problem object is built once from user data, validated, and frozen: it holds
contiguous float64 magnitudes and the problem parameters. Solvers receive it,
the :class:`Options` and a :class:`~solvers.budget.Budget`, never loose
arguments, and return an :class:`Outcome`; the front doors
(:func:`solvers.combine.solve`, :func:`solvers.group.solve`) turn it into a
checked result (:mod:`solvers.result`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "ProblemError",
    "InvalidSolution",
    "CombineProblem",
    "GroupProblem",
    "Options",
    "Outcome",
    "magnitudes",
    "MAX_TIME_LIMIT",
    "MAX_SEED",
    "check_param_types",
]

#: Longest time limit accepted, in seconds (a day: beyond it the clock arithmetic is meaningless).
MAX_TIME_LIMIT = 86_400.0
#: Largest seed accepted (the kernels' RNG state is 64-bit).
MAX_SEED = 2 ** 63 - 2


class ProblemError(ValueError):
    """Bad problem data or parameters; the message is one line naming the fault."""


class InvalidSolution(AssertionError):
    """A solver produced an answer that the checker rejects (a bug, never user error)."""


def magnitudes(W, name: str = "W") -> np.ndarray:
    """|W| as contiguous float64; a bool mask counts each nonzero as magnitude 1."""
    try:
        arr = np.asarray(W)
    except (ValueError, TypeError) as exc:
        raise ProblemError(f"{name}: not a matrix ({str(exc).split('.')[0]})") from None
    if arr.ndim != 2:
        raise ProblemError(f"{name}: expected a 2-D matrix, got {arr.ndim}-D shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ProblemError(f"{name}: empty matrix of shape {arr.shape}")
    if arr.dtype == bool:
        return np.ascontiguousarray(arr, dtype=np.float64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ProblemError(f"{name}: expected a real numeric or bool matrix, got dtype {arr.dtype}")
    mag = np.array(arr, dtype=np.float64, order="C")      # the one R x N copy
    np.abs(mag, out=mag)
    with np.errstate(over="ignore", invalid="ignore"):
        total = mag.sum()
    if not np.isfinite(total):                            # a NaN/inf entry, or an overflowing sum
        bad = int(np.count_nonzero(~np.isfinite(mag)))
        if bad:
            raise ProblemError(f"{name}: {bad} NaN/inf entries")
        raise ProblemError(f"{name}: magnitudes too large, their sum overflows float64 (largest {mag.max():.3g})")
    return mag


def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ProblemError(f"Expected integer {name}, got {value!r}")
    if value < low:
        raise ProblemError(f"Expected {name} >= {low}, got {value}")
    if high is not None and value > high:
        raise ProblemError(f"Expected {name} <= {high}, got {value}")
    return int(value)


def check_param_types(params) -> None:
    """Check each field of a solver's parameter dataclass has its default's type (int or finite float).

    Called first in every parameter dataclass's ``__post_init__``, so a value
    from the command line of the wrong kind is a one-line error.
    """
    for f in fields(params):
        value, default = getattr(params, f.name), f.default
        where = f"{type(params).__name__}.{f.name}"
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                and math.isfinite(value)
        else:
            ok = True
        if not ok:
            raise ProblemError(f"Expected {type(default).__name__} for {where}, got {value!r}")


@dataclass(frozen=True, eq=False)
class CombineProblem:
    """P1, min-width combining: partition columns into groups of <= alpha columns.

    In each (row, group) cell only the largest magnitude survives; a group's
    conflicts (sum over rows of nnz - 1) may not exceed ``budget = floor(gamma * R)``.
    Empty columns carry no weight and need no array column: they are left out of
    the groups. Objective: fewest groups, then least pruned magnitude.

    ``alpha`` above the number of columns means the number of columns (no group
    can hold more), and so does the reported fan-in.
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
        return cls(mag, min(alpha, mag.shape[1]), gamma)

    @property
    def shape(self) -> tuple[int, int]:
        return self.magnitude.shape

    @cached_property
    def mask(self) -> np.ndarray:
        """Bool (R, N): the nonzeros (computed once; do not modify)."""
        return self.magnitude > 0

    @cached_property
    def budget(self) -> int:
        """Per-group conflict budget floor(gamma * R).

        Capped at R * (alpha - 1), the most conflicts a group of alpha columns
        can have, so a huge gamma means "any group" rather than an overflow.
        """
        R = self.magnitude.shape[0]
        return int(min(math.floor(self.gamma * R + 1e-9), R * (self.alpha - 1)))

    @cached_property
    def nonempty(self) -> np.ndarray:
        """Indices of columns with at least one nonzero."""
        return self.incidence[0]

    @cached_property
    def incidence(self) -> tuple:
        """(kept column ids, (col_ptr, col_rows, row_ptr, row_cols)): CSR of the nonempty columns.

        Built once per problem (:func:`solvers.sparse.incidence`), O(nnz) memory;
        the kept columns are numbered 0..m-1 in the lists.  Do not modify.
        """
        from .sparse import incidence

        keep, col_ptr, col_rows, row_ptr, row_cols = incidence(self.mask)
        return keep, (col_ptr, col_rows, row_ptr, row_cols)

    @cached_property
    def column_magnitudes(self) -> np.ndarray:
        """float64 (nnz,): the magnitudes in the order of ``incidence``'s column lists."""
        keep, (col_ptr, col_rows, _, _) = self.incidence
        return self.magnitude[col_rows, np.repeat(keep, np.diff(col_ptr))]

    @cached_property
    def column_bits(self) -> np.ndarray:
        """(m, ceil(R / 64)) uint64 row bitsets of the nonempty columns (:func:`solvers.sparse.column_bits`)."""
        from .sparse import column_bits

        col_ptr, col_rows = self.incidence[1][:2]
        return column_bits(col_ptr, col_rows, self.shape[0])


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
    """What every solver receives besides the problem and its budget.

    ``bound`` is a bound the caller has already proven (a lower bound on the
    groups for P1, an upper bound on the kept magnitude for P2): the front doors
    pass the cheap bounds here, a portfolio passes the best one found so far, so
    no solver recomputes them and none keeps them in hidden state.  ``params``
    maps a solver name to its parameters (``{"tabu": {"base_iters": 5000}}``),
    read by each solver through :meth:`params_for`.
    """

    time_limit: float = 10.0
    seed: int = 0
    workers: int = 1
    hint: np.ndarray | None = None  # a known solution (labels for P1, order for P2)
    bound: float | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        tl = self.time_limit
        if isinstance(tl, bool) or not isinstance(tl, (int, float, np.integer, np.floating)) \
                or not math.isfinite(tl) or tl <= 0:
            raise ProblemError(f"Expected time_limit > 0 seconds, got {tl!r}")
        if tl > MAX_TIME_LIMIT:
            raise ProblemError(f"Expected time_limit <= {MAX_TIME_LIMIT:g} seconds, got {tl!r}")
        _check_int(self.seed, "seed", 0, MAX_SEED)
        _check_int(self.workers, "workers", 1, 1024)
        if not isinstance(self.params, Mapping) or not all(
                isinstance(v, Mapping) for v in self.params.values()):
            raise ProblemError(f"Expected params as {{solver: {{name: value}}}}, got {self.params!r}")

    def params_for(self, solver: str, cls):
        """The parameters given for ``solver`` as an instance of its frozen dataclass ``cls``.

        Unknown names raise ProblemError naming the allowed ones; the dataclass
        validates the values (``__post_init__``).
        """
        given = dict(self.params.get(solver, {}))
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - allowed)
        if unknown:
            raise ProblemError(f"unknown parameter {solver}.{unknown[0]}; allowed: "
                               f"{', '.join(f'{solver}.{a}' for a in sorted(allowed)) or '(none)'}")
        try:
            return cls(**given)
        except TypeError as exc:
            raise ProblemError(f"bad parameters for {solver}: {exc}") from None


@dataclass
class Outcome:
    """A solver's raw answer before checking.

    P1: ``solution`` is labels (N,) int64, group id per column, -1 for empty columns.
    P2: ``solution`` is a column order (N,) int64.
    ``bound`` is the solver's own proven bound (None if it proves nothing),
    ``bound_kind`` names what proved it; ``proven`` says whether the answer is
    proven optimal.  ``interrupted``: Ctrl-C or the wall clock stopped the
    search before its work budget did (the answer may then vary from run to
    run).  ``fallback``: why a simpler method answered instead of this one.
    ``stats`` is for free-form diagnostics only; nothing reads it to decide.
    """

    solution: Any
    bound: float | None = None
    proven: bool = False
    bound_kind: str | None = None
    iterations: int = 0
    interrupted: bool = False
    fallback: str | None = None
    stats: dict = field(default_factory=dict)


