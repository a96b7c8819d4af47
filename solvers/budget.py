"""The one work budget every solver receives: deterministic operations, and the clock as a hard cap.

Problem: a search that stops when the wall clock runs out returns different
answers on a loaded and an idle machine, so "same seed, same answer" fails
whenever the time limit binds.

Method: the time limit is converted once into a number of elementary
operations, :data:`OPS_PER_SECOND` per second, and a search charges each batch
of steps its estimated operation count (its own cost model, the same one that
sizes its kernel calls) and stops when the budget is spent; batch sizes depend
only on the instance, so the stopping point does too.  The rate is set well
below what the searches achieve on an idle machine (at most a quarter of it,
measured by ``benchmarks/solvers/work_rate.py``), so the budget, not the
clock, ends a search even when other processes share the cores; the
wall-clock deadline still stops it on a heavily loaded machine, and the
result then says ``interrupted``.  A pipeline hands each stage a
share of what is left (:meth:`Budget.share`) and charges the stage's spending
back (:meth:`Budget.charge`), so the split is deterministic too.

CP-SAT stops on whichever comes first of a wall-clock limit and its own
*deterministic* time (a count of work done, in units calibrated to be about a
second).  The same budget drives it: :meth:`Budget.cpsat_solver` gives CP-SAT
the seconds left as ``max_time_in_seconds`` and the operations left, at
:data:`OPS_PER_CPSAT_UNIT` per unit, as ``max_deterministic_time``, and
:meth:`Budget.spend_cpsat` charges back what it used.  On an unloaded machine
CP-SAT does 0.6-1 unit per second, so with :data:`CPSAT_UNITS_PER_SECOND` = 0.5
the work budget binds first and the answer is reproducible.

Reference: OR-Tools ``sat_parameters.proto``, fields ``max_time_in_seconds``,
``max_deterministic_time``, ``num_workers`` and ``random_seed``; stopping
criteria as small objects, as in PyVRP (``pyvrp/stop``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["OPS_PER_SECOND", "CPSAT_UNITS_PER_SECOND", "OPS_PER_CPSAT_UNIT", "Budget"]

#: Elementary operations credited per second of time limit: the budgeted Numba searches run
#: 1.27e9-2.1e9 of them a second on an idle core of these machines (work_rate.py, runs of
#: 0.5 s or more), and at least 6.2e8 with both cores also running a busy loop (4.1e8 with
#: three busy loops), so the budget ends them after at most a quarter of the time limit idle
#: and under half of it under that load; at 6e8 a CI machine a third slower, under the same load, hit the clock
#: (tests/solvers/test_determinism.py).
OPS_PER_SECOND = 3e8
#: CP-SAT deterministic-time units credited per second of time limit.
CPSAT_UNITS_PER_SECOND = 0.5
#: Operations one CP-SAT deterministic-time unit is charged as.
OPS_PER_CPSAT_UNIT = OPS_PER_SECOND / CPSAT_UNITS_PER_SECOND


@dataclass
class Budget:
    """Operations left, operations spent, and the wall-clock deadline (perf_counter seconds)."""

    ops: float
    deadline: float
    spent: float = 0.0

    @classmethod
    def start(cls, time_limit: float, deadline: float | None = None) -> "Budget":
        """``time_limit`` seconds' worth of operations, capped at ``deadline`` (default: now + time_limit)."""
        if deadline is None:
            deadline = time.perf_counter() + time_limit
        return cls(time_limit * OPS_PER_SECOND, deadline)

    @classmethod
    def unlimited(cls, deadline: float = float("inf")) -> "Budget":
        """No operation limit, only the deadline (for steps whose cost the caller caps otherwise)."""
        return cls(float("inf"), deadline)

    def share(self, fraction: float) -> "Budget":
        """A budget for one stage: ``fraction`` of the operations left, the same deadline."""
        return Budget(max(self.ops, 0.0) * fraction, self.deadline)

    def spend(self, ops: float) -> None:
        self.ops -= ops
        self.spent += ops

    def charge(self, stage: "Budget") -> None:
        """Count what a stage budget from :meth:`share` spent against this one."""
        self.spend(stage.spent)

    def use_up(self) -> None:
        """Spend what is left: a search whose next step costs more than the rest stops on its budget."""
        self.spend(max(self.ops, 0.0))

    def steps_left(self, ops_per_step: float) -> int:
        """How many steps of ``ops_per_step`` operations the budget still pays for."""
        if self.ops == float("inf"):
            return 1 << 62
        return max(0, int(self.ops // max(ops_per_step, 1.0)))

    @property
    def seconds(self) -> float:
        """The operations left, in seconds of time limit."""
        return max(self.ops, 0.0) / OPS_PER_SECOND

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

    # --- CP-SAT ------------------------------------------------------------------

    @property
    def cpsat_units(self) -> float:
        """The operations left as CP-SAT deterministic-time units."""
        return max(self.ops, 0.0) / OPS_PER_CPSAT_UNIT

    def cpsat_solver(self, seed: int, workers: int = 1):
        """A ``CpSolver`` limited by this budget, with the given seed and workers."""
        from ortools.sat.python import cp_model

        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(min(self.seconds_left, 1e9), 0.01)
        solver.parameters.max_deterministic_time = max(min(self.cpsat_units, 1e9), 0.01)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed % (1 << 31)
        return solver

    def spend_cpsat(self, solver) -> None:
        """Charge the deterministic time a finished CP-SAT solve used."""
        self.spend(solver.response_proto.deterministic_time * OPS_PER_CPSAT_UNIT)
