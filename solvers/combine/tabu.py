"""P1 by tabu search that removes one group at a time (TabuCol style).

Problem: partition the nonempty columns into as few groups as possible, each
of at most alpha columns and at most floor(gamma * R) conflicts.

Method: start from a feasible answer with G groups. Remove one group (the
smallest), giving each of its columns to the group where it adds the least
excess; then minimise the excess, sum over groups of max(0, conflicts - budget)
+ max(0, size - alpha), by moving one column of a violating group at a time to
the best other group. A column may not return to a group it left for a random
tenure of 0..9 plus 0.6 times the number of columns in violating groups, unless
the move reaches a new best excess (aspiration). Reaching zero excess gives a
feasible answer with G - 1 groups and the search repeats; it stops at the lower
bound, at an iteration cap derived from the instance size, or when its work
budget is spent (the removal loop is shared with annealing: :mod:`.removal`).
An iteration costs a scan of the columns plus, for each column in a violating
group, a look at every group, each about 3 operations: 3 (n + bad * G), plus
the rows the move refreshes.

Move evaluation is O(1): ``hits[j, g]``, the rows of column j where group g
already has another nonzero, is built row by row (sum over rows of nnz x
groups present, charged to the budget; an attempt the budget cannot pay for
is not started) and kept up to date after each move in O(sum of the moved
column's row lengths).

References: A. Hertz, D. de Werra, "Using tabu search techniques for graph
coloring", Computing 39, 1987, doi:10.1007/BF02239976; P. Galinier, J.-K. Hao,
"Hybrid evolutionary algorithms for graph coloring", J. Comb. Optim. 3, 1999,
doi:10.1023/A:1009823419804.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..budget import Budget
from ..problem import CombineProblem, Options, Outcome, ProblemError, check_param_types
from ..registry import Solver
from ..rng import rand_below
from ._kernels import add_column, excess, remove_column
from .reduce import start_labels
from .removal import remove_groups, run_repair

__all__ = ["TabuParams", "tabu", "tabu_steps", "SOLVER"]

# hits (int32) and the tabu tenures (int64) are (n, G) tables; beyond this many cells
# (~120 MB) tabu declines the instance.
MAX_TABLE_CELLS = 10_000_000


@dataclass(frozen=True)
class TabuParams:
    """Iteration cap per removal attempt = base + per_column * columns (deterministic, not timed)."""

    base_iters: int = 20_000
    per_column: int = 200
    chunk: int = 2_000   # most iterations between wall-clock checks (answers do not depend on it)

    def __post_init__(self):
        check_param_types(self)
        for name in ("base_iters", "per_column", "chunk"):
            if getattr(self, name) < (1 if name == "chunk" else 0):
                raise ProblemError(f"Expected TabuParams.{name} >= {1 if name == 'chunk' else 0}, "
                                   f"got {getattr(self, name)}")


@njit(cache=True)
def _fill_hits(labels, counts, row_ptr, row_cols, hits):
    """hits[j, g] = rows of j where group g has another nonzero (hits zero on entry); returns the operations.

    Row by row: each column of the row is credited every distinct group present
    there, so the cost is sum_r nnz_r x (groups in row r), not columns x groups x nnz.
    """
    G = hits.shape[1]
    stamp = np.full(G, -1, dtype=np.int64)
    present = np.empty(G, dtype=np.int64)
    ops = 0
    for r in range(row_ptr.shape[0] - 1):
        k = 0
        for q in range(row_ptr[r], row_ptr[r + 1]):
            g = labels[row_cols[q]]
            if stamp[g] != r:
                stamp[g] = r
                present[k] = g
                k += 1
        for q in range(row_ptr[r], row_ptr[r + 1]):
            j = row_cols[q]
            a = labels[j]
            for t in range(k):
                g = present[t]
                if counts[g, r] - (1 if g == a else 0) > 0:
                    hits[j, g] += 1
        ops += (row_ptr[r + 1] - row_ptr[r]) * (k + 1)
    return ops


@njit(cache=True)
def _move(j, b, labels, counts, conflicts, sizes, hits, col_ptr, col_rows, row_ptr, row_cols):
    """Move column j to group b and refresh hits for the rows it touches."""
    a = labels[j]
    remove_column(counts, conflicts, sizes, a, col_ptr, col_rows, j)
    add_column(counts, conflicts, sizes, b, col_ptr, col_rows, j)
    labels[j] = b
    for p in range(col_ptr[j], col_ptr[j + 1]):
        r = col_rows[p]
        ca = counts[a, r]
        cb = counts[b, r]
        if ca > 1 and cb > 2:
            continue  # every other column's "has a partner here" is unchanged
        for q in range(row_ptr[r], row_ptr[r + 1]):
            i = row_cols[q]
            if i == j:
                continue
            li = labels[i]
            # Seen from i, group a lost one nonzero in row r: hits drop when it loses the last other one.
            if (ca == 1 and li == a) or (ca == 0 and li != a):
                hits[i, a] -= 1
            if (cb == 2 and li == b) or (cb == 1 and li != b):
                hits[i, b] += 1


@njit(cache=True)
def _total_excess(conflicts, sizes, G, alpha, budget):
    t = 0
    for g in range(G):
        t += excess(conflicts[g], sizes[g], alpha, budget)
    return t


@njit(cache=True)
def tabu_steps(labels, counts, conflicts, sizes, hits, tabu, G, col_ptr, col_rows, row_ptr,
               row_cols, alpha, budget, it0, steps, best_seen, rng, work_left):
    """Run up to ``steps`` tabu iterations from iteration ``it0``, stopping once they have cost
    ``work_left`` operations; return (next iteration, excess, operations).

    Resumable: all search state lives in the arrays; ``best_seen[0]`` is the
    attempt's best excess (for aspiration).
    """
    n = labels.shape[0]
    total = _total_excess(conflicts, sizes, G, alpha, budget)
    it = it0
    work = 0.0
    while it < it0 + steps and total > 0 and work < work_left:
        best_d = 1 << 62
        bj, bb, ties, bad = -1, -1, 0, 0
        for j in range(n):
            a = labels[j]
            ea = excess(conflicts[a], sizes[a], alpha, budget)
            if ea == 0:
                continue
            bad += 1
            leave = excess(conflicts[a] - hits[j, a], sizes[a] - 1, alpha, budget) - ea
            for b in range(G):
                if b == a:
                    continue
                d = leave + excess(conflicts[b] + hits[j, b], sizes[b] + 1, alpha, budget) \
                    - excess(conflicts[b], sizes[b], alpha, budget)
                if tabu[j, b] > it and total + d >= best_seen[0]:
                    continue
                if d < best_d:
                    best_d, bj, bb, ties = d, j, b, 1
                elif d == best_d:
                    ties += 1
                    if rand_below(rng, ties) == 0:
                        bj, bb = j, b
        if bj >= 0:
            a = labels[bj]
            # the move refreshes hits along every row of the moved column
            for p in range(col_ptr[bj], col_ptr[bj + 1]):
                r = col_rows[p]
                work += 3 * (row_ptr[r + 1] - row_ptr[r])
            _move(bj, bb, labels, counts, conflicts, sizes, hits, col_ptr, col_rows, row_ptr, row_cols)
            tabu[bj, a] = it + 1 + rand_below(rng, 10) + np.int64(0.6 * bad)
            total += best_d
            if total < best_seen[0]:
                best_seen[0] = total
        work += 3 * (n + bad * G)
        it += 1
    return it, total, work


def tabu(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    """Improve a feasible labelling (options.hint, else the best fast heuristic) by group removal."""
    params = options.params_for("tabu", TabuParams)
    labels0 = start_labels(problem, options, budget)
    keep, (_, _, row_ptr, row_cols) = problem.incidence
    G = int(labels0.max()) + 1
    if keep.size * G > MAX_TABLE_CELLS:
        reason = f"{keep.size} columns x {G} groups exceeds the tabu table limit"
        return Outcome(labels0, fallback=reason, stats={"start_groups": G})
    cap = params.base_iters + params.per_column * keep.size

    def repair(labels, counts, conflicts, sizes, G, csr, rng, budget):
        col_ptr, col_rows = csr[0], csr[1]
        row_nnz = np.diff(row_ptr)
        if float(np.sum(row_nnz * (np.minimum(row_nnz, G) + 1))) > budget.ops:
            return False, 0          # the budget cannot pay for the move table
        hits = np.zeros((labels.size, G), dtype=np.int32)
        budget.spend(_fill_hits(labels, counts, row_ptr, row_cols, hits))
        tabu_until = np.zeros((labels.size, G), dtype=np.int64)
        best_seen = np.array([1 << 62], dtype=np.int64)
        return run_repair(lambda it, n, ops_left: tabu_steps(
            labels, counts, conflicts, sizes, hits, tabu_until, G, col_ptr, col_rows, row_ptr, row_cols,
            problem.alpha, problem.budget, it, n, best_seen, rng, ops_left), cap, params.chunk, budget)

    return remove_groups(problem, options, labels0, repair, seed_salt=0x9E3779B97F4A7C15, budget=budget)


SOLVER = Solver("tabu", tabu, "tabu search removing one group at a time (TabuCol style)", params=TabuParams)
