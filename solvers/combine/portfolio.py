"""P1 portfolio ("auto"): fast heuristics, then tabu search, then the exact model.

Problem: P1 min-width combining (DESIGN.md section 3).

Method: run the fast constructive heuristics (:data:`STARTERS`), keep the best
answer (fewest groups, then least pruned magnitude), compute the set-covering
LP bound by column generation (gamma = 0, up to lp_bound.MAX_COLUMNS columns,
:mod:`.lp_bound`), improve the answer with tabu search, then either prove or
improve it with CP-SAT when one of its models fits (the set model's groups are
few enough, :func:`.cpsat.feasible_groups`, or the assignment model fits
memory and time, :func:`.cpsat.too_large`), else with simulated annealing.
Every stage starts from the best answer so far, and the portfolio stops as
soon as the answer meets the lower bound (gamma = 0: proven optimal). The
result carries the best bound any stage proved.

Determinism: the time limit becomes one work budget (:mod:`solvers.work`).
Each stage gets a share of the operations left, expressed as its time limit,
and is charged what it reports spending (``stats["ops"]``; the constructive
starters are charged nothing), so the stages, their budgets and their answers
do not depend on the clock. The local searches and the LP bound stop on their
budgets; CP-SAT on a deterministic work budget of the remaining share of
``time_limit`` (:mod:`solvers.cpsat_budget`). The wall clock stays a hard cap:
no stage is given more than the time left.

Ctrl-C (KeyboardInterrupt) ends the run early and returns the best answer so
far with ``stats["interrupted"] = True``. During the CP-SAT stage the signal is
caught by CP-SAT itself (its ``catch_sigint_signal``), which stops and hands
back its best answer; CP-SAT is the last stage, so the run then ends normally.

Reference: portfolio solving as in C. P. Gomes, B. Selman, "Algorithm
portfolios", Artificial Intelligence 126, 2001, doi:10.1016/S0004-3702(00)00081-3.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..check import conflict_pruned
from ..cpsat_budget import WORK_PER_SECOND
from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from ..work import OPS_PER_SECOND, WorkBudget
from . import anneal, cpsat, tabu
from . import lp_bound as lp_bound_mod
from .reduce import STARTERS, lower_bound, raise_bound, start_labels

__all__ = ["auto", "SOLVER"]

# Share of the remaining time the LP bound may use (gamma = 0; it stops once converged,
# usually far sooner, and the proof it gives is what the searches cannot give).
LP_SHARE = 0.5
# Share of the remaining time the tabu stage may use when CP-SAT runs after it; less
# before the set model, whose LP bound needs the time (and often finds the optimum too).
TABU_SHARE = 0.4
TABU_SHARE_BEFORE_SETS = 0.2


def _score(problem: CombineProblem, labels: np.ndarray) -> tuple[int, float]:
    """(groups, pruned magnitude): the lexicographic P1 objective, smaller is better."""
    G = int(labels.max()) + 1
    if problem.budget == 0:
        return G, 0.0
    return G, float(problem.magnitude[conflict_pruned(problem.magnitude, labels)].sum())


def auto(problem: CombineProblem, options: Options) -> Outcome:
    """Best answer and best bound of the portfolio stages within options.time_limit."""
    from . import SOLVERS  # the registry imports this module

    budget = WorkBudget.start(options.time_limit)
    lb = lower_bound(problem)
    best, best_score, bound, proven = None, None, lb, False
    stages: list[str] = []
    stats: dict = {"stages": stages, "interrupted": False}

    def offer(name: str, outcome: Outcome) -> None:
        nonlocal best, best_score, bound, proven
        labels = np.asarray(outcome.solution, dtype=np.int64)
        score = _score(problem, labels)
        stages.append(f"{name}:{score[0]}")
        if "fallback" in outcome.stats:
            stats[f"{name}_fallback"] = outcome.stats["fallback"]
        budget.spend(outcome.stats.get("ops", 0.0))
        if outcome.bound is not None:
            bound = max(bound, int(np.ceil(outcome.bound - 1e-9)))
        if best is None or score < best_score:
            best, best_score = labels, score
            proven = outcome.proven
        elif score == best_score:
            proven = proven or outcome.proven

    def done() -> bool:
        return proven or (best_score[0] <= bound and best_score[1] == 0.0) or budget.exhausted

    def remaining(share: float = 1.0, work_limit: float | None = None) -> Options:
        # the budget's seconds, capped by the wall-clock seconds actually left
        seconds = min(share * max(budget.ops, 0.0) / OPS_PER_SECOND, budget.seconds_left)
        return dataclasses.replace(options, time_limit=max(seconds, 0.01), hint=best, work_limit=work_limit)

    try:
        if options.hint is not None:
            offer("hint", Outcome(start_labels(problem, options)))
        for name in STARTERS:
            if best is not None and done():
                break
            if name in SOLVERS:
                offer(name, SOLVERS[name].run(problem, remaining()))
        if best is None:
            offer("singletons", Outcome(start_labels(problem, options)))
        left = 1.0
        if problem.budget == 0 and problem.nonempty.size <= lp_bound_mod.MAX_COLUMNS and not done():
            # Column generation: the set-covering LP bound, often the proof the searches lack.
            lp, stats["lp_bound"] = lp_bound_mod.lp_bound(problem, best, remaining(LP_SHARE))
            budget.spend(stats["lp_bound"].get("ops", 0.0))
            bound = raise_bound(problem, max(bound, lp))
            left = 1 - LP_SHARE
        if not done():
            # Decided on the time limit, not the clock, so the stage sequence is reproducible.
            sets = cpsat.feasible_groups(problem) is not None
            model_fits = sets or cpsat.too_large(
                problem, best_score[0], options.time_limit * left * (1 - TABU_SHARE)) is None
            share = TABU_SHARE_BEFORE_SETS if sets else TABU_SHARE if model_fits else 0.7
            offer("tabu", tabu.tabu(problem, remaining(share)))
            if not done():
                if model_fits:
                    work = WORK_PER_SECOND * options.time_limit * left * (1 - share)
                    offer("cpsat", cpsat.cpsat(problem, remaining(work_limit=work)))
                else:
                    offer("anneal", anneal.anneal(problem, remaining()))
    except KeyboardInterrupt:
        stats["interrupted"] = True
        if best is None:
            raise
    return Outcome(best, bound=bound, proven=proven, stats=stats)


def _run(problem: CombineProblem, options: Options) -> Outcome:
    return auto(problem, options)


SOLVER = Solver("auto", _run, "portfolio: fast heuristics, LP bound, tabu search, then CP-SAT when it fits",
                exact=True)
