"""P1 portfolio ("auto"): fast heuristics, the LP bound, tabu search, then the exact model.

Problem: P1 min-width combining (DESIGN.md section 3).

Method: a table of stages (:data:`STAGES`), run in order, each from the best
answer so far (fewest groups, then least pruned magnitude), on a share of the
work left:

1. the constructive starters (:data:`.reduce.STARTERS`: first fit, DSatur),
   first fit charged its budgeted fill (gamma > 0), DSatur its estimated cost (skipped when the
   budget cannot pay it), the later skipped once an answer meets the bound;
2. the set-covering LP bound by column generation (any gamma, up to
   ``lp_bound.MAX_COLUMNS`` columns, :mod:`.lp_bound`), often the proof the
   searches cannot give;
3. tabu search; a smaller share when the set model follows, whose LP needs the time;
4. CP-SAT to prove or improve the answer when one of its models fits (the set
   model's groups are few enough, :func:`.cpsat.feasible_groups`, or the
   assignment model fits memory and time, :func:`.cpsat.too_large`), else
   simulated annealing.

The portfolio stops as soon as the answer meets the lower bound (gamma = 0:
proven optimal), and returns the best bound any stage proved. Nothing is kept
between calls: the bound found by one stage travels to the next in
``options.bound``, the enumerated groups in the call's own state.

Determinism: every stage gets a share of the call's one work budget
(:mod:`solvers.budget`) and is charged what it spent, so the stages, their
budgets and their answers do not depend on the clock; the wall clock only cuts
a stage on a heavily loaded machine.

Ctrl-C (KeyboardInterrupt) ends the run early and returns the best answer so
far, marked interrupted. During the CP-SAT stage the signal is caught by
CP-SAT itself (its ``catch_sigint_signal``), which stops and hands back its
best answer; CP-SAT is the last stage, so the run then ends normally.

Reference: portfolio solving as in C. P. Gomes, B. Selman, "Algorithm
portfolios", Artificial Intelligence 126, 2001, doi:10.1016/S0004-3702(00)00081-3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..budget import Budget
from ..problem import CombineProblem, Options, Outcome
from ..registry import Solver
from . import anneal, cpsat, tabu
from . import lp_bound as lp_bound_mod
from ._kernels import pruned_magnitude
from .reduce import STARTERS, known_bound, start_labels

__all__ = ["auto", "Stage", "STAGES", "SOLVER"]

# Share of the work left the LP bound may use (it stops once converged, usually far sooner);
# less above LP_FULL_SHARE_COLUMNS columns, where it rarely converges and the searches need the time
# (random 128 x 2048 at density 0.1, 10 s: 388 groups with half the work to the LP, 381 without).
LP_SHARE = 0.5
LP_SHARE_LARGE = 0.2
LP_FULL_SHARE_COLUMNS = 1024
# Share of the work left the tabu stage may use when CP-SAT runs after it; less before the
# set model, whose LP bound needs the time (and often finds the optimum too); more when
# annealing follows instead.
TABU_SHARE = 0.4
TABU_SHARE_BEFORE_SETS = 0.2
TABU_SHARE_BEFORE_ANNEAL = 0.7


def _score(problem: CombineProblem, labels: np.ndarray) -> tuple[int, float]:
    """(groups, pruned magnitude): the lexicographic P1 objective, smaller is better (O(nnz) kernel)."""
    G = int(labels.max()) + 1
    if problem.budget == 0:
        return G, 0.0
    keep, (col_ptr, col_rows, _, _) = problem.incidence
    return G, float(pruned_magnitude(np.ascontiguousarray(labels[keep]), G, col_ptr, col_rows,
                                     problem.column_magnitudes, problem.shape[0]))


@dataclass
class _Run:
    """The portfolio's state: the best answer and bound so far, and what the stages said."""

    problem: CombineProblem
    options: Options
    bound: int
    best: np.ndarray | None = None
    score: tuple | None = None
    proven: bool = False
    bound_kind: str | None = None
    iterations: int = 0
    interrupted: bool = False
    groups: object = cpsat.ENUMERATE     # the set model's groups once enumerated (None: too many)
    stages: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def offer(self, name: str, outcome: Outcome) -> None:
        labels = np.asarray(outcome.solution, dtype=np.int64)
        score = _score(self.problem, labels)
        self.stages.append(f"{name}:{score[0]}")
        self.iterations += outcome.iterations
        self.interrupted |= outcome.interrupted
        if outcome.fallback:
            self.stats[f"{name}_fallback"] = outcome.fallback
        self.raise_bound(outcome.bound, outcome.bound_kind or name)
        if self.best is None or score < self.score:
            self.best, self.score, self.proven = labels, score, outcome.proven
        elif score == self.score:
            self.proven = self.proven or outcome.proven

    def raise_bound(self, bound, kind: str) -> None:
        if bound is not None and int(np.ceil(bound - 1e-9)) > self.bound:
            self.bound, self.bound_kind = int(np.ceil(bound - 1e-9)), kind

    def done(self, budget: Budget) -> bool:
        met = self.score is not None and self.score[0] <= self.bound and self.score[1] == 0.0
        return self.proven or met or self.interrupted or budget.exhausted

    def stage_options(self) -> Options:
        """Options for the next stage: the best answer as hint, the best bound as known bound."""
        return dataclasses.replace(self.options, hint=self.best, bound=self.bound)


@dataclass(frozen=True)
class Stage:
    """One portfolio stage: ``run(problem, state, budget)`` offers answers to the state.

    ``share(problem, state)`` is the share of the work left the stage may use;
    ``applies(problem, state)`` whether it runs at all.
    """

    name: str
    run: Callable
    share: Callable = lambda problem, state: 1.0
    applies: Callable = lambda problem, state: True


def _starters(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    from . import SOLVERS  # the registry imports this module

    if state.options.hint is not None:
        state.offer("hint", Outcome(start_labels(problem, state.options, budget)))
    for name in STARTERS:
        if state.best is not None and state.done(budget):
            break
        if name in SOLVERS:
            state.offer(name, SOLVERS[name].run(problem, state.stage_options(), budget))
    if state.best is None:
        state.offer("singletons", Outcome(start_labels(problem, state.options, budget)))


def _lp(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    lp, state.stats["lp_bound"] = lp_bound_mod.lp_bound(problem, state.best, state.options, budget)
    state.raise_bound(lp, "lp")


def _model_kind(problem: CombineProblem, state: _Run, budget: Budget) -> str:
    """"sets", "assignment" or "" (no model fits), decided on the work left, not the clock."""
    if state.groups is cpsat.ENUMERATE:
        state.groups = cpsat.set_groups(problem, budget)
    if state.groups is not None:
        return "sets"
    fits = cpsat.too_large(problem, state.score[0], budget.seconds * (1 - TABU_SHARE)) is None
    return "assignment" if fits else ""


def _tabu(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    state.offer("tabu", tabu.tabu(problem, state.stage_options(), budget))


def _tabu_share(problem: CombineProblem, state: _Run) -> float:
    kind = state.stats["model"]
    return TABU_SHARE_BEFORE_SETS if kind == "sets" else TABU_SHARE if kind else TABU_SHARE_BEFORE_ANNEAL


def _cpsat(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    groups = state.groups if state.stats["model"] == "sets" else None
    state.offer("cpsat", cpsat.solve_models(problem, state.best, state.options, budget, state.bound, groups))


def _anneal(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    state.offer("anneal", anneal.anneal(problem, state.stage_options(), budget))


def _choose_model(problem: CombineProblem, state: _Run, budget: Budget) -> None:
    state.stats["model"] = _model_kind(problem, state, budget)


STAGES = (
    Stage("starters", _starters),
    Stage("lp", _lp, share=lambda p, s: LP_SHARE if p.nonempty.size <= LP_FULL_SHARE_COLUMNS else LP_SHARE_LARGE,
          applies=lambda p, s: p.nonempty.size <= lp_bound_mod.MAX_COLUMNS),
    Stage("model", _choose_model),
    Stage("tabu", _tabu, share=_tabu_share),
    Stage("cpsat", _cpsat, applies=lambda p, s: bool(s.stats["model"])),
    Stage("anneal", _anneal, applies=lambda p, s: not s.stats["model"]),
)


def auto(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    """Best answer and best bound of the portfolio stages within ``budget``."""
    state = _Run(problem, options, known_bound(problem, options))
    try:
        for stage in STAGES:
            if state.best is not None and state.done(budget):
                break
            if not stage.applies(problem, state):
                continue
            share = budget.share(stage.share(problem, state))
            stage.run(problem, state, share)
            budget.charge(share)
    except KeyboardInterrupt:
        state.interrupted = True
        if state.best is None:
            raise
    state.stats["stages"] = state.stages
    state.stats.pop("model", None)
    return Outcome(state.best, bound=state.bound, proven=state.proven, bound_kind=state.bound_kind,
                   iterations=state.iterations, interrupted=state.interrupted, stats=state.stats)


SOLVER = Solver("auto", auto, "portfolio: fast heuristics, LP bound, tabu search, then CP-SAT when it fits",
                exact=True)
