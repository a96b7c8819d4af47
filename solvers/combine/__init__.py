"""P1, min-width column combining: the solver table and the checked front door.

``solve(problem, solver, options)`` runs a registered solver, checks its answer
with :func:`solvers.check.check_labels`, raises the bound to the best known
one, and returns a :class:`~solvers.problem.CombineResult`.
"""

from __future__ import annotations

import math

import numpy as np

from ..check import check_labels
from ..problem import CombineProblem, CombineResult, InvalidSolution, Options
from ..registry import Solver, lookup, run_timed
from .reduce import lower_bound

__all__ = ["SOLVERS", "solve", "canonical_labels", "group_lists"]

# Filled below from the algorithm modules; each registers name -> Solver.
SOLVERS: dict[str, Solver] = {}


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0..G-1 in order of their lowest column (same answer, same labels)."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full_like(labels, -1)
    seen: dict[int, int] = {}
    for j, g in enumerate(labels.tolist()):
        if g >= 0:
            out[j] = seen.setdefault(g, len(seen))
    return out


def group_lists(labels: np.ndarray, G: int) -> list:
    """The columns of each group 0..G-1, ascending (one sort, not G scans)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels[labels >= 0], minlength=G)
    return np.split(order[order.size - counts.sum():], np.cumsum(counts)[:-1])


def solve(problem: CombineProblem, solver="auto", options: Options | None = None) -> CombineResult:
    """Solve P1 with a registered solver (name or callable) and return a checked result."""
    options = options or Options()
    spec = lookup(SOLVERS, solver, "combining")
    outcome, seconds = run_timed(spec, problem, options)
    labels = canonical_labels(outcome.solution)
    pruned = check_labels(problem, labels)
    G = int(labels.max()) + 1
    bound = lower_bound(problem)
    if outcome.bound is not None:
        bound = max(bound, int(math.ceil(outcome.bound - 1e-9)))
    if G < bound:
        raise InvalidSolution(f"{spec.name}: {G} groups is below the proven lower bound {bound}")
    pruned_mag = float(problem.magnitude[pruned].sum())
    # "optimal" is lexicographic (groups, then pruned magnitude): G == bound proves
    # it only when nothing can be pruned (budget 0) or nothing was.
    proven = outcome.proven or (G == bound and pruned_mag == 0.0)
    groups = group_lists(labels, G)
    stats = dict(outcome.stats)
    stats["groups_optimal"] = proven or G == bound
    return CombineResult(
        groups=groups, labels=labels, num_groups=G, lower_bound=bound,
        status="optimal" if proven else "feasible", pruned=pruned, keep_mask=problem.mask & ~pruned,
        pruned_magnitude=pruned_mag, total_magnitude=float(problem.magnitude.sum()),
        seconds=seconds, solver=spec.name, shape=problem.shape, alpha=problem.alpha,
        gamma=problem.gamma, stats=stats,
    )


# The algorithm modules, imported after SOLVERS exists; "auto" last because the
# portfolio draws on the others.
from . import greedy_cc, ffd, dsatur, tabu, anneal, cpsat, portfolio  # noqa: E402

for _module in (greedy_cc, ffd, dsatur, tabu, anneal, cpsat, portfolio):
    SOLVERS[_module.SOLVER.name] = _module.SOLVER
