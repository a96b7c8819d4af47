"""P2 grouping by the NVIDIA Apex ASP channel-permutation strategies, on CPU with Numba.

Three local searches over the column order, all scored incrementally:

- channel swap with escapes: repeatedly apply the best swap of two columns in
  different groups (a replacement table gives every swap's delta in O(1) and
  only the two touched groups' rows are refreshed); at a local optimum apply a
  random cross-group swap ("escape"), a bounded number of times, keeping the best
  order seen;
- tabu swap (a variant of the escapes, after Taillard's robust tabu search):
  always apply the best swap not forbidden by a tabu list, worsening or not;
  a column may not return to the group it just left for a random tenure;
- windowed exhaustive regrouping: for every set of m groups (a window of
  w = m * k columns; Apex's windows 8 and 12 are m = 2, 3 at k = 4) try every
  partition of the window into groups of k and keep the best. A window is
  re-examined only after one of its groups changed; when no window improves, an
  escape swap perturbs the order, a bounded number of times.

Each search stops at its own cap or when its work budget (:mod:`solvers.budget`,
derived from the time limit) is spent, so the same seed gives the same answer;
random draws come from an explicit xorshift state (:mod:`solvers.rng`).

Reference: J. Pool and C. Yu, "Channel Permutations for N:M Sparsity", NeurIPS
2021 (NVIDIA Apex, apex/contrib/sparsity/permutation_search_kernels). This is a
reimplementation of the ideas, not of the code. E. Taillard, "Robust taboo
search for the quadratic assignment problem", Parallel Computing 17 (1991),
doi:10.1016/S0167-8191(05)80147-4.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from numba import njit

from ..budget import Budget
from ..problem import GroupProblem, Outcome
from ..registry import Solver
from ..rng import new_state, rand_below
from ._kernels import (
    all_group_kept, chunk_steps, group_kept, prepare, random_cross_pair, refresh_table_groups,
    replacement_table, swap_positions, tolerance,
)
from .lns import lns
from .start import from_start

__all__ = ["SOLVERS_HERE", "channel_swap", "tabu_swap", "tabu_steps", "swap_ops", "window_search", "window_partitions",
           "partition_count", "window_groups", "MAX_TABLE_COLUMNS"]

# Escape swaps allowed once stuck (Apex's default escape_attempts).
ESCAPES = 100
# Most moves per kernel call; between calls Python charges the work budget and Ctrl-C can land.
_CHUNK = 256
# Pair evaluations the tabu search may spend on neighbourhood scans by default.
_SCAN_BUDGET = 2_000_000_000
# Largest window partition table and window count enumerated in full.
_MAX_PARTITIONS = 20_000
_MAX_WINDOWS = 20_000
# The swap searches keep an N x N float64 table: 128 MB at this size.
MAX_TABLE_COLUMNS = 4096


# ---------------------------------------------------------------- channel swap

@njit(cache=True)
def _best_swap(order, k, gvals, table, tabu, it, total, best_total, tol):
    """Best cross-group swap (gain, a, b) that is not tabu, or improves on the best total.

    tabu[c, g] is the step until which column c may not re-enter group g; all
    zeros means no tabu list (plain Apex channel swap).
    """
    N = order.shape[0]
    best = -np.inf
    best_a = -1
    best_b = -1
    for a in range(N):
        ga = a // k
        ca = order[a]
        for b in range((ga + 1) * k, N):
            gb = b // k
            cb = order[b]
            d = table[a, cb] + table[b, ca] - gvals[ga] - gvals[gb]
            if d > best:
                if (tabu[ca, gb] > it or tabu[cb, ga] > it) and total + d <= best_total + tol:
                    continue
                best = d
                best_a = a
                best_b = b
    return best, best_a, best_b


@njit(cache=True)
def _apply_swap(magT, order, k, n, gvals, table, a, b):
    swap_positions(magT, order, k, n, gvals, a, b)
    refresh_table_groups(magT, order, k, n, table, a // k, b // k)


@njit(cache=True)
def _record_best(order, gvals, best_order, best_total, tol):
    total = gvals.sum()
    if total > best_total[0] + tol:
        best_total[0] = total
        best_order[:] = order
    return total


@njit(cache=True)
def _swap_chunk(magT, order, k, n, gvals, table, no_tabu, best_order, best_total, moves, escapes_left, tol, rng):
    """Up to ``moves`` best-improving or escape swaps; returns (moves done, escapes left).

    ``no_tabu`` is an all-zero (N, G) tabu list: plain channel swap forbids nothing.
    """
    N = order.shape[0]
    done = 0
    while done < moves:
        gain, a, b = _best_swap(order, k, gvals, table, no_tabu, 0, 0.0, 0.0, tol)
        if gain <= tol:
            _record_best(order, gvals, best_order, best_total, tol)
            if escapes_left == 0:
                break
            escapes_left -= 1
            a, b = random_cross_pair(N, k, rng)
        _apply_swap(magT, order, k, n, gvals, table, a, b)
        done += 1
    return done, escapes_left


@njit(cache=True)
def _tabu_chunk(magT, order, k, n, gvals, table, tabu, first, last, tenure_lo, tenure_hi,
                best_order, best_total, tol, rng):
    """Steps first..last-1 of tabu search: always take the best admissible swap, even a worsening one."""
    total = gvals.sum()
    for it in range(first, last):
        gain, a, b = _best_swap(order, k, gvals, table, tabu, it, total, best_total[0], tol)
        if a < 0:
            return it
        ca = order[a]
        cb = order[b]
        _apply_swap(magT, order, k, n, gvals, table, a, b)
        # Forbid each moved column to return to the group it left for a random tenure.
        tabu[ca, a // k] = it + tenure_lo + rand_below(rng, tenure_hi - tenure_lo + 1)
        tabu[cb, b // k] = it + tenure_lo + rand_below(rng, tenure_hi - tenure_lo + 1)
        total = _record_best(order, gvals, best_order, best_total, tol)
    return last


def swap_ops(problem: GroupProblem) -> tuple[float, float]:
    """Operations the swap searches are charged: (building the table, one move).

    The table has N x N entries of O(R) each; a move scans N^2 / 2 pairs and
    refills 2 k table rows of N entries.
    """
    R, N = problem.shape
    return float(N) * N * R, N * N / 2 + 2 * problem.k * N * R


class _SwapState:
    """Order, group values, replacement table and best-so-far shared by the swap searches."""

    def __init__(self, problem: GroupProblem, order: np.ndarray, budget: Budget):
        table_ops, self.move_ops = swap_ops(problem)
        budget.spend(table_ops)
        self.magT = prepare(problem.magnitude)
        self.k, self.n = problem.k, problem.n
        self.order = order.copy()
        self.gvals = all_group_kept(self.magT, self.order, self.k, self.n)
        self.table = replacement_table(self.magT, self.order, self.k, self.n)
        self.best_order = self.order.copy()
        self.best_total = np.array([self.gvals.sum()])
        self.tol = tolerance(self.magT)
        self.chunk = chunk_steps(self.move_ops, _CHUNK)

    def final_best(self) -> np.ndarray:
        """The best order seen, counting the current one (a search can stop between optima)."""
        _record_best(self.order, self.gvals, self.best_order, self.best_total, self.tol)
        return self.best_order


def _table_does_not_fit(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget) -> Outcome | None:
    """LNS's answer, saying why, when the budget cannot pay for the table and one move; else None."""
    table_ops, one_move = swap_ops(problem)
    available = max(budget.ops, 0.0)
    if available >= table_ops + one_move:
        return None
    outcome = lns(problem, order, seed, budget)
    outcome.fallback = (f"the {problem.shape[1]} x {problem.shape[1]} swap table (~{table_ops:.2g} operations) "
                        f"does not fit the budget ({available:.2g}); LNS instead")
    return outcome


def swap_table_fits(problem: GroupProblem) -> str | None:
    """Why the swap searches cannot take ``problem`` (their N x N table), or None."""
    if problem.shape[1] > MAX_TABLE_COLUMNS:
        return (f"swap searches need N <= {MAX_TABLE_COLUMNS} columns (an N x N table), got "
                f"{problem.shape[1]}; use anneal, lns or auto")
    return None


def channel_swap(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget,
                 escapes: int = ESCAPES) -> Outcome:
    """Best-improving cross-group swaps from ``order`` with bounded escapes; never worse than the start."""
    fallback = _table_does_not_fit(problem, order, seed, budget)
    if fallback is not None:
        return fallback
    st = _SwapState(problem, order, budget)
    rng = new_state(seed, 0x5DEECE66D)
    no_tabu = np.zeros((problem.shape[1], problem.num_groups), dtype=np.int64)
    moves, left = 0, escapes
    interrupted = False
    try:
        while not budget.time_up:
            want = min(st.chunk, budget.steps_left(st.move_ops))
            if want == 0:
                budget.use_up()
                break
            done, left = _swap_chunk(st.magT, st.order, st.k, st.n, st.gvals, st.table, no_tabu, st.best_order,
                                     st.best_total, want, left, st.tol, rng)
            budget.spend(done * st.move_ops)
            moves += done
            if done < want:
                break
    except KeyboardInterrupt:
        interrupted = True
    return Outcome(st.final_best(), iterations=moves, interrupted=interrupted,
                   stats={"method": "channel swap", "escapes": escapes - left})


def tabu_steps(problem: GroupProblem) -> int:
    """Default number of tabu steps, fixed by the size so the same seed gives the same answer.

    300 N steps (enough on the Apex instance, N = 64), capped so the O(N^2)
    neighbourhood scans total about 2e9 pair evaluations.
    """
    N = problem.shape[1]
    return int(max(100, min(300 * N, _SCAN_BUDGET // (N * N))))


def tabu_swap(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget,
              steps: int | None = None) -> Outcome:
    """Channel swap whose escapes are tabu moves; returns the best order seen (never worse than the start)."""
    fallback = _table_does_not_fit(problem, order, seed, budget)
    if fallback is not None:
        return fallback
    st = _SwapState(problem, order, budget)
    steps = tabu_steps(problem) if steps is None else int(steps)
    G = problem.num_groups
    # Short tenures did best on the Apex instance (G = 16: 2..6).
    tenure_lo = max(2, G // 8)
    tenure_hi = tenure_lo + 4
    tabu = np.zeros((problem.shape[1], G), dtype=np.int64)
    rng = new_state(seed, 0x2545F4914F6CDD1D)
    done = 0
    interrupted = False
    try:
        while done < steps and not budget.time_up:
            first = done
            last = min(steps, first + st.chunk, first + budget.steps_left(st.move_ops))
            if last == first:
                budget.use_up()
                break
            done = _tabu_chunk(st.magT, st.order, st.k, st.n, st.gvals, st.table, tabu, first, last,
                               tenure_lo, tenure_hi, st.best_order, st.best_total, st.tol, rng)
            budget.spend((done - first) * st.move_ops)
            if done < last:
                break
    except KeyboardInterrupt:
        interrupted = True
    return Outcome(st.final_best(), iterations=done, interrupted=interrupted,
                   stats={"method": "tabu swap", "tenure": (tenure_lo, tenure_hi)})


# ---------------------------------------------------------- windowed regrouping

@functools.lru_cache(maxsize=None)
def window_partitions(k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """All k-subsets of range(m * k) (S, k) and every partition into m of them as subset ids (P, m).

    Partitions are canonical (groups ordered by smallest column), so each appears once.
    """
    w = m * k
    subsets = list(itertools.combinations(range(w), k))
    index = {s: i for i, s in enumerate(subsets)}

    def extend(remaining):
        if not remaining:
            yield []
            return
        first, rest = remaining[0], remaining[1:]
        for others in itertools.combinations(rest, k - 1):
            group = (first,) + others
            left = tuple(c for c in rest if c not in others)
            for tail in extend(left):
                yield [index[group]] + tail

    parts = np.array(list(extend(tuple(range(w)))), dtype=np.int64).reshape(-1, m)
    return np.array(subsets, dtype=np.int64), parts


def partition_count(k: int, m: int) -> int:
    """(m k)! / (k!^m m!): partitions of a window of m groups."""
    return math.factorial(m * k) // (math.factorial(k) ** m * math.factorial(m))


@njit(cache=True)
def _window_pass(magT, order, k, n, gvals, windows, seen, stamp, clock, subsets, parts, tol):
    """Regroup each window optimally; skip windows unchanged since they were last found optimal.

    ``stamp[g]`` is the clock value when group g last changed, ``seen[c]`` the
    clock value when window c was last examined. Returns the new clock and how
    many windows were examined.
    """
    m = windows.shape[1]
    S = subsets.shape[0]
    cols = np.empty(m * k, dtype=np.int64)
    sub = np.empty(k, dtype=np.int64)
    sv = np.empty(S)
    examined = 0
    for c in range(windows.shape[0]):
        fresh = False
        for j in range(m):
            if stamp[windows[c, j]] >= seen[c]:
                fresh = True
        if not fresh:
            continue
        examined += 1
        clock += 1
        seen[c] = clock
        current = 0.0
        for j in range(m):
            g = windows[c, j]
            current += gvals[g]
            for i in range(k):
                cols[j * k + i] = order[g * k + i]
        for s in range(S):
            for i in range(k):
                sub[i] = cols[subsets[s, i]]
            sv[s] = group_kept(magT, sub, n)
        best = current + tol
        best_p = -1
        for p in range(parts.shape[0]):
            v = 0.0
            for j in range(m):
                v += sv[parts[p, j]]
            if v > best:
                best = v
                best_p = p
        if best_p >= 0:
            clock += 1
            for j in range(m):
                g = windows[c, j]
                s = parts[best_p, j]
                for i in range(k):
                    order[g * k + i] = cols[subsets[s, i]]
                gvals[g] = sv[s]
                stamp[g] = clock
            # The window is optimal as just rewritten: mark it seen after its own change.
            clock += 1
            seen[c] = clock
    return clock, examined


def _window_sets(G: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Every m-set of groups, or a fixed random sample when there are too many."""
    if math.comb(G, m) <= _MAX_WINDOWS:
        return np.array(list(itertools.combinations(range(G), m)), dtype=np.int64).reshape(-1, m)
    sample = np.sort(rng.integers(G, size=(_MAX_WINDOWS, m)), axis=1)
    while True:
        repeated = np.flatnonzero((sample[:, 1:] == sample[:, :-1]).any(axis=1))
        if repeated.size == 0:
            return np.ascontiguousarray(sample, dtype=np.int64)
        sample[repeated] = np.sort(rng.integers(G, size=(repeated.size, m)), axis=1)


def window_groups(k: int, m: int, G: int) -> int:
    """The largest window (in groups, <= m and <= G) whose partition table is small enough; 1 if none."""
    m = min(m, G)
    while m >= 2 and partition_count(k, m) > _MAX_PARTITIONS:
        m -= 1
    return m


def window_search(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget, m: int = 2,
                  escapes: int = ESCAPES) -> Outcome:
    """Exhaustive regrouping of m-group windows with bounded escapes; never worse than the start."""
    k, n, G = problem.k, problem.n, problem.num_groups
    used_m = window_groups(k, m, G)
    if used_m < 2:
        outcome = channel_swap(problem, order, seed, budget, escapes)
        outcome.fallback = f"window of {m} groups of {k} too large; used channel swap"
        return outcome
    magT = prepare(problem.magnitude)
    rng = np.random.default_rng(seed)
    subsets, parts = window_partitions(k, used_m)
    windows = _window_sets(G, used_m, rng)
    order = order.copy()
    gvals = all_group_kept(magT, order, k, n)
    best_order, best_total = order.copy(), gvals.sum()
    tol = tolerance(magT)
    seen = np.zeros(len(windows), dtype=np.int64)
    stamp = np.zeros(G, dtype=np.int64)
    clock, passes, left = 0, 0, escapes
    # A window scores every k-subset (n + 1 passes over k values in R rows) and sums every
    # partition (O(m) each).
    window_ops = len(subsets) * (n + 1) * k * problem.shape[0] + parts.size
    step = chunk_steps(window_ops, len(windows))
    interrupted = False
    try:
        while not budget.exhausted:
            before = clock
            lo = 0
            while lo < len(windows) and not budget.exhausted:
                hi = min(len(windows), lo + step, lo + max(1, budget.steps_left(window_ops)))
                clock, examined = _window_pass(magT, order, k, n, gvals, windows[lo:hi],
                                               seen[lo:hi], stamp, clock, subsets, parts, tol)
                # examined windows at full cost, skipped ones at their m stamp checks
                budget.spend(examined * window_ops + (hi - lo) * used_m)
                lo = hi
            passes += 1
            if clock > before:
                continue
            # Nothing left to examine: a local optimum of every window.
            total = gvals.sum()
            if total > best_total + tol:
                best_order, best_total = order.copy(), total
            if left == 0:
                break
            left -= 1
            ga, gb = rng.choice(G, size=2, replace=False)
            a, b = int(ga * k + rng.integers(k)), int(gb * k + rng.integers(k))
            swap_positions(magT, order, k, n, gvals, a, b)
            clock += 1
            stamp[a // k] = stamp[b // k] = clock
    except KeyboardInterrupt:
        interrupted = True
    total = gvals.sum()
    if total > best_total + tol:
        best_order = order.copy()
    return Outcome(best_order, iterations=passes, interrupted=interrupted,
                   stats={"method": f"window of {m} groups", "window_groups": used_m, "windows": len(windows),
                          "escapes": escapes - left})


SOLVERS_HERE = [
    Solver("apex-swap", from_start(channel_swap), "Apex channel swap: best cross-group swaps with escapes",
           requires=swap_table_fits),
    Solver("tabu", from_start(tabu_swap), "tabu search over cross-group swaps (channel swap, tabu escapes)",
           requires=swap_table_fits),
    Solver("apex-window2", from_start(functools.partial(window_search, m=2)),
           "Apex exhaustive regrouping of 2-group windows (w=8 at k=4)"),
    Solver("apex-window3", from_start(functools.partial(window_search, m=3)),
           "Apex exhaustive regrouping of 3-group windows (w=12 at k=4)"),
]
