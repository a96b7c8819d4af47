"""P2 grouping by simulated annealing over cross-group column swaps.

A move swaps two columns in different groups; its delta needs only the two
touched groups (2 R k reads). Metropolis acceptance under a geometric cooling
schedule whose start temperature is set from the typical worsening of a random
swap; the best order seen is returned, so the answer is never worse than the
start. The number of moves is fixed by the problem size, capped by the work
budget (:mod:`solvers.budget`) so the whole cooling schedule fits the time
limit; random draws come from an explicit xorshift state: same seed, same answer.

Reference: S. Kirkpatrick, C. D. Gelatt, M. P. Vecchi, "Optimization by
Simulated Annealing", Science 220 (1983), doi:10.1126/science.220.4598.671;
used for column permutation by Chen et al., "Tight Compression", DAC 2020.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..budget import Budget
from ..problem import GroupProblem, Outcome
from ..registry import Solver
from ..rng import new_state, rand_unit
from ._kernels import all_group_kept, chunk_steps, prepare, random_cross_pair, replace_kept, tolerance
from .start import from_start

__all__ = ["SOLVER", "anneal", "move_budget"]

# Most moves per kernel call; between calls Python checks the budget and Ctrl-C can land.
_CHUNK = 50_000
# Final temperature as a fraction of the start temperature.
_COOLING = 1e-3
# Random swaps sampled to set the start temperature.
_SAMPLES = 500


def move_budget(problem: GroupProblem) -> int:
    """Default number of moves: enough sweeps of the swap neighbourhood to settle."""
    N = problem.shape[1]
    return int(min(5_000_000, max(200_000, 400 * N * problem.k)))


@njit(cache=True)
def _start_temperature(magT, order, k, n, gvals, samples, rng):
    # Mean worsening of random swaps; accepting it with probability 1/2 at the start.
    N = order.shape[0]
    worse = 0.0
    count = 0
    for _ in range(samples):
        a, b = random_cross_pair(N, k, rng)
        d = (replace_kept(magT, order, k, n, a, order[b]) + replace_kept(magT, order, k, n, b, order[a])
             - gvals[a // k] - gvals[b // k])
        if d < 0:
            worse -= d
            count += 1
    return worse / count / np.log(2.0) if count else 0.0


@njit(cache=True)
def _anneal_chunk(magT, order, k, n, gvals, best_order, best_total, first, last, total_moves,
                  t0, t1, tol, rng):
    """Moves first..last-1 of the schedule; state, best order and best total update in place."""
    N = order.shape[0]
    total = gvals.sum()
    ratio = t1 / t0
    for it in range(first, last):
        temp = t0 * ratio ** (it / total_moves)
        a, b = random_cross_pair(N, k, rng)
        va = replace_kept(magT, order, k, n, a, order[b])
        vb = replace_kept(magT, order, k, n, b, order[a])
        d = va + vb - gvals[a // k] - gvals[b // k]
        if d >= 0 or rand_unit(rng) < np.exp(d / temp):
            tmp = order[a]
            order[a] = order[b]
            order[b] = tmp
            gvals[a // k] = va
            gvals[b // k] = vb
            total += d
            if total > best_total[0] + tol:
                # Resynchronise with the exact sum before recording a best.
                total = gvals.sum()
                if total > best_total[0] + tol:
                    best_total[0] = total
                    best_order[:] = order


def anneal(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget,
           moves: int | None = None) -> Outcome:
    """Anneal from ``order``; the best order seen (never worse than the start)."""
    magT = prepare(problem.magnitude)
    k, n = problem.k, problem.n
    # A move rescores two groups: n + 1 passes over k values in each of R rows, twice.
    move_ops = 2 * (n + 1) * k * magT.shape[1]
    moves = min(move_budget(problem) if moves is None else int(moves), budget.steps_left(move_ops))
    order = order.copy()
    gvals = all_group_kept(magT, order, k, n)
    best_order = order.copy()
    best_total = np.array([gvals.sum()])
    tol = tolerance(magT)
    rng = new_state(seed, 0xBF58476D1CE4E5B9)
    t0 = _start_temperature(magT, order, k, n, gvals, _SAMPLES, rng)
    done = 0
    interrupted = False
    if t0 > 0:
        try:
            step = chunk_steps(move_ops, _CHUNK)
            for first in range(0, moves, step):
                if budget.time_up:
                    break
                last = min(moves, first + step)
                _anneal_chunk(magT, order, k, n, gvals, best_order, best_total, first, last, moves,
                              t0, t0 * _COOLING, tol, rng)
                budget.spend((last - first) * move_ops)
                done = last
        except KeyboardInterrupt:
            interrupted = True
    # the schedule is sized to the budget, so only the clock or Ctrl-C ends it early
    return Outcome(best_order, iterations=done, interrupted=interrupted or (t0 > 0 and done < moves),
                   stats={"method": "simulated annealing", "t0": t0})


SOLVER = Solver("anneal", from_start(anneal), "simulated annealing over cross-group column swaps")
