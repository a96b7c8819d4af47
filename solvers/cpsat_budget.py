"""CP-SAT solver parameters shared by every CP-SAT model: limits, workers, seed.

CP-SAT stops on whichever comes first of a wall-clock limit and a
*deterministic* time limit (its own count of work done, in units calibrated to
be about a second). Only the second gives the same answer for the same seed:
the first moves with machine load. So every CP-SAT call here gets the caller's
wall-clock time left as a hard cap and a work budget derived from the
requested ``time_limit`` (never from the clock), :data:`WORK_PER_SECOND` work
units per second; on an unloaded machine CP-SAT does 0.6-1 unit per second, so
the work budget binds first and the answer is reproducible. A :class:`Budget`
is spent across the successive solves of one call (phases, components).

Reference: OR-Tools ``sat_parameters.proto``, fields ``max_time_in_seconds``,
``max_deterministic_time``, ``num_workers`` and ``random_seed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

from .problem import Options

__all__ = ["WORK_PER_SECOND", "Budget", "new_solver"]

WORK_PER_SECOND = 0.5


@dataclass
class Budget:
    """Wall-clock deadline (perf_counter seconds) and work units left."""

    deadline: float
    work: float

    @classmethod
    def start(cls, options: Options) -> "Budget":
        work = options.work_limit if options.work_limit is not None else WORK_PER_SECOND * options.time_limit
        return cls(time.perf_counter() + options.time_limit, work)

    def share(self, fraction: float) -> "Budget":
        """A budget for a sub-solve getting ``fraction`` of the work left (same deadline)."""
        return Budget(self.deadline, self.work * fraction)

    def spend(self, solver: cp_model.CpSolver) -> None:
        self.work = max(self.work - solver.response_proto.deterministic_time, 0.0)

    @property
    def seconds_left(self) -> float:
        return self.deadline - time.perf_counter()


def new_solver(options: Options, budget: Budget) -> cp_model.CpSolver:
    """A CpSolver limited by ``budget`` with the options' workers and seed."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(budget.seconds_left, 0.01)
    solver.parameters.max_deterministic_time = max(budget.work, 0.01)
    solver.parameters.num_workers = options.workers
    solver.parameters.random_seed = options.seed
    return solver
