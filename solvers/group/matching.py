"""P2 grouping for k = 2, exactly, as a maximum-weight perfect matching.

With k = 2 (so n = 1) a group is a pair of columns and keeps sum_r max(|W_ri|, |W_rj|);
the best grouping is a maximum-weight perfect matching of the complete graph on
the columns with that pair value as edge weight (Edmonds' blossom algorithm, via
networkx). Weights are scaled to integers so networkx uses exact integer
arithmetic; the answer is optimal up to that rounding, which is below 2**-40 of
the largest pair value per pair, and the returned bound includes it.

networkx's blossom algorithm is pure Python and O(N^3): about 190 s at
N = 512 here. It is charged :data:`OPS_PER_CUBE` operations per N^3 (the
work budget's rate, :mod:`solvers.budget`, is about half of what runs per
second); when that does not fit the budget, the matching is not attempted and
LNS answers instead, saying so.

Reference: J. Edmonds, "Paths, trees, and flowers", Canadian J. Math. 17 (1965),
doi:10.4153/CJM-1965-045-4; Z. Galil, "Efficient algorithms for finding maximum
matching in graphs", ACM Computing Surveys 18 (1986), doi:10.1145/6462.6502.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..budget import OPS_PER_SECOND, Budget
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver
from .lns import lns

__all__ = ["SOLVER", "pair_values", "matching", "matching_ops", "OPS_PER_CUBE"]

# Integer resolution of the edge weights relative to the largest one.
_SCALE_BITS = 40
# Operations charged per N^3 for the blossom algorithm: measured 191 s at N = 512 (1.4 us
# per N^3), charged twice that, like every cost model here.
OPS_PER_CUBE = 2.8e-6 * OPS_PER_SECOND


def matching_ops(problem: GroupProblem) -> float:
    """Operations the matching is charged: the blossom algorithm plus the pair values."""
    R, N = problem.shape
    return OPS_PER_CUBE * N ** 3 + 2.0 * R * N * N


def _only_pairs(problem: GroupProblem) -> str | None:
    return None if problem.k == 2 else f"matching solves k=2 only, got k={problem.k}; use lns, anneal or auto"


def pair_values(magnitude: np.ndarray) -> np.ndarray:
    """(N, N) kept magnitude of every pair: sum over rows of the larger entry."""
    N = magnitude.shape[1]
    out = np.empty((N, N))
    for i in range(N):
        out[i] = np.maximum(magnitude[:, i:i + 1], magnitude).sum(axis=0)
    return out


def matching(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    """Maximum-weight perfect matching of the columns; proven optimal (k = 2 only).

    When the matching does not fit the budget, LNS from the identity instead (``fallback`` says so).
    """
    N = problem.shape[1]
    cost, available = matching_ops(problem), max(budget.ops, 0.0)
    if cost > available:
        outcome = lns(problem, np.arange(N, dtype=np.int64), options.seed, budget)
        outcome.fallback = (f"a matching of {N} columns (~{cost:.2g} operations) does not fit the "
                            f"budget ({available:.2g}); LNS instead")
        return outcome
    budget.spend(cost)
    values = pair_values(problem.magnitude)
    top = float(values.max())
    scale = 2.0 ** _SCALE_BITS / top if top > 0 else 1.0
    graph = nx.Graph()
    graph.add_nodes_from(range(N))
    for i in range(N):
        for j in range(i + 1, N):
            graph.add_edge(i, j, weight=int(round(values[i, j] * scale)))
    pairs = nx.max_weight_matching(graph, maxcardinality=True)
    order = np.array([c for pair in sorted(tuple(sorted(p)) for p in pairs) for c in pair], dtype=np.int64)
    kept = float(sum(values[order[2 * g], order[2 * g + 1]] for g in range(N // 2)))
    # Each of the N/2 pairs in any matching is off by at most half a unit after rounding.
    slack = (N / 2) / scale
    return Outcome(order, bound=kept + slack, proven=True,
                   stats={"method": "maximum-weight perfect matching (networkx blossom)"})


SOLVER = Solver("matching", matching, "exact for k=2: maximum-weight perfect matching (networkx)",
                exact=True, requires=_only_pairs)
