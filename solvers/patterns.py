"""PCNN pattern selection as cardinality-constrained facility location.

Problem: a layer's kernels (clients) each keep exactly n of their k*k weights,
in one of at most K shared patterns (facilities; a pattern is a set of n
positions).  Assigning kernel c to pattern P keeps the value
``V[c, P] = sum_{p in P} e[c, p]`` with ``e`` the per-weight energy (w^2 or |w|).
Choose at most K patterns from a candidate set to maximise
``f(S) = sum_c max_{P in S} V[c, P]``; every kernel then takes its best chosen
pattern (the argmax, which is exact once S is fixed).

Candidates: the "aggregated candidate masks" are the distinct top-n masks of the
kernels (each kernel's own best pattern, ties to the lower position), with how
many kernels produced each; ``candidates="all"`` uses all C(k*k, n) patterns.

Methods (registry :data:`SOLVERS`):

- ``greedy``: f is monotone submodular with f(empty) = 0 (V >= 0), so adding the
  pattern of largest marginal gain K times reaches at least (1 - 1/e) of the
  optimum (Nemhauser, Wolsey, Fisher 1978).  Lazy evaluation (Minoux 1978)
  keeps stale gains in a max-heap: by submodularity a stale gain is an upper
  bound, so a refreshed gain still on top is the true maximum.  Its bound
  (:func:`upper_bound`) starts from the data-dependent one of the same paper,
  OPT <= f(S) + (sum of the K largest marginal gains w.r.t. S), which is the
  Lagrangian bound with client prices u_c = f_c(S), and improves it by
  subgradient steps on u (Lagrangian relaxation of the assignment constraints,
  Cornuejols, Fisher, Nemhauser 1977).
- ``cpsat``: the exact facility-location model over the candidates: y_P (open),
  x_cP (assign), sum_P x_cP = 1, x_cP <= y_P, sum_P y_P <= K; values scaled to
  integers by rounding *up* (see :func:`_scale`) so CP-SAT's bound divided back
  is a valid bound on the real objective.  The greedy answer is the hint.
- ``frequency``: PCNN's own rule, the K most frequent top-n masks (ties: larger
  total energy, then lower candidate index).  No guarantee; the baseline.

References: J. Tan et al., "PCNN: Pattern-based Fine-Grained Regular Pruning
Towards Optimizing CNN Accelerators", DAC 2020, doi:10.1109/DAC18072.2020.9218498.
G. L. Nemhauser, L. A. Wolsey, M. L. Fisher, "An analysis of approximations for
maximizing submodular set functions", Math. Programming 14 (1978),
doi:10.1007/BF01588971.  M. Minoux, "Accelerated greedy algorithms for
maximizing submodular set functions", LNCIS 7 (1978), doi:10.1007/BFb0006528.
G. Cornuejols, M. L. Fisher, G. L. Nemhauser, "Location of bank accounts to
optimize float", Management Science 23 (1977), doi:10.1287/mnsc.23.8.789.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from .budget import Budget
from .problem import Options, Outcome, ProblemError, _check_int
from .registry import Solver, lookup
from .result import Result
from .run import run_solver

__all__ = [
    "PatternProblem",
    "PatternResult",
    "SOLVERS",
    "top_n_masks",
    "coverage",
    "assign",
    "select_patterns",
    "brute_force",
    "upper_bound",
]

# Subgradient steps of the Lagrangian bound: cheap (each is one pass over V) and enough
# to close most of the distance to the LP bound on PCNN-sized instances.
_DUAL_STEPS = 100

# Integer objective resolution for CP-SAT: the largest client value maps to this.
_SCALE_TOP = 10**6


def top_n_masks(energy: np.ndarray, n: int) -> np.ndarray:
    """Each row's n largest entries as a bool mask (ties: the lower position)."""
    order = np.argsort(-energy, axis=1, kind="stable")[:, :n]
    mask = np.zeros(energy.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


@dataclass(frozen=True, eq=False)
class PatternProblem:
    """Validated instance: energies (C, k2), n, K, candidates (P, k2) bool and the values V (C, P)."""

    energy: np.ndarray
    n: int
    K: int
    candidates: np.ndarray
    counts: np.ndarray       # kernels whose own top-n mask is each candidate
    values: np.ndarray       # V[c, P] = kept energy of kernel c on candidate P

    @classmethod
    def build(cls, energy, n: int, K: int, candidates: str = "topn") -> "PatternProblem":
        e = np.asarray(energy)
        if e.ndim != 2 or e.size == 0:
            raise ProblemError(f"energy: expected a non-empty 2-D (kernels, k*k) array, got shape {e.shape}")
        if not np.issubdtype(e.dtype, np.number) or np.iscomplexobj(e):
            raise ProblemError(f"energy: expected real numbers, got dtype {e.dtype}")
        e = np.ascontiguousarray(e, dtype=np.float64)
        if not np.all(np.isfinite(e)) or np.any(e < 0):
            raise ProblemError("energy: entries must be finite and >= 0")
        k2 = e.shape[1]
        n = _check_int(n, "n", 1)
        if n > k2:
            raise ProblemError(f"Expected n <= k*k = {k2}, got n={n}")
        K = _check_int(K, "K", 1)
        own = top_n_masks(e, n)
        if candidates == "topn":
            cand, counts = np.unique(own, axis=0, return_counts=True)
        elif candidates == "all":
            cand = np.zeros((math.comb(k2, n), k2), dtype=bool)
            for r, pos in enumerate(itertools.combinations(range(k2), n)):
                cand[r, list(pos)] = True
            counts = (own[:, None, :] == cand[None, :, :]).all(axis=2).sum(axis=0)
        else:
            raise ProblemError(f"unknown candidates {candidates!r}; allowed: all, topn")
        cand = np.ascontiguousarray(cand)
        values = np.ascontiguousarray(e @ cand.T.astype(np.float64))
        return cls(e, n, K, cand, np.asarray(counts, dtype=np.int64), values)


@dataclass(kw_only=True)
class PatternResult(Result):
    """A pattern selection: chosen patterns, each kernel's pattern; ``objective`` the kept energy,
    ``bound`` an upper bound on the optimum over the candidates."""

    patterns: np.ndarray     # (K', k2) bool, K' <= K
    assignment: np.ndarray   # (C,) int64 row of ``patterns`` per kernel
    sense: str = "max"

    @property
    def value(self) -> float:
        return float(self.objective)

    def _row_extras(self) -> dict:
        return {"patterns": int(self.patterns.shape[0])}


def coverage(values: np.ndarray, chosen) -> float:
    """f(S): every client's best value among the chosen facilities (0 for S empty)."""
    chosen = np.asarray(chosen, dtype=np.int64)
    if chosen.size == 0:
        return 0.0
    return float(values[:, chosen].max(axis=1).sum())


def assign(values: np.ndarray, chosen) -> np.ndarray:
    """Each client's best chosen facility, as a position in ``chosen`` (ties: the first)."""
    return np.argmax(values[:, np.asarray(chosen, dtype=np.int64)], axis=1).astype(np.int64)


def _gains(values: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.maximum(values - current[:, None], 0.0).sum(axis=0)


def _dual(values: np.ndarray, u: np.ndarray, K: int) -> tuple[float, np.ndarray]:
    """Lagrangian bound L(u) and a subgradient, assignment constraints relaxed with prices u."""
    excess = values - u[:, None]
    gains = np.maximum(excess, 0.0).sum(axis=0)
    top = np.argsort(-gains, kind="stable")[:K]
    subgradient = 1.0 - (excess[:, top] > 0).sum(axis=1)
    return float(u.sum() + gains[top].sum()), subgradient


def upper_bound(values: np.ndarray, chosen, K: int, iterations: int = _DUAL_STEPS) -> float:
    """A bound on the optimum from any answer ``chosen``: the best Lagrangian value found.

    Relaxing "each client takes one pattern" with a price u_c per client gives
    L(u) = sum_c u_c + (sum of the K largest sum_c max(0, V[c, P] - u_c)) >= OPT for
    every u.  Started at u = each client's value under ``chosen`` it is the
    Nemhauser-Wolsey-Fisher online bound; Polyak subgradient steps toward the
    value of ``chosen`` then tighten it toward the LP bound.  Also never above
    sum_c max_P V[c, P] (u = the row maxima).
    """
    chosen = np.asarray(chosen, dtype=np.int64)
    u = values[:, chosen].max(axis=1) if chosen.size else np.zeros(values.shape[0])
    target = float(u.sum()) if chosen.size else 0.0
    best = float(values.max(axis=1).sum())
    step, stall = 1.0, 0
    for _ in range(iterations):
        bound, sub = _dual(values, u, K)
        if bound < best - 1e-12:
            best, stall = bound, 0
        else:
            stall += 1
            if stall >= 10:
                step, stall = step / 2, 0
        norm = float(sub @ sub)
        if norm == 0 or best - target <= 1e-12 * max(abs(best), 1.0):
            break
        u = u - step * (bound - target) / norm * sub
    return best


def greedy(problem: PatternProblem, options: Options, budget: Budget) -> Outcome:
    """Lazy greedy: (1 - 1/e)-approximate, with the submodular online bound."""
    V = problem.values
    current = np.zeros(V.shape[0])
    # Heap of (-gain, index, round the gain was computed); the index breaks ties.
    heap = [(-g, p, 0) for p, g in enumerate(_gains(V, current))]
    heapq.heapify(heap)
    chosen, evaluations = [], V.shape[1]
    while heap and len(chosen) < problem.K:
        neg, p, stamp = heapq.heappop(heap)
        if stamp == len(chosen):
            if -neg <= 0 and chosen:
                break  # nothing left to gain; more patterns only cost index bits
            chosen.append(p)
            current = np.maximum(current, V[:, p])
            continue
        gain = float(np.maximum(V[:, p] - current, 0.0).sum())
        evaluations += 1
        heapq.heappush(heap, (-gain, p, len(chosen)))
    chosen = np.asarray(chosen, dtype=np.int64)
    return Outcome(chosen, upper_bound(V, chosen, problem.K), bound_kind="lagrangian",
                   iterations=evaluations)


def frequency(problem: PatternProblem, options: Options, budget: Budget) -> Outcome:
    """PCNN's rule: the K candidates that are most often some kernel's own top-n mask."""
    totals = problem.values.sum(axis=0)
    order = np.lexsort((np.arange(totals.size), -totals, -problem.counts))
    chosen = order[:problem.K]
    # Patterns no kernel prefers (possible with candidates="all") are never counted in.
    chosen = np.asarray(chosen[problem.counts[chosen] > 0], dtype=np.int64)
    return Outcome(chosen, upper_bound(problem.values, chosen, problem.K), bound_kind="lagrangian")


def _scale(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer values for CP-SAT, rounded up so the scaled optimum bounds the real one."""
    top = float(values.max())
    factor = _SCALE_TOP / top if top > 0 else 1.0
    return np.ceil(values * factor).astype(np.int64), factor


def build_model(problem: PatternProblem, hint=None):
    """The facility-location CP-SAT model -> (model, open vars, assign vars, scale factor)."""
    from ortools.sat.python import cp_model

    V, factor = _scale(problem.values)
    C, P = V.shape
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{p}") for p in range(P)]
    x = [[model.new_bool_var(f"x{c}_{p}") for p in range(P)] for c in range(C)]
    for c in range(C):
        model.add_exactly_one(x[c])
        for p in range(P):
            model.add_implication(x[c][p], y[p])
    model.add(sum(y) <= problem.K)
    model.maximize(sum(int(V[c, p]) * x[c][p] for c in range(C) for p in range(P) if V[c, p]))
    if hint is not None:
        hint = np.asarray(hint, dtype=np.int64)
        best = hint[assign(problem.values, hint)]
        for p in range(P):
            model.add_hint(y[p], bool(np.any(hint == p)))
        for c in range(C):
            for p in range(P):
                model.add_hint(x[c][p], bool(best[c] == p))
    return model, y, x, factor


def cpsat(problem: PatternProblem, options: Options, budget: Budget) -> Outcome:
    """Exact facility location over the candidates with CP-SAT, hinted with greedy."""
    from ortools.sat.python import cp_model

    start = greedy(problem, options, budget)
    model, y, _, factor = build_model(problem, start.solution)
    solver = budget.cpsat_solver(options.seed, options.workers)
    solver.parameters.linearization_level = 2  # the facility-location LP relaxation is strong
    code = solver.solve(model)
    budget.spend_cpsat(solver)
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = np.flatnonzero([solver.value(v) for v in y]).astype(np.int64)
        bound = min(solver.best_objective_bound / factor, start.bound)
        proven = code == cp_model.OPTIMAL
    elif code == cp_model.UNKNOWN:  # time out before any solution: fall back to the hint
        chosen, bound, proven = start.solution, start.bound, False
    else:  # the model always has a solution (any single pattern), so this is a bug
        raise RuntimeError(f"CP-SAT returned {solver.status_name(code)} on a feasible model")
    if coverage(problem.values, start.solution) > coverage(problem.values, chosen):
        chosen = start.solution  # integer rounding can rank two near-equal answers the other way
    return Outcome(chosen, bound, proven, bound_kind="cpsat",
                   stats={"cpsat_status": solver.status_name(code), "branches": solver.num_branches})


SOLVERS = {
    "greedy": Solver("greedy", greedy, "lazy greedy, (1 - 1/e) guarantee and online bound"),
    "cpsat": Solver("cpsat", cpsat, "exact CP-SAT facility location over the candidates", exact=True),
    "frequency": Solver("frequency", frequency, "PCNN's rule: the K most frequent top-n masks"),
}


def select_patterns(energy, n: int, K: int, solver="greedy", candidates: str = "topn",
                    options: Options | None = None) -> PatternResult:
    """Choose at most K patterns of n positions for the kernels' energies (C, k*k).

    Parameters
    ----------
    energy : (C, k*k) non-negative array (w^2 or |w| per kernel position).
    n, K : kept weights per kernel (1 <= n <= k*k) and the number of patterns (>= 1).
    solver : a name in :data:`SOLVERS` or a callable ``(problem, options, budget) -> Outcome``.
    candidates : "topn" (distinct top-n masks) or "all" (every n-subset).

    Raises
    ------
    ProblemError
        Bad energies, n, K, candidates or solver name.

    Examples
    --------
    >>> e = np.array([[3., 2, 0, 0], [0, 0, 2, 3], [3, 0, 2, 0]])
    >>> r = select_patterns(e, n=2, K=2)
    >>> r.value, r.status, r.assignment.tolist()
    (13.0, 'feasible', [1, 0, 1])
    """
    begin = time.perf_counter()
    spec = lookup(SOLVERS, solver, "pattern")
    options = options or Options()
    budget = Budget.start(options.time_limit)
    problem = PatternProblem.build(energy, n, K, candidates)
    if problem.candidates.shape[0] <= problem.K:
        outcome, stopped_by = Outcome(np.arange(problem.candidates.shape[0], dtype=np.int64),
                                      float(problem.values.max(axis=1).sum()), True, bound_kind="all"), "done"
    else:
        outcome, stopped_by = run_solver(spec, SOLVERS, problem, options, budget)
    chosen = np.unique(np.asarray(outcome.solution, dtype=np.int64))
    if chosen.size == 0 or chosen.size > problem.K or chosen.min() < 0 \
            or chosen.max() >= problem.candidates.shape[0]:
        raise ProblemError(f"solver {spec.name} chose an invalid pattern set {chosen.tolist()}")
    value = coverage(problem.values, chosen)
    bound = outcome.bound if outcome.bound is not None else (value if outcome.proven else math.inf)
    return PatternResult(
        objective=value, bound=max(bound, value), bound_kind=outcome.bound_kind or "",
        status="optimal" if outcome.proven else "feasible", seconds=time.perf_counter() - begin,
        solver=spec.name, iterations=outcome.iterations, ops=budget.spent, stopped_by=stopped_by,
        fallback=outcome.fallback, stats=dict(outcome.stats, candidates=int(problem.candidates.shape[0])),
        patterns=problem.candidates[chosen], assignment=assign(problem.values, chosen))


def brute_force(energy, n: int, K: int, candidates: str = "topn") -> float:
    """The optimum over the candidates by trying every K-subset (a test reference)."""
    problem = PatternProblem.build(energy, n, K, candidates)
    P = problem.candidates.shape[0]
    return max(coverage(problem.values, S)
               for S in itertools.combinations(range(P), min(problem.K, P)))
