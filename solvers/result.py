"""Checked results: one base for every arrangement result, as PyVRP's Result is.

Every front door (P1 :func:`solvers.combine.solve`, P2 :func:`solvers.group.solve`,
PermDNN :func:`solvers.permdiag.solve`, PCNN :func:`solvers.patterns.select_patterns`,
and PENNI's encoder) returns a :class:`Result`: the objective, the best proven
bound and which way it points (``sense``), the gap between them, the status
("optimal" only when proven), the seconds of the whole call, the solver, the
iterations, whether the clock or Ctrl-C cut the search (``interrupted``), and
the free-form ``stats``.  :meth:`Result.as_row` flattens the scalars into one
row for a CSV or a benchmark table.  Problem-specific results add their own
fields and the DESIGN.md names (``num_groups`` / ``lower_bound`` for P1,
``kept`` / ``upper_bound`` for P2) as aliases of ``objective`` / ``bound``.

Reference: PyVRP ``pyvrp/Result.py`` and ``pyvrp/Statistics.py``
(N. A. Wouda, L. Lan, W. Kool, "PyVRP: a high-performance VRP solver package",
INFORMS J. Computing 36(4), 2024, doi:10.1287/ijoc.2023.0055).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Result", "CombineResult", "GroupResult", "efficacy", "STOPS"]

#: Why a run stopped: its own criterion (converged, proven, nothing left to try),
#: its work budget, the wall clock, or Ctrl-C.
STOPS = ("done", "budget", "clock", "interrupt")


@dataclass(kw_only=True)
class Result:
    """What every checked arrangement result carries."""

    objective: float
    bound: float            # best proven bound: lower for sense "min", upper for "max"
    sense: str              # "min" or "max"
    status: str             # "optimal" (proven) or "feasible"
    seconds: float          # the whole call, validation to checked result
    solver: str
    bound_kind: str = ""    # what proved the bound, e.g. "rows", "lp", "cpsat"
    iterations: int = 0
    ops: float = 0.0        # work-budget operations the solver charged
    stopped_by: str = "done"  # one of STOPS
    fallback: str | None = None
    stats: dict = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        """True when the clock or Ctrl-C, not the work budget, ended the search."""
        return self.stopped_by in ("clock", "interrupt")

    @property
    def gap(self) -> float:
        """Relative distance to the bound: (found - bound) / bound, or (bound - found) / bound."""
        if not self.bound:
            return 0.0
        diff = self.objective - self.bound if self.sense == "min" else self.bound - self.objective
        return diff / abs(self.bound)

    def _row_extras(self) -> dict:
        """Problem-specific scalars for :meth:`as_row`."""
        return {}

    def as_row(self) -> dict:
        """The run's scalars as one flat dict (a CSV or table row)."""
        row = {"solver": self.solver, "status": self.status, "objective": float(self.objective),
               "bound": float(self.bound), "bound_kind": self.bound_kind, "sense": self.sense,
               "gap": float(self.gap), "seconds": float(self.seconds), "iterations": int(self.iterations),
               "ops": float(self.ops), "stopped_by": self.stopped_by, "interrupted": self.interrupted,
               "fallback": self.fallback or ""}
        row.update(self._row_extras())
        return row


@dataclass(kw_only=True)
class CombineResult(Result):
    """A checked P1 answer; ``objective`` is the group count, ``bound`` its proven lower bound."""

    groups: list            # list of int64 arrays of column indices, each sorted
    labels: np.ndarray      # (N,) group id per column, -1 for empty columns
    pruned: np.ndarray      # bool (R, N): nonzeros removed by conflicts
    keep_mask: np.ndarray   # bool (R, N): nonzeros that survive (the mask to fine-tune under)
    pruned_magnitude: float
    total_magnitude: float
    shape: tuple
    alpha: int
    gamma: float
    sense: str = "min"
    packed: object = None   # the encoded format, set by arrange.pack

    @property
    def num_groups(self) -> int:
        return int(self.objective)

    @property
    def lower_bound(self) -> int:
        return int(self.bound)

    @property
    def compression(self) -> float:
        """Matrix compression rate (R * N) / (R * G)."""
        return self.shape[1] / self.num_groups

    @property
    def pruned_fraction(self) -> float:
        return self.pruned_magnitude / self.total_magnitude if self.total_magnitude else 0.0

    def _row_extras(self) -> dict:
        R, N = self.shape
        return {"rows": R, "cols": N, "alpha": self.alpha, "gamma": self.gamma,
                "compression": self.compression, "pruned_fraction": self.pruned_fraction}


def efficacy(kept: float, identity_kept: float, rows_bound: float) -> float:
    """P2 efficacy as Apex reports it: (kept - kept_identity) / (rows bound - kept_identity).

    1.0 when the unpermuted answer already meets the rows bound.
    """
    room = rows_bound - identity_kept
    return (kept - identity_kept) / room if room > 0 else 1.0


@dataclass(kw_only=True)
class GroupResult(Result):
    """A checked P2 answer; ``objective`` is the kept magnitude, ``bound`` its proven upper bound."""

    order: np.ndarray
    keep_mask: np.ndarray   # bool (R, N), original column order: the nonzeros the order keeps
    identity_kept: float
    k: int
    n: int
    rows_bound: float       # the rows bound alone, the reference efficacy is measured against
    sense: str = "max"
    padded: int = 0         # empty columns arrange.permute appended to reach a multiple of k

    @property
    def kept(self) -> float:
        return float(self.objective)

    @property
    def upper_bound(self) -> float:
        return float(self.bound)

    @property
    def efficacy(self) -> float:
        """(kept - kept_identity) / (rows bound - kept_identity), as Apex reports it."""
        return efficacy(self.kept, self.identity_kept, self.rows_bound)

    def _row_extras(self) -> dict:
        return {"k": self.k, "n": self.n, "efficacy": self.efficacy, "rows_bound": self.rows_bound,
                "identity_kept": self.identity_kept}
