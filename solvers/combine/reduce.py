"""Problem structure for P1: empty columns, identical columns, conflict-graph components.

Method. Three reductions that every P1 solver may use, none of which changes the
optimum:

- Empty columns carry no weight and are left out of the groups.
- Identical columns ("twins": same nonzero rows) are interchangeable. For
  gamma = 0 twins conflict pairwise, so they can never share a group and cannot
  be merged into one column; what they give is symmetry: in any solution the
  twins' groups can be permuted among them, so an exact model may order them
  (``group(t1) < group(t2)``, or ``<=`` when gamma > 0 lets them share).
- For gamma = 0 the conflict graph (columns adjacent when they share a nonzero
  row) splits into connected components that never conflict with each other.
  Each component can be solved alone, but the answers are not simply added:
  groups of different components may share one array column as long as the
  union has at most alpha columns. :func:`lift` bin-packs the components'
  groups into common groups (at most one group of each component per common
  group), and
  :func:`lifted_bound` gives the valid bound ``max(max_c bound_c,
  ceil(N_nonempty / alpha))``; an answer that meets it is optimal.

For gamma > 0 conflicts couple all columns through the budget only within a
group, but a group may then hold conflicting columns, so components are not
split (one component of all nonempty columns).

Reference: the component and twin reductions are standard in exact graph
colouring, e.g. E. Malaguti, M. Monaci, P. Toth, "An exact approach for the
vertex coloring problem", Discrete Optimization 8(2), 2011,
doi:10.1016/j.disopt.2010.07.005.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..bounds import combine_lower_bound
from ..check import check_labels
from ..budget import Budget
from ..problem import CombineProblem, InvalidSolution, Options, ProblemError
from ..sparse import components

__all__ = ["Structure", "analyse", "twin_classes", "subproblem", "lift", "lifted_bound",
           "start_labels", "known_bound"]

# Fast heuristics that give local search and the exact model a starting answer, cheapest
# first: first fit is linear in the nonzeros, DSatur scans the groups per column.
STARTERS = ("ffd", "dsatur")


@dataclass(frozen=True)
class Structure:
    """What the reductions found.

    ``components``: list of int64 arrays of original column indices, each
    ascending, together covering exactly the nonempty columns.
    ``twins``: (N,) int64, for each column the lowest index of its identical
    class (-1 for empty columns).
    """

    nonempty: np.ndarray
    components: list
    twins: np.ndarray

    @property
    def num_twins(self) -> int:
        """Columns that duplicate a lower-indexed column."""
        idx = np.arange(self.twins.size)
        return int(np.count_nonzero((self.twins >= 0) & (self.twins != idx)))


def twin_classes(mask: np.ndarray) -> np.ndarray:
    """(N,) int64: the lowest column index with the same nonzero pattern, -1 if empty."""
    N = mask.shape[1]
    rep = np.full(N, -1, dtype=np.int64)
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return rep
    packed = np.packbits(mask[:, cols], axis=0)          # one byte string per column
    _, first, inverse = np.unique(packed.T, axis=0, return_index=True, return_inverse=True)
    rep[cols] = cols[first[inverse.ravel()]]
    return rep


def _components(problem: CombineProblem) -> list:
    """Connected components of the conflict graph over the nonempty columns (O(nnz) union-find)."""
    keep, (_, _, row_ptr, row_cols) = problem.incidence
    comp = components(keep.size, row_ptr, row_cols)
    order = np.argsort(comp, kind="stable")
    splits = np.flatnonzero(np.diff(comp[order])) + 1
    return [keep[part] for part in np.split(order, splits)]


def analyse(problem: CombineProblem) -> Structure:
    """Find empty columns, twins and (for gamma = 0) the conflict-graph components."""
    mask = problem.mask
    nonempty = problem.nonempty
    if problem.budget == 0:
        comps = _components(problem)
        comps.sort(key=lambda c: (-c.size, int(c[0])))   # largest first, deterministic
    else:
        comps = [nonempty]
    return Structure(nonempty=nonempty, components=comps, twins=twin_classes(mask))


def subproblem(problem: CombineProblem, cols: np.ndarray) -> CombineProblem:
    """The instance restricted to ``cols``; for gamma = 0 all-zero rows are dropped too.

    With gamma > 0 every row is kept, because the budget floor(gamma * R) depends on R.
    """
    mag = problem.magnitude[:, cols]
    if problem.budget == 0:
        mag = mag[mag.any(axis=1)]
    return CombineProblem(np.ascontiguousarray(mag), problem.alpha, problem.gamma)


def lift(N: int, components: list, sub_labels: list, alpha: int) -> np.ndarray:
    """Combine per-component labellings (gamma = 0) into labels over all N columns.

    Components never conflict, so their groups can share an array column; two
    groups of the same component may not (they might conflict). Best-fit
    decreasing: each component group, largest first, goes whole into the
    fullest common group that still has room for it and holds nothing of its
    component; a new common group is opened only when none does. Always valid;
    optimal when the result meets :func:`lifted_bound`.
    """
    labels = np.full(N, -1, dtype=np.int64)
    room: list[int] = []            # free slots per common group
    owner: list[set] = []           # components present in each common group
    pieces = []
    for c, (cols, lab) in enumerate(zip(components, sub_labels)):
        for g in range(int(lab.max()) + 1):
            members = cols[lab == g]
            if members.size:
                pieces.append((c, members))
    pieces.sort(key=lambda p: (-p[1].size, p[0], int(p[1][0])))
    for c, members in pieces:
        fits = [g for g, r in enumerate(room) if r >= members.size and c not in owner[g]]
        if fits:
            best = min(fits, key=lambda g: (room[g], g))
        else:
            room.append(alpha)
            owner.append(set())
            best = len(room) - 1
        labels[members] = best
        room[best] -= members.size
        owner[best].add(c)
    return labels


def lifted_bound(sub_bounds: list, n_nonempty: int, alpha: int) -> int:
    """A valid lower bound for the whole instance from the components' own bounds."""
    return int(max(max(sub_bounds, default=0), math.ceil(n_nonempty / alpha)))


def known_bound(problem: CombineProblem, options: Options) -> int:
    """The best lower bound the caller proved (``options.bound``, set by the front door), else the cheap ones."""
    if options.bound is not None:
        return int(math.ceil(options.bound - 1e-9))
    return combine_lower_bound(problem)


def start_labels(problem: CombineProblem, options: Options, budget: Budget | None = None) -> np.ndarray:
    """A feasible labelling to start from: ``options.hint`` if given, else the best starter.

    The starters run on ``budget`` (default: ``options.time_limit`` from now).

    The starters are the fast heuristics of :data:`STARTERS` (fewest groups
    wins, first listed on ties; with gamma = 0 the later ones are skipped once
    an answer meets the lower bound); with none available, every column is its
    own group, which is always feasible.
    """
    if options.hint is not None:
        hint = np.asarray(options.hint)
        try:
            check_labels(problem, hint)
        except InvalidSolution as exc:
            raise ProblemError(f"options.hint is not a valid labelling: {exc}") from None
        return hint.astype(np.int64)
    from . import SOLVERS  # the registry imports this module; look starters up at call time

    budget = budget or Budget.start(options.time_limit)
    best = None
    lb = known_bound(problem, options)
    for name in STARTERS:
        if name in SOLVERS:
            labels = np.asarray(SOLVERS[name].run(problem, options, budget).solution, dtype=np.int64)
            if best is None or labels.max() < best.max():
                best = labels
            if problem.budget == 0 and best.max() + 1 <= lb:
                break
    if best is None:
        best = np.full(problem.shape[1], -1, dtype=np.int64)
        best[problem.nonempty] = np.arange(problem.nonempty.size)
    return best
