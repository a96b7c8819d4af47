"""Multiple-choice knapsack, solved exactly by dynamic programming over the budget.

Problem: G groups, group g holds items with integer cost c[g][i] >= 0 and real
value v[g][i]; pick exactly one item from every group so that the total cost is
at most ``budget`` and the total value is maximal.  It chooses PCNN's kept
weights per layer under a model-wide budget and PENNI's nonzero coefficients per
kernel under a layer budget.

Method: the textbook DP.  ``best[b]`` is the largest value of the groups seen so
far with total cost at most b; adding group g gives
``best'[b] = max_i best[b - c[g][i]] + v[g][i]`` (over items with c <= b), and
the argmax is stored per (group, b) so the choice is read back from b = budget.
All costs and the budget are first divided by the gcd of the costs (PCNN costs
are multiples of O * I), and the budget is capped at the largest reachable
total, so the table is as small as the instance allows.  Ties go to the lowest
item index, so the answer is deterministic.

Complexity: O(B' * sum_g |items_g|) time and O(G * B') bytes of choice table,
with B' the reduced budget.

Reference: H. Kellerer, U. Pferschy, D. Pisinger, "Knapsack Problems",
Springer 2004, chapter 11 (the multiple-choice knapsack problem),
doi:10.1007/978-3-540-24777-7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .problem import ProblemError

__all__ = ["KnapsackResult", "solve", "brute_force"]


@dataclass(frozen=True)
class KnapsackResult:
    """The chosen item per group, the total value and the total cost (always optimal)."""

    choice: np.ndarray   # (G,) int64 item index per group
    value: float
    cost: int


@njit(cache=True)
def _dp(offsets, costs, values, budget):
    # choice[g, b]: item picked for group g when groups 0..g may spend at most b.
    G = offsets.shape[0] - 1
    best = np.zeros(budget + 1)
    choice = np.zeros((G, budget + 1), dtype=np.uint16)
    new = np.empty(budget + 1)
    for g in range(G):
        for b in range(budget + 1):
            new[b] = -np.inf
        for i in range(offsets[g], offsets[g + 1]):
            c = costs[i]
            v = values[i]
            for b in range(c, budget + 1):
                cand = best[b - c] + v
                if cand > new[b]:
                    new[b] = cand
                    choice[g, b] = i - offsets[g]
        for b in range(budget + 1):
            best[b] = new[b]
    return best, choice


def _flatten(costs, values):
    if len(costs) != len(values):
        raise ProblemError(f"costs has {len(costs)} groups but values has {len(values)}")
    if len(costs) == 0:
        raise ProblemError("expected at least one group, got none")
    flat_c, flat_v, offsets = [], [], [0]
    for g, (c, v) in enumerate(zip(costs, values)):
        c = np.asarray(c)
        v = np.asarray(v, dtype=np.float64)
        if c.ndim != 1 or c.shape != v.shape or c.size == 0:
            raise ProblemError(f"group {g}: expected equal-length non-empty 1-D costs and values, "
                               f"got shapes {c.shape} and {v.shape}")
        if c.size > np.iinfo(np.uint16).max:
            raise ProblemError(f"group {g}: {c.size} items, at most 65535 allowed")
        if not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
            raise ProblemError(f"group {g}: costs must be non-negative integers")
        if not np.all(np.isfinite(v)):
            raise ProblemError(f"group {g}: values must be finite")
        flat_c.append(c.astype(np.int64))
        flat_v.append(v)
        offsets.append(offsets[-1] + c.size)
    return np.concatenate(flat_c), np.concatenate(flat_v), np.asarray(offsets, dtype=np.int64)


def solve(costs, values, budget: int) -> KnapsackResult:
    """Pick one item per group, total cost <= budget, maximum total value.

    Parameters
    ----------
    costs, values : sequences of G 1-D arrays (integer costs >= 0, finite values).
    budget : int >= 0.

    Raises
    ------
    ProblemError
        Bad shapes or types, or no selection fits the budget.

    Examples
    --------
    >>> r = solve([[1, 2], [1, 3]], [[1.0, 3.0], [1.0, 4.0]], budget=4)
    >>> r.choice.tolist(), r.value, r.cost
    ([0, 1], 5.0, 4)
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ProblemError(f"Expected an integer budget >= 0, got {budget!r}")
    flat_c, flat_v, offsets = _flatten(costs, values)
    groups = offsets.size - 1
    lows = np.minimum.reduceat(flat_c, offsets[:-1])
    if int(lows.sum()) > budget:
        raise ProblemError(f"budget {budget} is below the cheapest selection, {int(lows.sum())}")
    unit = math.gcd(*flat_c.tolist()) or 1
    highs = np.maximum.reduceat(flat_c, offsets[:-1])
    cap = min(int(budget) // unit, int(highs.sum()) // unit)
    best, choice = _dp(np.ascontiguousarray(offsets), np.ascontiguousarray(flat_c // unit),
                       np.ascontiguousarray(flat_v), cap)
    picks = np.empty(groups, dtype=np.int64)
    b = cap
    for g in range(groups - 1, -1, -1):
        picks[g] = choice[g, b]
        b -= int(flat_c[offsets[g] + picks[g]] // unit)
    chosen = offsets[:-1] + picks
    return KnapsackResult(picks, float(flat_v[chosen].sum()), int(flat_c[chosen].sum()))


def brute_force(costs, values, budget: int) -> KnapsackResult:
    """The same answer by trying every selection (a test reference; tiny instances only)."""
    import itertools

    best = None
    for picks in itertools.product(*[range(len(c)) for c in costs]):
        cost = sum(int(costs[g][i]) for g, i in enumerate(picks))
        if cost > budget:
            continue
        value = float(sum(values[g][i] for g, i in enumerate(picks)))
        if best is None or value > best.value:
            best = KnapsackResult(np.asarray(picks, dtype=np.int64), value, cost)
    if best is None:
        raise ProblemError(f"budget {budget} is below the cheapest selection")
    return best
