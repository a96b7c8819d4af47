"""Bounds that certify how far an answer is from optimal (DESIGN.md section 3).

P1 lower bounds (fewest groups G any solution can have):
- capacity: G >= ceil(N_nonempty / alpha);
- rows: with budget B = floor(gamma * R), a row with c nonzeros spread over
  G groups adds at least c - G conflicts, so sum_r max(0, c_r - G) <= G * B;
  for B = 0 this is G >= max_r c_r;
- weight: each group keeps at most R nonzeros and prunes at most B, so
  G >= ceil(nnz / (R + B));
- clique (B = 0): columns pairwise sharing a row need distinct groups; a greedy
  clique of the conflict graph is a valid bound;
- singletons: when no two columns can share a group (alpha = 1, or every
  pair has more than B common rows), G = N_nonempty, and singletons are optimal.

All of them work on the mask's sparse incidence (:mod:`solvers.sparse`):
linear in nnz, plus pairwise bitset tests that are charged to the work budget.

P2 upper bound ("rows bound"): each row keeps at most its own top n * N / k
entries. Efficacy, as Apex reports it, is the share of the room between the
unpermuted answer and the rows bound that a permutation gains
(:func:`solvers.problem.efficacy`).
"""

from __future__ import annotations

import math

import numpy as np

from .budget import Budget
from .problem import CombineProblem, GroupProblem
from .sparse import WORD_OPS, clique_extend, shareable_pair

__all__ = ["combine_lower_bound", "rows_bound", "greedy_clique_bound", "no_pair_fits", "CLIQUE_STARTS",
           "PAIR_OPS", "PAIR_SHARE", "CLIQUE_SHARE"]


def _rows_bound(row_nnz: np.ndarray, budget: int) -> int:
    """Smallest G with sum_r max(0, c_r - G) <= G * budget."""
    if budget == 0:
        return int(row_nnz.max())
    lo, hi = 1, int(row_nnz.max())
    while lo < hi:
        mid = (lo + hi) // 2
        if np.maximum(row_nnz - mid, 0).sum() <= mid * budget:
            hi = mid
        else:
            lo = mid + 1
    return lo


#: Densest rows whose cliques are extended by :func:`greedy_clique_bound`.
CLIQUE_STARTS = 32
#: Word operations the pairwise tests may spend when the caller gives no budget.
PAIR_OPS = 2.5e8
#: Share of the budget left the pairwise tests may spend.  Large, because a proof that no
#: two columns can share a group ends the whole call, and a shareable pair, when there
#: is one, is usually found among the first (sparsest) pairs.
PAIR_SHARE = 0.8
#: Share of the budget left after that test the clique may spend (it only raises a bound).
CLIQUE_SHARE = 0.2


def greedy_clique_bound(problem: CombineProblem, max_starts: int = CLIQUE_STARTS,
                        ops: float = PAIR_OPS) -> tuple[int, float]:
    """(size of a clique of the column conflict graph, budget operations spent), gamma = 0.

    A row's columns pairwise share that row, so they are a clique (the rows
    bound); each of the ``max_starts`` densest rows' cliques is extended by
    first fit over the columns, those whose rows hold the most nonzeros first
    (:func:`solvers.sparse.clique_extend`, bitset tests that stop at the first
    shared word), within ``ops`` operations in all.  Sparse throughout: O(nnz)
    to set up, no N x N table.
    """
    keep, (col_ptr, col_rows, row_ptr, row_cols) = problem.incidence
    if keep.size == 0:
        return 0, 0.0
    bits = problem.column_bits
    # densest first by the sum of the column's row counts (an O(nnz) proxy for its degree)
    reach = np.add.reduceat(np.diff(row_ptr)[col_rows], col_ptr[:-1])
    order = np.argsort(-reach, kind="stable")
    rows = np.argsort(-np.diff(row_ptr), kind="stable")[:max_starts]
    best, spent = 1, 0.0
    for r in rows:
        if spent >= ops or best >= keep.size:
            break
        size, words = clique_extend(row_cols[row_ptr[r]:row_ptr[r + 1]], order, bits, (ops - spent) / WORD_OPS)
        best, spent = max(best, int(size)), spent + words * WORD_OPS
    return best, spent


def no_pair_fits(problem: CombineProblem, ops: float = PAIR_OPS) -> tuple[bool, float]:
    """(True when provably no two columns can share a group, budget operations spent).

    Two columns can share a group when alpha >= 2 and they have at most
    floor(gamma R) common rows (:func:`solvers.sparse.shareable_pair`, sparsest
    pairs first, pigeonhole shortcut).  False also when ``ops`` ran out first.
    """
    keep, (col_ptr, _, _, _) = problem.incidence
    if problem.alpha < 2 or keep.size < 2:
        return True, 0.0
    nnz = np.diff(col_ptr)
    found, words = shareable_pair(np.argsort(nnz, kind="stable"), problem.column_bits, nnz,
                                  problem.shape[0], problem.budget, ops / WORD_OPS)
    return found == 0, float(words) * WORD_OPS


def combine_lower_bound(problem: CombineProblem, budget: Budget | None = None, clique: bool = True) -> int:
    """The best of the P1 lower bounds listed in the module docstring.

    The pairwise tests are charged to ``budget`` when given: the no-pair-fits
    test may spend :data:`PAIR_SHARE` of what is left, the clique
    :data:`CLIQUE_SHARE` of the rest; without a budget they share
    :data:`PAIR_OPS` operations the same way.  When the bound reaches the
    number of nonempty columns, singletons are the only answer (optimal).
    """
    R = problem.shape[0]
    keep, (col_ptr, _, row_ptr, _) = problem.incidence
    row_nnz = np.diff(row_ptr)
    nnz = int(col_ptr[-1])
    n_nonempty = int(keep.size)
    bound = max(
        math.ceil(n_nonempty / problem.alpha),
        _rows_bound(row_nnz, problem.budget),
        math.ceil(nnz / (R + problem.budget)),
    )
    if bound >= n_nonempty or not clique:
        return int(bound)
    left = PAIR_OPS if budget is None else max(budget.ops, 0.0)
    alone, spent = no_pair_fits(problem, PAIR_SHARE * left)
    if alone:
        bound = n_nonempty
    elif problem.budget == 0:
        size, used = greedy_clique_bound(problem, ops=CLIQUE_SHARE * (left - spent))
        bound, spent = max(bound, size), spent + used
    if budget is not None:
        budget.spend(spent)
    return int(bound)


def rows_bound(problem: GroupProblem) -> float:
    """Each row keeps its own top n * N / k magnitudes."""
    R, N = problem.shape
    keep = problem.n * N // problem.k
    return float(np.partition(problem.magnitude, N - keep, axis=1)[:, N - keep:].sum())
