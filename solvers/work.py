"""A deterministic work budget for the heuristic searches, with the clock as a hard cap.

Problem: a search that stops when the wall clock runs out returns different
answers on a loaded and an idle machine, so "same seed, same answer" fails
whenever the time limit binds.

Method: the time limit is converted once into a number of elementary
operations, :data:`OPS_PER_SECOND` per second, and a search charges each batch
of steps its estimated operation count (its own cost model, the same one that
sizes its kernel calls) and stops when the budget is spent; batch sizes depend
only on the instance, so the stopping point does too.  The rate is set well
below what the searches achieve on an idle machine (about half of it, measured
by ``benchmarks/solvers/work_rate.py``), so the budget, not the clock, ends a
search; the wall-clock deadline still stops it on a heavily loaded machine.  A pipeline hands each stage a share of
what is left (:meth:`WorkBudget.share`) and charges the stage's spending back
(:meth:`WorkBudget.charge`), so the split is deterministic too.

Reference: the same idea as CP-SAT's ``max_deterministic_time``
(:mod:`solvers.cpsat_budget`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["OPS_PER_SECOND", "WorkBudget"]

#: Elementary operations credited per second of time limit.
OPS_PER_SECOND = 2.5e8


@dataclass
class WorkBudget:
    """Operations left, operations spent, and the wall-clock deadline (perf_counter seconds)."""

    ops: float
    deadline: float
    spent: float = 0.0

    @classmethod
    def start(cls, time_limit: float) -> "WorkBudget":
        """A budget of ``time_limit`` seconds' worth of operations, capped at that wall time."""
        return cls(time_limit * OPS_PER_SECOND, time.perf_counter() + time_limit)

    def share(self, fraction: float) -> "WorkBudget":
        """A budget for one stage: ``fraction`` of the operations left, the same deadline."""
        return WorkBudget(max(self.ops, 0.0) * fraction, self.deadline)

    def spend(self, ops: float) -> None:
        self.ops -= ops
        self.spent += ops

    def charge(self, stage: "WorkBudget") -> None:
        """Count what a stage budget from :meth:`share` spent against this one."""
        self.spend(stage.spent)

    def steps_left(self, ops_per_step: float) -> int:
        """How many steps of ``ops_per_step`` operations the budget still pays for."""
        return max(0, int(self.ops // max(ops_per_step, 1.0)))

    @property
    def seconds_left(self) -> float:
        """Wall-clock seconds to the deadline (negative once past it)."""
        return self.deadline - time.perf_counter()

    @property
    def time_up(self) -> bool:
        return self.seconds_left <= 0

    @property
    def exhausted(self) -> bool:
        """True once the operations are spent or the deadline has passed."""
        return self.ops <= 0 or self.time_up
