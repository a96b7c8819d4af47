"""P1 by simulated annealing over column moves and swaps (the Tight Compression method).

Problem: partition the nonempty columns into as few groups as possible, each
of at most alpha columns and at most floor(gamma * R) conflicts.

Method: from a feasible answer with G groups, remove the smallest group (its
columns go where they add the least excess) and anneal the total excess, sum
over groups of max(0, conflicts - budget) + max(0, size - alpha), at G - 1
groups. A step either moves one column (drawn preferably from a violating
group) to a random other group, or swaps two columns of different groups
(which keeps group sizes, useful when alpha is tight); it is accepted by the
Metropolis rule at a temperature falling geometrically from ``t_start`` to
``t_end`` over the attempt's iteration cap. Zero excess gives a feasible
answer with one group fewer and the next group is removed; the search stops at
the lower bound, when an attempt exhausts its cap, or when its work budget is
spent (the removal loop is shared with tabu search: :mod:`.removal`). Each step is
evaluated by O(nnz of the moved columns) deltas on the shared per-group row
counts (:mod:`._kernels`).

Reference: the column-permutation annealing of Tight Compression: X. Chen,
J. Zhu, J. Jiang, C.-Y. Tsui, "Tight Compression: Compressing CNN Model Tightly
Through Unstructured Pruning and Simulated Annealing Based Permutation",
DAC 2020, doi:10.1109/DAC18072.2020.9218701.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from ..budget import Budget
from ..problem import CombineProblem, Options, Outcome, ProblemError, check_param_types
from ..registry import Solver
from ..rng import rand_below, rand_unit
from ._kernels import add_column, add_delta, excess, remove_column, remove_delta
from .reduce import start_labels
from .removal import remove_groups, run_repair

__all__ = ["AnnealParams", "anneal", "anneal_steps", "SOLVER"]


@dataclass(frozen=True)
class AnnealParams:
    """Schedule per removal attempt; the cap is base + per_column * columns (deterministic)."""

    base_iters: int = 200_000
    per_column: int = 2_000
    t_start: float = 0.4
    t_end: float = 0.02
    swap_prob: float = 0.3
    chunk: int = 50_000   # most iterations between wall-clock checks (answers do not depend on it)

    def __post_init__(self):
        check_param_types(self)
        if self.base_iters < 0 or self.per_column < 0 or self.chunk < 1:
            raise ProblemError(f"Expected base_iters, per_column >= 0 and chunk >= 1, got {self}")
        if not 0 < self.t_end <= self.t_start:
            raise ProblemError(f"Expected 0 < t_end <= t_start, got {self.t_end}, {self.t_start}")
        if not 0 <= self.swap_prob <= 1:
            raise ProblemError(f"Expected 0 <= swap_prob <= 1, got {self.swap_prob}")


@njit(cache=True)
def _move_delta(j, b, labels, counts, conflicts, sizes, col_ptr, col_rows, alpha, budget):
    """Change of total excess if column j moves to group b (state untouched)."""
    a = labels[j]
    return (excess(conflicts[a] - remove_delta(counts, a, col_ptr, col_rows, j), sizes[a] - 1, alpha, budget)
            - excess(conflicts[a], sizes[a], alpha, budget)
            + excess(conflicts[b] + add_delta(counts, b, col_ptr, col_rows, j), sizes[b] + 1, alpha, budget)
            - excess(conflicts[b], sizes[b], alpha, budget))


@njit(cache=True)
def _apply(j, b, labels, counts, conflicts, sizes, col_ptr, col_rows):
    remove_column(counts, conflicts, sizes, labels[j], col_ptr, col_rows, j)
    add_column(counts, conflicts, sizes, b, col_ptr, col_rows, j)
    labels[j] = b


@njit(cache=True)
def _pick_column(labels, conflicts, sizes, alpha, budget, rng):
    """A random column, retried a few times to land in a violating group."""
    n = labels.shape[0]
    j = rand_below(rng, n)
    for _ in range(8):
        if excess(conflicts[labels[j]], sizes[labels[j]], alpha, budget) > 0:
            break
        j = rand_below(rng, n)
    return j


@njit(cache=True)
def anneal_steps(labels, counts, conflicts, sizes, G, col_ptr, col_rows, alpha, budget, it0, steps,
                 cap, t_start, t_end, swap_prob, total, rng, work_left):
    """Run up to ``steps`` annealing steps from ``it0`` (of ``cap``), stopping once they have cost
    ``work_left`` operations; return (next it, excess, operations)."""
    n = labels.shape[0]
    it = it0
    work = 0.0
    ratio = t_end / t_start
    while it < it0 + steps and total > 0 and work < work_left:
        temp = t_start * ratio ** (it / cap)
        j = _pick_column(labels, conflicts, sizes, alpha, budget, rng)
        a = labels[j]
        b = rand_below(rng, G - 1)
        if b >= a:
            b += 1
        d = _move_delta(j, b, labels, counts, conflicts, sizes, col_ptr, col_rows, alpha, budget)
        # the column pick, then the moved columns' rows, read twice each (3 operations a read)
        work += 96 + 12 * (col_ptr[j + 1] - col_ptr[j])
        partner = -1
        if rand_unit(rng) < swap_prob:
            # Swap: j goes to b and a random column of b comes back to a.
            start = rand_below(rng, n)
            for s in range(n):
                k = (start + s) % n
                if labels[k] == b:
                    partner = k
                    break
            work += 3 * (s + 1)
        if partner >= 0:
            work += 12 * (col_ptr[partner + 1] - col_ptr[partner])
            _apply(j, b, labels, counts, conflicts, sizes, col_ptr, col_rows)
            d += _move_delta(partner, a, labels, counts, conflicts, sizes, col_ptr, col_rows, alpha, budget)
            _apply(partner, a, labels, counts, conflicts, sizes, col_ptr, col_rows)
        if d <= 0 or rand_unit(rng) < math.exp(-d / temp):
            if partner < 0:
                _apply(j, b, labels, counts, conflicts, sizes, col_ptr, col_rows)
            total += d
        elif partner >= 0:
            _apply(partner, b, labels, counts, conflicts, sizes, col_ptr, col_rows)
            _apply(j, a, labels, counts, conflicts, sizes, col_ptr, col_rows)
        it += 1
    return it, total, work


def anneal(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    """Improve a feasible labelling (options.hint, else the best fast heuristic) by annealing."""
    params = options.params_for("anneal", AnnealParams)
    labels0 = start_labels(problem, options, budget)
    alpha, conflict_budget = problem.alpha, problem.budget
    cap = params.base_iters + params.per_column * int(problem.nonempty.size)

    def repair(labels, counts, conflicts, sizes, G, csr, rng, budget):
        col_ptr, col_rows = csr[0], csr[1]
        total = int(sum(excess(c, s, alpha, conflict_budget) for c, s in zip(conflicts[:G], sizes[:G])))
        if total == 0:
            return True, 0

        def step(it, n, ops_left):
            nonlocal total
            it, total, ops = anneal_steps(labels, counts, conflicts, sizes, G, col_ptr, col_rows, alpha,
                                          conflict_budget, it, n, cap, params.t_start, params.t_end,
                                          params.swap_prob, total, rng, ops_left)
            return it, total, ops

        return run_repair(step, cap, params.chunk, budget)

    return remove_groups(problem, options, labels0, repair, seed_salt=0xD1B54A32D192ED03, budget=budget)


SOLVER = Solver("anneal", anneal, "simulated annealing over column moves and swaps (Tight Compression)",
                params=AnnealParams)
