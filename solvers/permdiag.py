"""PermDNN projection: permuted-diagonal blocks with row/column permutations.

Problem: an R x N matrix (R, N multiples of p) is cut into p x p blocks; block
(i, j) keeps only a permuted diagonal, the entries (c, (c + k_ij) mod p) for
one shift k_ij.  Before blocking, the rows and the columns of the whole matrix
may be permuted.  Maximise the kept energy (sum of squares of kept entries).

Method:
- best shift per block, exactly: each of the p candidate diagonals is scored by
  a vectorised gather and the best one kept (ties: the smallest shift);
- ``exact``: enumeration of the arrangements that can differ in value.  Reordering
  whole blocks, or rotating the rows (columns) inside a block, only relabels
  the shifts, so a side of n items has n! / ((n/p)! p^(n/p)) distinct
  arrangements (blocks as sets, each in a cyclic order with its smallest item
  first); all row x column pairs are scored, the larger side batched in numpy;
- ``assign``: alternating exact assignment.  With the row order and the shifts
  fixed, column slot (j, b) meets exactly one row per block row, so the energy a
  column keeps in that slot is a sum over rows and the best column order is a
  maximum-weight linear assignment; then the best shifts; then the same for the
  rows on the transpose (shift -k).  No step loses, so it reaches a fixed
  point.  It starts from the identity (never worse than unpermuted) and is
  iterated: a kick redraws the shifts of a random share of blocks, reassigns
  the columns and re-alternates, kept when better, until ``PATIENCE`` kicks in a
  row fail or its work budget is spent.
- the upper bound: every row keeps N/p entries and every column R/p, so neither
  side can keep more than its own top entries (the smaller of the two sums).

The solvers' answer is ``(row_order, col_order)``: position -> original index.
Both solvers stop on a work budget derived from the time limit
(:mod:`solvers.budget`), not on the clock: same seed, same answer.

Reference: C. Deng, S. Liao, Y. Xie, K. K. Parhi, X. Qian, B. Yuan, "PermDNN:
Efficient Compressed DNN Architecture with Permuted Diagonal Matrices",
MICRO 2018, doi:10.1109/MICRO.2018.00024.  Assignment by OR-Tools'
SimpleLinearSumAssignment (via :func:`solvers.group.lns.max_assignment`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from .budget import Budget
from .group.lns import max_assignment
from .problem import InvalidSolution, Options, Outcome, ProblemError, _check_int, magnitudes
from .registry import Solver, lookup
from .result import Result
from .run import run_solver
from .warm import warm_up

__all__ = [
    "PermDiagProblem", "PermDiagResult", "SOLVERS", "solve",
    "shift_energy", "best_shifts", "kept_energy", "upper_bound",
    "arrangement_count", "canonical_orders", "diagonal_positions",
]

# Row x column arrangement pairs the exact enumeration (and "auto") accepts.
EXACT_LIMIT = 200_000
# Scored (rows x matrix) entries per numpy batch of the enumeration.
_BATCH_ENTRIES = 1 << 22
# Perturbations without improvement before the assignment search stops.
PATIENCE = 20
# Share of blocks whose shift a perturbation redraws.
PERTURB = 0.2
# Alternation rounds per start (it usually reaches a fixed point in a few).
_MAX_ROUNDS = 50
# Operations charged per scored matrix entry of the enumeration (fitted with
# benchmarks/solvers/work_rate.py so the budget runs out at about half the wall time,
# like every budgeted search).
_EXACT_OPS = 5.0
# Relative slack for comparing float sums computed in different orders.
_REL_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class PermDiagProblem:
    """Kept-energy maximisation over p x p permuted-diagonal blocks.

    ``energy`` is W**2 (a bool mask counts 1 per nonzero); R and N must be
    multiples of p (the arrange layer pads with zeros).
    """

    energy: np.ndarray
    p: int

    @classmethod
    def from_weights(cls, W, p: int, name: str = "W") -> "PermDiagProblem":
        p = _check_int(p, "p", 1)
        energy = np.ascontiguousarray(magnitudes(W, name) ** 2)
        R, N = energy.shape
        if R % p or N % p:
            raise ProblemError(f"{name}: shape {R}x{N} is not a multiple of p={p}; pad with zeros")
        return cls(energy, p)

    @property
    def shape(self) -> tuple[int, int]:
        return self.energy.shape

    @property
    def blocks(self) -> tuple[int, int]:
        return self.energy.shape[0] // self.p, self.energy.shape[1] // self.p


@dataclass(kw_only=True)
class PermDiagResult(Result):
    """A checked answer: orders, best shifts; ``objective`` the kept energy, ``bound`` its upper bound."""

    row_order: np.ndarray   # (R,) position -> original row
    col_order: np.ndarray   # (N,) position -> original column
    shifts: np.ndarray      # (R/p, N/p) int64 best shift per block under the orders
    identity_kept: float
    total: float
    sense: str = "max"

    @property
    def kept(self) -> float:
        return float(self.objective)

    @property
    def upper_bound(self) -> float:
        return float(self.bound)

    @property
    def gain(self) -> float:
        """Kept energy relative to the unpermuted projection (1.0 = no gain)."""
        return self.kept / self.identity_kept if self.identity_kept > 0 else 1.0

    def _row_extras(self) -> dict:
        return {"gain": self.gain, "identity_kept": self.identity_kept, "total": self.total}


def diagonal_positions(p: int) -> np.ndarray:
    """(p, p) array: column offset (c + k) mod p of block row c under shift k, indexed [k, c]."""
    c = np.arange(p)
    return (c[None, :] + c[:, None]) % p


def shift_energy(energy: np.ndarray, p: int) -> np.ndarray:
    """Kept energy of every block under every shift: (..., R/p, N/p, p) for (..., R, N) input."""
    *lead, R, N = energy.shape
    blocks = np.swapaxes(energy.reshape(*lead, R // p, p, N // p, p), -3, -2)
    c = np.arange(p)
    cols = diagonal_positions(p)
    out = np.empty((*lead, R // p, N // p, p))
    for k in range(p):
        out[..., k] = blocks[..., c, cols[k]].sum(axis=-1)
    return out


def best_shifts(energy: np.ndarray, p: int) -> tuple[np.ndarray, float]:
    """The exact best shift per block (smallest on ties) and the total kept energy."""
    scores = shift_energy(energy, p)
    shifts = np.argmax(scores, axis=-1).astype(np.int64)
    return shifts, float(np.take_along_axis(scores, shifts[..., None], -1).sum())


def kept_energy(energy: np.ndarray, p: int, row_order, col_order) -> tuple[np.ndarray, float]:
    """Best shifts and kept energy of the matrix with its rows and columns reordered."""
    return best_shifts(energy[np.ix_(row_order, col_order)], p)


def upper_bound(problem: PermDiagProblem) -> float:
    """min(sum of each row's top N/p energies, sum of each column's top R/p)."""
    E, p = problem.energy, problem.p
    R, N = E.shape
    rows = np.sort(E, axis=1)[:, N - N // p:].sum()
    cols = np.sort(E, axis=0)[R - R // p:, :].sum()
    return float(min(rows, cols))


def arrangement_count(n: int, p: int) -> int:
    """Arrangements of n items into blocks of p that differ in kept energy: n!/((n/p)! p^(n/p))."""
    b = n // p
    return math.factorial(n) // (math.factorial(b) * p ** b)


def _arrangements(items: tuple, p: int):
    if not items:
        yield ()
        return
    head, rest = items[0], items[1:]
    for others in itertools.combinations(rest, p - 1):
        left = tuple(x for x in rest if x not in others)
        for cycle in itertools.permutations(others):
            for tail in _arrangements(left, p):
                yield (head, *cycle, *tail)


def canonical_orders(n: int, p: int) -> np.ndarray:
    """(arrangement_count(n, p), n) int64: one order per class of equal-valued arrangements."""
    orders = np.array(list(_arrangements(tuple(range(n)), p)), dtype=np.int64)
    return orders.reshape(-1, n)


# ---------------------------------------------------------------- solvers

def _identity(problem: PermDiagProblem, options: Options, budget: Budget) -> Outcome:
    R, N = problem.shape
    return Outcome((np.arange(R, dtype=np.int64), np.arange(N, dtype=np.int64)),
                   stats={"method": "identity"})


def _exact_fits(problem: PermDiagProblem) -> str | None:
    R, N = problem.shape
    pairs = arrangement_count(R, problem.p) * arrangement_count(N, problem.p)
    if pairs > EXACT_LIMIT:
        return f"exact permdiag: {pairs} arrangement pairs > limit {EXACT_LIMIT}; use solver 'assign'"
    return None


def _exact(problem: PermDiagProblem, options: Options, budget: Budget) -> Outcome:
    E, p = problem.energy, problem.p
    R, N = E.shape
    pairs = arrangement_count(R, p) * arrangement_count(N, p)
    # Loop in Python over the side with fewer arrangements, batch the other in numpy.
    swap = arrangement_count(R, p) > arrangement_count(N, p)
    M = E.T if swap else E
    outer = canonical_orders(M.shape[0], p)
    inner = canonical_orders(M.shape[1], p)
    batch = max(1, _BATCH_ENTRIES // M.size)
    best, best_pair, done = -1.0, (outer[0], inner[0]), 0
    for rows in outer:
        if budget.exhausted:
            break
        # every inner arrangement gathers and scores the whole matrix p times
        budget.spend(_EXACT_OPS * inner.shape[0] * M.size * p)
        Mr = M[rows]
        for start in range(0, inner.shape[0], batch):
            cols = inner[start:start + batch]
            scores = shift_energy(np.moveaxis(Mr[:, cols], 1, 0), p).max(axis=-1).sum(axis=(1, 2))
            i = int(np.argmax(scores))
            if scores[i] > best:
                best, best_pair = float(scores[i]), (rows, cols[i])
        done += 1
    rows, cols = best_pair
    solution = (cols, rows) if swap else (rows, cols)
    complete = done == outer.shape[0]
    return Outcome(solution, bound=best if complete else None, proven=complete, bound_kind="enumeration",
                   iterations=done, stats={"method": "enumeration", "pairs": pairs, "complete": complete})


def _column_step(E: np.ndarray, p: int, row_order: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The best column order for fixed rows and shifts: slot (j, b) meets row slot (i, (b - k_ij) mod p)."""
    Rb, Nb = shifts.shape
    N = E.shape[1]
    Er = E[row_order].reshape(Rb, p, N)
    offsets = (np.arange(p)[None, None, :] - shifts[:, :, None]) % p   # (Rb, Nb, p)
    gain = np.zeros((Nb, p, N))
    for i in range(Rb):
        gain += Er[i][offsets[i]]
    return max_assignment(gain.reshape(Nb * p, N))


def _round_ops(R: int, N: int) -> float:
    """Operations charged for one alternation round: its N x N and R x R assignments dominate
    (measured 0.58 ns x (N^3 + R^3) plus 12 ms a round, 256-1024 rows and columns)."""
    return 0.3 * (N ** 3 + R ** 3) + 6e6


def _alternate(E: np.ndarray, p: int, rows: np.ndarray, cols: np.ndarray, budget: Budget):
    shifts, kept = kept_energy(E, p, rows, cols)
    tol = _REL_TOL * max(1.0, float(E.sum()))
    rounds = 0
    while rounds < _MAX_ROUNDS and not budget.exhausted:
        rounds += 1
        budget.spend(_round_ops(*E.shape))
        before = kept
        # Integer-scaled assignment may round away a tie; keep a step only if it does not lose.
        new_cols = _column_step(E, p, rows, shifts)
        new_shifts, new_kept = kept_energy(E, p, rows, new_cols)
        if new_kept >= kept:
            cols, shifts, kept = new_cols, new_shifts, new_kept
        new_rows = _column_step(E.T, p, cols, (-shifts.T) % p)
        new_shifts, new_kept = kept_energy(E, p, new_rows, cols)
        if new_kept >= kept:
            rows, shifts, kept = new_rows, new_shifts, new_kept
        if kept <= before + tol:
            break
    return rows, cols, kept, rounds


def _perturb(E: np.ndarray, p: int, rows: np.ndarray, cols: np.ndarray, rng) -> np.ndarray:
    """New columns for ``rows`` after redrawing the shifts of a random ``PERTURB`` share of blocks."""
    shifts, _ = kept_energy(E, p, rows, cols)
    redraw = rng.random(shifts.shape) < PERTURB
    shifts = np.where(redraw, rng.integers(p, size=shifts.shape), shifts)
    return _column_step(E, p, rows, shifts)


def _assign(problem: PermDiagProblem, options: Options, budget: Budget) -> Outcome:
    E, p = problem.energy, problem.p
    R, N = E.shape
    rng = np.random.default_rng(options.seed)
    rows, cols, kept, rounds = _alternate(E, p, np.arange(R), np.arange(N), budget)
    tol = _REL_TOL * max(1.0, float(E.sum()))
    kicks = stale = 0
    while stale < PATIENCE and not budget.exhausted:
        kicks += 1
        new_cols = _perturb(E, p, rows, cols, rng)
        new_rows, new_cols, new_kept, r = _alternate(E, p, rows, new_cols, budget)
        rounds += r
        stale = 0 if new_kept > kept + tol else stale + 1
        if new_kept > kept:
            rows, cols, kept = new_rows, new_cols, new_kept
    return Outcome((rows, cols), iterations=rounds,
                   stats={"method": "iterated alternating assignment", "kicks": kicks})


def _auto(problem: PermDiagProblem, options: Options, budget: Budget) -> Outcome:
    return (_exact if _exact_fits(problem) is None else _assign)(problem, options, budget)


SOLVERS: dict[str, Solver] = {s.name: s for s in [
    Solver("identity", _identity, "unpermuted rows and columns, best shift per block"),
    Solver("exact", _exact, "enumeration of all distinct row x column arrangements", exact=True,
           requires=_exact_fits),
    Solver("assign", _assign, "iterated alternating exact column/row assignment from the identity"),
    Solver("auto", _auto, "exact when the arrangements are few, else assign", exact=True),
]}


def _check_order(order, n: int, side: str) -> np.ndarray:
    order = np.asarray(order)
    if order.shape != (n,) or not np.issubdtype(order.dtype, np.integer) \
            or not np.array_equal(np.sort(order), np.arange(n)):
        raise InvalidSolution(f"{side} order is not a permutation of 0..{n - 1}")
    return order.astype(np.int64)


def solve(problem: PermDiagProblem, solver="auto", options: Options | None = None,
          budget: Budget | None = None) -> PermDiagResult:
    """Run a registered solver (name or callable) and return a checked :class:`PermDiagResult`."""
    warm_up()
    begin = time.perf_counter()
    options = options or Options()
    budget = budget or Budget.start(options.time_limit)
    spec = lookup(SOLVERS, solver, "permdiag")
    outcome, stopped_by = run_solver(spec, SOLVERS, problem, options, budget)
    R, N = problem.shape
    rows = _check_order(outcome.solution[0], R, "row")
    cols = _check_order(outcome.solution[1], N, "column")
    shifts, kept = kept_energy(problem.energy, problem.p, rows, cols)
    _, identity_kept = best_shifts(problem.energy, problem.p)
    bound, bound_kind = upper_bound(problem), "rows/columns"
    if outcome.bound is not None and outcome.bound < bound:
        bound, bound_kind = float(outcome.bound), outcome.bound_kind or spec.name
    tol = _REL_TOL * max(1.0, bound)
    proven = outcome.proven or kept >= bound - tol
    return PermDiagResult(
        objective=kept, bound=max(bound, kept), bound_kind=bound_kind, status="optimal" if proven else "feasible",
        seconds=time.perf_counter() - begin, solver=spec.name, iterations=outcome.iterations, ops=budget.spent,
        stopped_by=stopped_by, fallback=outcome.fallback, stats=dict(outcome.stats), row_order=rows,
        col_order=cols, shifts=shifts, identity_kept=identity_kept, total=float(problem.energy.sum()))
