"""Bounds that certify how far an answer is from optimal (DESIGN.md section 3).

P1 lower bounds (fewest groups G any solution can have):
- capacity: G >= ceil(N_nonempty / alpha);
- rows: with budget B = floor(gamma * R), a row with c nonzeros spread over
  G groups adds at least c - G conflicts, so sum_r max(0, c_r - G) <= G * B;
  for B = 0 this is G >= max_r c_r;
- weight: each group keeps at most R nonzeros and prunes at most B, so
  G >= ceil(nnz / (R + B));
- clique (B = 0): columns pairwise sharing a row need distinct groups; a greedy
  clique of the conflict graph is a valid bound.

P2 upper bound ("rows bound"): each row keeps at most its own top n * N / k
entries. Efficacy, as Apex reports it, is the share of the room between the
unpermuted answer and the rows bound that a permutation gains
(:func:`solvers.problem.efficacy`).
"""

from __future__ import annotations

import math

import numpy as np

from .problem import CombineProblem, GroupProblem

__all__ = ["combine_lower_bound", "rows_bound", "greedy_clique_bound"]


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


def greedy_clique_bound(mask: np.ndarray, max_starts: int = 32) -> int:
    """Size of a large clique in the column conflict graph, grown greedily.

    Starts from the densest columns; each step adds the candidate adjacent to
    all chosen columns that keeps the most candidates. Each candidate's count
    of adjacent candidates is updated as candidates drop out, so one start
    costs O(n^2) in total rather than per step.
    """
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return 0
    m = mask[:, cols].astype(np.float32)        # BLAS; counts up to R are exact in float32
    adj = (m.T @ m) > 0
    np.fill_diagonal(adj, False)
    degree = adj.sum(axis=1)
    best = 1
    counts = adj.astype(np.int32)
    for start in np.argsort(-degree, kind="stable")[:max_starts]:
        cand = adj[start].copy()
        score = counts[cand].sum(axis=0)          # adjacent candidates of every column (symmetric)
        size = 1
        while cand.any():
            idx = np.flatnonzero(cand)
            pick = idx[np.argmax(score[idx])]
            drop = cand & ~adj[pick]                # pick itself included: no self-loops
            cand &= adj[pick]
            score -= counts[drop].sum(axis=0)
            size += 1
        best = max(best, size)
    return best


def combine_lower_bound(problem: CombineProblem, clique: bool = True) -> int:
    """The best of the cheap P1 lower bounds listed in the module docstring."""
    mask = problem.mask
    R = mask.shape[0]
    budget = problem.budget
    row_nnz = mask.sum(axis=1)
    nnz = int(row_nnz.sum())
    n_nonempty = int(mask.any(axis=0).sum())
    bound = max(
        math.ceil(n_nonempty / problem.alpha),
        _rows_bound(row_nnz, budget),
        math.ceil(nnz / (R + budget)),
    )
    if clique and budget == 0 and n_nonempty <= 4096:
        bound = max(bound, greedy_clique_bound(mask))
    return int(bound)


def rows_bound(problem: GroupProblem) -> float:
    """Each row keeps its own top n * N / k magnitudes."""
    R, N = problem.shape
    keep = problem.n * N // problem.k
    return float(np.partition(problem.magnitude, N - keep, axis=1)[:, N - keep:].sum())
