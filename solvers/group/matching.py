"""P2 grouping for k = 2, exactly, as a maximum-weight perfect matching.

With k = 2 (so n = 1) a group is a pair of columns and keeps sum_r max(|W_ri|, |W_rj|);
the best grouping is a maximum-weight perfect matching of the complete graph on
the columns with that pair value as edge weight (Edmonds' blossom algorithm, via
networkx). Weights are scaled to integers so networkx uses exact integer
arithmetic; the answer is optimal up to that rounding, which is below 2**-40 of
the largest pair value per pair, and the returned bound includes it.

Reference: J. Edmonds, "Paths, trees, and flowers", Canadian J. Math. 17 (1965),
doi:10.4153/CJM-1965-045-4; Z. Galil, "Efficient algorithms for finding maximum
matching in graphs", ACM Computing Surveys 18 (1986), doi:10.1145/6462.6502.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..problem import GroupProblem, Options, Outcome, ProblemError
from ..registry import Solver

__all__ = ["SOLVER", "pair_values", "matching"]

# Integer resolution of the edge weights relative to the largest one.
_SCALE_BITS = 40


def pair_values(magnitude: np.ndarray) -> np.ndarray:
    """(N, N) kept magnitude of every pair: sum over rows of the larger entry."""
    N = magnitude.shape[1]
    out = np.empty((N, N))
    for i in range(N):
        out[i] = np.maximum(magnitude[:, i:i + 1], magnitude).sum(axis=0)
    return out


def matching(problem: GroupProblem, options: Options) -> Outcome:
    """Maximum-weight perfect matching of the columns; proven optimal (k = 2 only)."""
    if problem.k != 2:
        raise ProblemError(f"matching solves k=2 only, got k={problem.k}; use lns, anneal or auto")
    N = problem.shape[1]
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
                exact=True)
