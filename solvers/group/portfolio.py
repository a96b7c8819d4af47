"""P2 grouping portfolio ("auto"): the exact method when one applies, else a heuristic pipeline.

- k = 2 and the matching fits the budget (:func:`.matching.matching_ops`):
  maximum-weight matching (proven optimal);
- the CP-SAT set-partitioning model is small (N <= cpsat.MAX_COLUMNS and
  C(N, k) <= cpsat.MAX_SUBSETS): the heuristic pipeline below, then CP-SAT
  hinted with its answer, to prove it optimal or improve it;
- before either, the set-partitioning LP bound (:mod:`.lp_bound`) where its
  exact pricing is affordable: reported as the bound ("lp") when it beats the
  rows bound, and the pipeline stops once an answer meets the bound;
- otherwise a pipeline, each stage starting from the previous stage's best.
  First RIA's sort-and-deal with assignment sweeps (:mod:`.ria`; its answer
  only if it beats the hint or the identity order), on 30% of the budget up
  to TABU_MAX_COLUMNS columns and on all of it above (it stops when a sweep
  gains nothing, leaving the rest to the next stages). Then,
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

The call's one work budget (:mod:`solvers.budget`) is split: each stage gets
a share of the operations left and is charged what it spent, so the same seed
gives the same answer; the wall clock is only a hard cap. Ctrl-C stops the
current stage and returns the best order found so far, marked interrupted.

Reference: the stage modules (ria, apex, anneal, lns, matching, cpsat).
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..budget import Budget
from ..check import kept_magnitude
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver
from ..run import stopped_by
from . import cpsat as cpsat_mod
from .anneal import anneal
from .apex import tabu_swap
from .lns import lns
from .lp_bound import lp_bound
from .matching import matching, matching_ops
from .ria import ria
from .start import start_order

__all__ = ["SOLVER", "portfolio", "TABU_MAX_COLUMNS"]

# Above this many columns the pipeline starts with LNS instead of tabu search.
TABU_MAX_COLUMNS = 256
# (name, search, share of the remaining work it may use at most), run in order.
_SMALL_STAGES = (("tabu", tabu_swap, 0.8), ("lns", lns, 1.0))
_LARGE_STAGES = (("lns", lns, 1.0), ("anneal", anneal, 1.0))
# Share of the budget the set-partitioning LP bound may use (it stops once converged).
_LP_SHARE = 0.3
# Share of the budget the RIA starter may use (it stops earlier when a sweep gains nothing):
# up to TABU_MAX_COLUMNS columns tabu search does better with the rest. Above, 2:4, RIA
# on 0.3 / 1.0 of the budget then LNS: 1024 x 4096 (3 s) 13.4% / 14.4% efficacy, but
# 256 x 1024 (2 s) 30.8% / 30.4% and 64 x 2048 57.9% / 57.6%; LLM layers have the rows
# of the first (4096 x 4096, 50 s: RIA alone 8.31%, RIA on 0.3 then LNS 8.28%).
_RIA_SHARE = {"small": 0.3, "large": 1.0}
# Share of the budget the heuristic gets before CP-SAT on tiny instances.
_CPSAT_HEURISTIC_SHARE = 0.3


def _ria_start(problem: GroupProblem, options: Options, budget: Budget, size: str) -> tuple[Outcome, str]:
    """RIA on its share of the budget; its answer if it beats the hint (or identity), else that order."""
    start = start_order(problem, options)
    share = budget.share(_RIA_SHARE[size])
    outcome = ria(problem, options.seed, share)
    budget.charge(share)
    if kept_magnitude(problem, outcome.solution) > kept_magnitude(problem, start):
        return outcome, "ria"
    outcome.solution = start
    return outcome, "hint" if options.hint is not None else "identity"


def _pipeline(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    size = "small" if problem.shape[1] <= TABU_MAX_COLUMNS else "large"
    stages = _SMALL_STAGES if size == "small" else _LARGE_STAGES
    stats: dict = {"method": "portfolio: ria -> " + " -> ".join(name for name, _, _ in stages)}
    first, stats["start"] = _ria_start(problem, options, budget, size)
    order, iterations, interrupted = first.solution, first.iterations, first.interrupted
    stats["ria"] = {"iterations": first.iterations, **first.stats}
    for i, (name, search, share) in enumerate(stages):
        if interrupted or budget.exhausted or _meets(problem, order, options.bound):
            break
        stage_budget = budget.share(share)
        outcome = search(problem, order, options.seed + i, stage_budget)
        budget.charge(stage_budget)
        order = outcome.solution
        iterations += outcome.iterations
        stats[name] = {"stopped_by": stopped_by(outcome, stage_budget), "iterations": outcome.iterations,
                       **outcome.stats}
        if outcome.interrupted:
            interrupted = True
            break
    return Outcome(order, iterations=iterations, interrupted=interrupted, stats=stats)


def _meets(problem: GroupProblem, order, bound) -> bool:
    """True when ``order`` keeps the proven upper bound (nothing left to gain)."""
    return bound is not None and kept_magnitude(problem, order) >= bound * (1 - 1e-12)


def _lp_stage(problem: GroupProblem, options: Options, budget: Budget) -> tuple[Options, float | None, dict]:
    """The set-partitioning LP bound on a share of the budget; options carrying it as the known bound."""
    share = budget.share(_LP_SHARE)
    lp, stats = lp_bound(problem, start_order(problem, options), share)
    budget.charge(share)
    if lp is not None and (options.bound is None or lp < options.bound):
        options = replace(options, bound=lp)
    return options, lp, stats


def _small_for_cpsat(problem: GroupProblem) -> bool:
    N = problem.shape[1]
    return N <= cpsat_mod.MAX_COLUMNS and math.comb(N, problem.k) <= cpsat_mod.MAX_SUBSETS


def _with_cpsat(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    # The heuristic answer first (fast, and CP-SAT's hint); CP-SAT then proves it or
    # improves on it. The better order wins; CP-SAT's bound holds either way.
    share = budget.share(_CPSAT_HEURISTIC_SHARE)
    heuristic = _pipeline(problem, options, share)
    budget.charge(share)
    if heuristic.interrupted:
        return heuristic
    exact = cpsat_mod.cpsat(problem, replace(options, hint=heuristic.solution), budget)
    stats = {"method": "portfolio: heuristic -> " + exact.stats["method"], "heuristic": heuristic.stats,
             "cpsat": exact.stats}
    iterations = heuristic.iterations + exact.iterations
    if kept_magnitude(problem, heuristic.solution) > kept_magnitude(problem, exact.solution):
        return Outcome(heuristic.solution, bound=exact.bound, bound_kind=exact.bound_kind,
                       iterations=iterations, stats=stats)
    return Outcome(exact.solution, bound=exact.bound, proven=exact.proven, bound_kind=exact.bound_kind,
                   iterations=iterations, stats=stats)


def portfolio(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    """Matching for k = 2; else the LP bound, then heuristic and CP-SAT (tiny) or the heuristic pipeline."""
    if problem.k == 2 and matching_ops(problem) <= budget.ops:
        return matching(problem, options, budget)
    options, lp, lp_stats = _lp_stage(problem, options, budget)
    outcome = (_with_cpsat if _small_for_cpsat(problem) else _pipeline)(problem, options, budget)
    outcome.stats["lp_bound"] = lp_stats
    if lp is not None and (outcome.bound is None or lp < outcome.bound):
        outcome.bound, outcome.bound_kind = lp, "lp"
    return outcome


SOLVER = Solver("auto", portfolio, "portfolio: matching (k=2), CP-SAT (tiny), else RIA start, tabu -> LNS or LNS -> anneal",
                exact=True)
