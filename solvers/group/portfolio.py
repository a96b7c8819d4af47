"""P2 grouping portfolio ("auto"): the exact method when one applies, else a heuristic pipeline.

- k = 2 and N <= MATCHING_MAX_COLUMNS: maximum-weight matching (proven optimal);
- the CP-SAT set-partitioning model is small (N <= cpsat.MAX_COLUMNS and
  C(N, k) <= cpsat.MAX_SUBSETS): the heuristic pipeline below, then CP-SAT
  hinted with its answer, to prove it optimal or improve it;
- otherwise a pipeline, each stage starting from the previous stage's best:
  up to TABU_MAX_COLUMNS columns, tabu search over cross-group swaps (the
  channel-swap neighbourhood of Apex) then LNS with assignment moves; above it,
  where the O(N^2) swap scans get slow, LNS first, then simulated annealing on
  whatever budget LNS leaves (it stops when it stalls). Measured on random
  256 x 1024 and 64 x 2048 layers at k = 4, n = 2 with 2 s: LNS alone 31.5% and
  59.9% efficacy, tabu alone 17.8% on the first; on 128 x 256, tabu 41.0% and
  LNS 39.1%. Every stage is never worse than its start, so the answer is never
  worse than the hint (or the identity order). On the Apex instance tabu alone
  reaches 39.26% efficacy, within 0.5 points of the set-partitioning LP bound
  (39.72%).

The time limit becomes one work budget (:mod:`solvers.work`); each stage gets
a share of the operations left and is charged what it spent, so the same seed
gives the same answer; the wall clock is only a hard cap. Ctrl-C stops the
current stage and returns the best order found so far.

Reference: the stage modules (apex, anneal, lns, matching, cpsat).
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..check import kept_magnitude
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver
from ..work import WorkBudget
from . import cpsat as cpsat_mod
from ._kernels import start_order
from .anneal import anneal
from .apex import tabu_swap
from .lns import lns
from .matching import matching

__all__ = ["SOLVER", "portfolio", "MATCHING_MAX_COLUMNS", "TABU_MAX_COLUMNS"]

# networkx's blossom algorithm is pure Python, O(N^3): a few seconds at N = 128.
MATCHING_MAX_COLUMNS = 128
# Above this many columns the pipeline starts with LNS instead of tabu search.
TABU_MAX_COLUMNS = 256
# (name, search, share of the remaining work it may use at most), run in order.
_SMALL_STAGES = (("tabu", tabu_swap, 0.8), ("lns", lns, 1.0))
_LARGE_STAGES = (("lns", lns, 1.0), ("anneal", anneal, 1.0))
# Share of the time limit the heuristic gets before CP-SAT on tiny instances.
_CPSAT_HEURISTIC_SHARE = 0.3


def _pipeline(problem: GroupProblem, options: Options) -> Outcome:
    budget = WorkBudget.start(options.time_limit)
    order = start_order(problem, options)
    stages = _SMALL_STAGES if problem.shape[1] <= TABU_MAX_COLUMNS else _LARGE_STAGES
    stats: dict = {"method": "portfolio: " + " -> ".join(name for name, _, _ in stages)}
    for i, (name, run, share) in enumerate(stages):
        if i and budget.exhausted:
            break
        stage_budget = budget.share(share)
        order, stage = run(problem, order, options.seed + i, stage_budget)
        budget.charge(stage_budget)
        stats[name] = stage
        if stage.get("interrupted"):
            stats["interrupted"] = True
            break
    return Outcome(order, stats=stats)


def _small_for_cpsat(problem: GroupProblem) -> bool:
    N = problem.shape[1]
    return N <= cpsat_mod.MAX_COLUMNS and math.comb(N, problem.k) <= cpsat_mod.MAX_SUBSETS


def _with_cpsat(problem: GroupProblem, options: Options) -> Outcome:
    # The heuristic answer first (fast, and CP-SAT's hint); CP-SAT then proves it or
    # improves on it. The better order wins; CP-SAT's bound holds either way. CP-SAT's
    # work budget comes from the time limit, so neither split depends on the clock.
    heuristic = _pipeline(problem, replace(options, time_limit=_CPSAT_HEURISTIC_SHARE * options.time_limit))
    if heuristic.stats.get("interrupted"):
        return heuristic
    exact = cpsat_mod.cpsat(problem, replace(options, hint=heuristic.solution,
                                             time_limit=(1 - _CPSAT_HEURISTIC_SHARE) * options.time_limit))
    stats = {"method": "portfolio: heuristic -> " + exact.stats["method"], "heuristic": heuristic.stats,
             "cpsat": exact.stats}
    if kept_magnitude(problem, heuristic.solution) > kept_magnitude(problem, exact.solution):
        return Outcome(heuristic.solution, bound=exact.bound, stats=stats)
    return Outcome(exact.solution, bound=exact.bound, proven=exact.proven, stats=stats)


def portfolio(problem: GroupProblem, options: Options) -> Outcome:
    """Matching for k = 2, heuristic then CP-SAT for tiny instances, else the heuristic pipeline."""
    if problem.k == 2 and problem.shape[1] <= MATCHING_MAX_COLUMNS:
        return matching(problem, options)
    if _small_for_cpsat(problem):
        return _with_cpsat(problem, options)
    return _pipeline(problem, options)


SOLVER = Solver("auto", portfolio, "portfolio: matching (k=2), CP-SAT (tiny), else tabu -> LNS or LNS -> anneal",
                exact=True)
