"""P1 exactly, as a CP-SAT model (OR-Tools), with symmetry breaking, bounds and hints.

Problem: partition the nonempty columns into the fewest groups of at most alpha
columns with at most B = floor(gamma * R) conflicts each; among equal group
counts, prune the least magnitude.

Model (:func:`build_model`). Columns are put in a fixed order: a maximal clique
of the conflict graph first (gamma = 0; grown from the densest row), then by
degree, identical columns adjacent. Booleans x[p, g] put the column at
position p into group g, created only for g <= p, and used[g] marks group g as
used, with used[g] >= used[g + 1]. Every labelling can be renumbered so groups
are numbered by their first column, which satisfies all of this, so these
constraints remove symmetric copies, not answers; the clique's columns are
then fixed to groups 0..k-1, and identical columns to increasing groups (the
renumbered answer stays valid when their groups are swapped). Capacity:
sum_p x[p, g] <= alpha * used[g]. Conflicts, gamma = 0: for every row support
not contained in another, at most one of its columns per group; gamma > 0:
excess e[r, g] >= sum_{p in row r} x[p, g] - 1 and sum_r e[r, g] <= B. The
best lower bound known (:func:`solvers.bounds.combine_lower_bound`, raised by
the set-covering LP bound of :mod:`.lp_bound` for gamma = 0) fixes used[g] = 1 for
g < LB, and the starting answer is given as a complete hint.

Set model (:func:`build_set_model`, gamma = 0 only). When the conflict graph is
dense, the conflict-free groups of at most alpha columns are few: they are
enumerated (:func:`feasible_groups`) and a set-partitioning model picks the
fewest that cover every column once. Its LP bound (fractional colouring) is
much stronger than the assignment model's, e.g. 256 columns at density 0.2:
optimum 104 proven in seconds, where the assignment model stays at the clique
bound 94. It is used when there are at most SET_GROUPS_PER_COLUMN groups per
column, or whenever the assignment model is too large and MAX_SET_GROUPS is
not exceeded.

Solving: phase 1 minimises sum used[g]. With gamma > 0 and phase 1 proven,
phase 2 fixes the group count and maximises the kept magnitude: kept[r, g] =
max_{p in row r} m[r, p] * x[p, g] on integer-scaled magnitudes. The answer is
reported as proven only when both phases are optimal and the scaling is exact
(integer magnitudes, e.g. bool masks). For gamma = 0 the conflict graph's
components are solved separately and packed together (:mod:`.reduce`).

Instances whose assignment model would exceed :data:`MAX_ASSIGN_VARS` booleans,
or take over half the time budget to build, and that have no set model, are
not modelled: the starting heuristic answer is returned with its ``fallback``
saying why.

Limits: the call's one work budget (:mod:`solvers.budget`) pays for the LP
bound, the set enumeration, model building (charged per term) and CP-SAT's
deterministic time, shared by the phases and components; the wall-clock time
left caps every solve, so with one worker and the same seed the answer is the
same unless machine load makes the wall-clock cap bind first.

Reference: L. Perron, F. Didier, "CP-SAT", OR-Tools v9.x, Google, 2024,
https://developers.google.com/optimization/cp/cp_solver; the symmetry breaking
and the set-partitioning model follow E. Malaguti, M. Monaci, P. Toth, "An
exact approach for the vertex coloring problem", Discrete Optimization 8(2),
2011, doi:10.1016/j.disopt.2010.07.005, and A. Mehrotra, M. A. Trick, "A column
generation approach for graph coloring", INFORMS J. Computing 8(4), 1996,
doi:10.1287/ijoc.8.4.344.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from ortools.sat.python import cp_model

from ..bounds import combine_lower_bound
from ..budget import OPS_PER_SECOND, Budget
from ..problem import CombineProblem, InvalidSolution, Options, Outcome
from ..registry import Solver
from ..sparse import WORD_OPS, adjacency_bits
from .labels import canonical_labels
from .lp_bound import lp_bound
from .reduce import analyse, known_bound, lift, lifted_bound, start_labels, subproblem, twin_classes

__all__ = ["MAX_ASSIGN_VARS", "MAX_SET_GROUPS", "BUILD_TERMS_PER_SECOND", "MAGNITUDE_SCALE", "column_order",
           "model_terms", "too_large", "feasible_groups", "build_model", "build_set_model", "cpsat",
           "solve_models", "set_groups", "SOLVER"]

log = logging.getLogger(__name__)

# Beyond this many x[p, g] booleans the model is not built (memory, not proof power, binds).
MAX_ASSIGN_VARS = 400_000
# The set model is used when gamma = 0 and at most this many feasible groups exist, and
# preferred over the assignment model up to SET_GROUPS_PER_COLUMN groups per column.
MAX_SET_GROUPS = 100_000
SET_GROUPS_PER_COLUMN = 50
# Share of the time limit the LP bound may use first (gamma = 0).
LP_SHARE = 0.2
# Model building runs in Python at roughly this many constraint terms per second; a model
# whose estimated build time exceeds half the time budget is not built, and a built one is
# charged its terms at this rate. A constant rather than a measurement, so the decision
# depends on the instance and time limit only.
BUILD_TERMS_PER_SECOND = 250_000
# The set model's enumeration runs in Python at about this many groups per second, and
# may use this share of the budget left.
_GROUPS_PER_SECOND = 500_000
ENUMERATION_SHARE = 0.3
# solve_models(groups=ENUMERATE): the caller has not enumerated the set model's groups.
ENUMERATE = object()
# Non-integer magnitudes are scaled so the largest becomes this integer (phase 2 only).
MAGNITUDE_SCALE = 1_000_000


def _clique_from_densest_row(mask: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """A maximal clique (column ids) grown from the columns of the densest row."""
    members = list(np.flatnonzero(mask[int(np.argmax(mask.sum(axis=1)))]))
    cand = np.all(adj[members], axis=0)
    cand[members] = False
    while cand.any():
        idx = np.flatnonzero(cand)
        pick = int(idx[np.argmax(adj[np.ix_(idx, idx)].sum(axis=1))])
        members.append(pick)
        cand &= adj[pick]
    return np.array(sorted(members), dtype=np.int64)


def _adjacency(problem: CombineProblem) -> np.ndarray:
    """Bool (n, n) conflict graph of the nonempty columns (only for model-sized instances)."""
    n = problem.nonempty.size
    adj = adjacency_bits(problem.column_bits, np.inf)[0]
    return np.unpackbits(adj.view(np.uint8), axis=1, count=n, bitorder="little").astype(bool)


def column_order(problem: CombineProblem) -> tuple[np.ndarray, int]:
    """(positions -> column ids over the nonempty columns, clique size at the front).

    gamma = 0: a maximal clique first, then by conflict degree (descending),
    identical columns adjacent everywhere. gamma > 0: by degree, no clique.
    """
    mask = problem.mask
    cols = problem.nonempty
    adj = _adjacency(problem)
    twins = twin_classes(mask)[cols]
    degree = adj.sum(axis=1)
    clique = _clique_from_densest_row(mask[:, cols], adj) if problem.budget == 0 else np.zeros(0, np.int64)
    in_clique = np.zeros(cols.size, dtype=bool)
    in_clique[clique] = True
    # Sort key: clique first, then degree, then twin class, so twins (same degree) sit together.
    order = np.lexsort((np.arange(cols.size), twins, -degree, ~in_clique))
    return cols[order], int(clique.size)


def model_terms(problem: CombineProblem, G: int) -> int:
    """Estimated constraint terms of the phase-1 model with G groups (assignment + rows)."""
    row_nnz = problem.mask.sum(axis=1)
    return int(3 * problem.nonempty.size * G + row_nnz[row_nnz >= 2].sum() * G)


def too_large(problem: CombineProblem, G: int, seconds: float) -> str | None:
    """Why the model with G groups should not be built within ``seconds``, or None."""
    n = problem.nonempty.size
    if n * G > MAX_ASSIGN_VARS:
        return f"{n} columns x {G} groups > {MAX_ASSIGN_VARS} model variables"
    build = model_terms(problem, G) / BUILD_TERMS_PER_SECOND
    if build > 0.5 * seconds:
        return f"building the model (~{build:.1f} s) would take over half the {seconds:.1f} s left"
    return None


def _canonical_hint(labels_by_pos: np.ndarray, twin_by_pos: np.ndarray) -> np.ndarray:
    """Renumber groups by first position and sort group ids within twin runs (see module doc)."""
    out = canonical_labels(labels_by_pos)
    start = 0
    for p in range(1, out.size + 1):
        if p == out.size or twin_by_pos[p] != twin_by_pos[start]:
            out[start:p] = np.sort(out[start:p])
            start = p
    return out


def _row_supports(mask_pos: np.ndarray) -> list:
    """Distinct row supports (position lists) with >= 2 columns, none contained in another."""
    sets = {frozenset(np.flatnonzero(row).tolist()) for row in mask_pos if row.sum() >= 2}
    ordered = sorted(sets, key=len, reverse=True)
    kept: list[frozenset] = []
    for s in ordered:
        if len(kept) > 2000 or not any(s <= k for k in kept):
            kept.append(s)
    return [sorted(s) for s in kept]


def build_model(problem: CombineProblem, G_max: int, hint: np.ndarray | None = None,
                lb: int = 1):
    """The phase-1 CP-SAT model; returns (model, vars).

    ``vars``: ``order`` (position -> column id), ``x`` (list per position of
    {group: BoolVar}), ``used`` (list of BoolVar), ``clique`` (size). ``hint``
    is a full labelling (N,) with at most G_max groups; ``lb`` a valid lower bound.
    """
    order, k = column_order(problem)
    n = order.size
    mask_pos = problem.mask[:, order]
    twin_pos = twin_classes(problem.mask)[order]
    model = cp_model.CpModel()
    used = [model.new_bool_var(f"used{g}") for g in range(G_max)]
    x = [{g: model.new_bool_var(f"x{p}_{g}") for g in range(min(p, G_max - 1) + 1)} for p in range(n)]
    for g in range(G_max - 1):
        model.add_implication(used[g + 1], used[g])
    for g in range(min(lb, G_max)):
        model.add(used[g] == 1)
    for p in range(n):
        model.add_exactly_one(x[p].values())
        for g, var in x[p].items():
            model.add_implication(var, used[g])
    for p in range(min(k, G_max)):
        model.add(x[p][p] == 1)
    for g in range(G_max):
        members = [x[p][g] for p in range(g, n)]
        if len(members) > problem.alpha:
            model.add(sum(members) <= problem.alpha * used[g])
    for p in range(n - 1):
        if twin_pos[p] == twin_pos[p + 1]:
            gap = 1 if problem.budget == 0 else 0
            model.add(sum(g * v for g, v in x[p].items()) + gap <= sum(g * v for g, v in x[p + 1].items()))
    if problem.budget == 0:
        for support in _row_supports(mask_pos):
            for g in range(min(support[-1], G_max - 1) + 1):
                terms = [x[p][g] for p in support if p >= g]
                if len(terms) >= 2:
                    model.add(sum(terms) <= used[g])
    else:
        rows = [np.flatnonzero(row) for row in mask_pos if row.sum() >= 2]
        for g in range(G_max):
            excess = []
            for support in rows:
                terms = [x[p][g] for p in support if p >= g]
                if len(terms) >= 2:
                    e = model.new_int_var(0, len(terms) - 1, "")
                    model.add(e >= sum(terms) - 1)
                    excess.append(e)
            if excess:
                model.add(sum(excess) <= problem.budget * used[g])
    model.minimize(sum(used))
    if hint is not None:
        canon = _canonical_hint(np.asarray(hint)[order], twin_pos)
        for p in range(n):
            for g, var in x[p].items():
                model.add_hint(var, int(canon[p] == g))
        for g in range(G_max):
            model.add_hint(used[g], int(g <= canon.max()))
    return model, {"order": order, "x": x, "used": used, "clique": k}


def feasible_groups(problem: CombineProblem, limit: int = MAX_SET_GROUPS, budget: Budget | None = None) -> list | None:
    """Every conflict-free group of 1..alpha nonempty columns (gamma = 0), or None past ``limit``.

    Groups are tuples of positions in ``problem.nonempty``. Dense conflict graphs
    have few of them (that is where the assignment model is weakest); the
    enumeration stops as soon as ``limit`` is exceeded or ``budget`` is spent
    (it is charged per group, at :data:`_GROUPS_PER_SECOND`), and then returns None.
    """
    if problem.budget != 0:
        return None
    budget = budget or Budget.unlimited()
    n = problem.nonempty.size
    # Every single column and every non-adjacent pair is a group: the pairs alone may
    # already be too many.  The adjacency's pair tests are charged at their cost.
    adj, edges, words, complete = adjacency_bits(problem.column_bits, max(budget.ops, 0.0) / WORD_OPS)
    budget.spend(words * WORD_OPS)
    pairs = n * (n - 1) // 2 - int(edges)
    if not complete or n + pairs > limit or budget.exhausted:
        return None
    # Python ints as bitsets: bit i set when column i conflicts with j.
    conflict_bits = [int.from_bytes(adj[j].tobytes(), "little") for j in range(n)]
    per_group = OPS_PER_SECOND / _GROUPS_PER_SECOND
    budget.spend(per_group * n)
    groups: list = []
    stack = [((), (1 << n) - 1)]
    while stack:
        chosen, cand = stack.pop()
        if budget.exhausted:
            return None
        budget.spend(per_group * cand.bit_count())
        while cand:
            low = cand & -cand
            j = low.bit_length() - 1
            cand ^= low                      # later candidates only: each group once
            group = chosen + (j,)
            groups.append(group)
            if len(groups) > limit:
                return None
            if len(group) < problem.alpha:
                rest = cand & ~conflict_bits[j]
                if rest:
                    stack.append((group, rest))
    return groups


def build_set_model(n: int, groups: list, hint_groups: list | None = None):
    """Set partitioning over enumerated groups: (model, y) with y[i] choosing groups[i].

    Every column lies in exactly one chosen group; minimise the number chosen.
    Its LP relaxation is the fractional (capacitated) colouring bound, far
    stronger than the assignment model's on dense conflict graphs. The cheap
    lower bound is deliberately not added: a constraint on the objective
    expression stalls CP-SAT's bound here (measured: 104 proven in 4 s without
    it, stuck at the cheap bound 94 with it, 256 columns at density 0.2).
    """
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{i}") for i in range(len(groups))]
    covering: list[list] = [[] for _ in range(n)]
    for var, group in zip(y, groups):
        for p in group:
            covering[p].append(var)
    for p in range(n):
        model.add_exactly_one(covering[p])
    model.minimize(sum(y))
    if hint_groups is not None:
        chosen = set(hint_groups)
        for var, group in zip(y, groups):
            model.add_hint(var, int(group in chosen))
    return model, y


def _solve_sets(problem: CombineProblem, groups: list, hint: np.ndarray, options: Options,
                budget: Budget, lb: int, stats: dict):
    """The set model for one gamma = 0 instance: (labels, bound, proven)."""
    cols = problem.nonempty
    local = hint[cols]
    hint_groups = [tuple(np.flatnonzero(local == g).tolist()) for g in range(int(local.max()) + 1)]
    model, y = build_set_model(cols.size, groups, hint_groups)
    solver, status = _solve(model, options, budget)
    stats["status"] = solver.status_name(status)
    stats["model"] = f"set partitioning over {len(groups)} groups"
    if status in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):
        raise InvalidSolution(f"cpsat: set model reported {solver.status_name(status)} with a feasible hint")
    # best_objective_bound is a valid lower bound even when no solution was found.
    bound = max(lb, int(math.ceil(solver.best_objective_bound - 1e-6)))
    if status == cp_model.UNKNOWN:
        return hint, bound, False
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    chosen = [group for var, group in zip(y, groups) if solver.boolean_value(var)]
    for g, group in enumerate(chosen):
        labels[cols[list(group)]] = g
    return labels, bound, status == cp_model.OPTIMAL


def _integer_magnitudes(mag: np.ndarray) -> tuple[np.ndarray, bool]:
    """Magnitudes as int64 for the objective, and whether that is exact."""
    if np.all(mag == np.round(mag)) and mag.max() <= MAGNITUDE_SCALE:
        return mag.astype(np.int64), True
    return np.round(mag * (MAGNITUDE_SCALE / mag.max())).astype(np.int64), False


def _add_kept_objective(model, problem: CombineProblem, vars: dict, G: int) -> None:
    """Phase 2: with exactly G groups used, maximise the kept (scaled) magnitude."""
    model.clear_objective()
    model.add(sum(vars["used"]) == G)
    imag, _ = _integer_magnitudes(problem.magnitude[:, vars["order"]])
    x = vars["x"]
    kept = []
    for r in range(imag.shape[0]):
        support = np.flatnonzero(imag[r])
        if support.size < 2:
            continue
        for g in range(G):
            terms = [int(imag[r, p]) * x[p][g] for p in support if p >= g]
            if len(terms) == 1:
                kept.append(terms[0])
            elif terms:
                v = model.new_int_var(0, int(imag[r, support].max()), "")
                model.add_max_equality(v, terms)
                kept.append(v)
    model.maximize(sum(kept))


def _solve(model, options: Options, budget: Budget):
    solver = budget.cpsat_solver(options.seed, options.workers)
    solver.parameters.log_search_progress = log.isEnabledFor(logging.DEBUG)
    if solver.parameters.log_search_progress:
        solver.log_callback = log.debug
    status = solver.solve(model)
    budget.spend_cpsat(solver)
    return solver, status


def _labels_from(solver, vars: dict, N: int) -> np.ndarray:
    labels = np.full(N, -1, dtype=np.int64)
    for p, col in enumerate(vars["order"]):
        labels[col] = next(g for g, v in vars["x"][p].items() if solver.boolean_value(v))
    return labels


def _solve_one(problem: CombineProblem, hint: np.ndarray, options: Options, budget: Budget, lb: int,
               groups: list | None):
    """Solve one instance (no component split): (labels, bound in groups, proven, stats)."""
    G_hint = int(hint.max()) + 1
    stats = {"lower_bound_in": lb}
    if G_hint <= lb and problem.budget == 0:
        return hint, lb, True, stats
    # Judged on the work budget, not the clock, so the choice is reproducible.
    reason = too_large(problem, G_hint, budget.seconds)
    # The set model wins on dense conflict graphs (few groups per column); elsewhere the
    # assignment model proves faster, and the set model is kept for when it is too large.
    if groups is not None and (len(groups) <= SET_GROUPS_PER_COLUMN * problem.nonempty.size or reason):
        labels, bound, proven = _solve_sets(problem, groups, hint, options, budget, lb, stats)
        return labels, bound, proven, stats
    if reason:
        stats["fallback"] = reason
        return hint, lb, False, stats
    budget.spend(model_terms(problem, G_hint) * OPS_PER_SECOND / BUILD_TERMS_PER_SECOND)
    model, vars = build_model(problem, G_hint, hint, lb)
    solver, status = _solve(model, options, budget)
    stats["status"] = solver.status_name(status)
    if status in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):
        # The hint satisfies the model, so neither can happen unless the model is wrong.
        raise InvalidSolution(f"cpsat: model reported {solver.status_name(status)} with a feasible hint")
    if status == cp_model.UNKNOWN:
        return hint, lb, False, stats
    labels = _labels_from(solver, vars, problem.shape[1])
    G = int(round(solver.objective_value))
    bound = max(lb, int(math.ceil(solver.best_objective_bound - 1e-6)))
    proven = status == cp_model.OPTIMAL
    if problem.budget == 0 or not proven:
        return labels, bound, proven, stats
    _, exact = _integer_magnitudes(problem.magnitude)
    _add_kept_objective(model, problem, vars, G)
    model.clear_hints()
    for p, col in enumerate(vars["order"]):
        for g, var in vars["x"][p].items():
            model.add_hint(var, int(labels[col] == g))
    solver2, status2 = _solve(model, options, budget)
    stats["phase2_status"] = solver2.status_name(status2)
    if status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        labels = _labels_from(solver2, vars, problem.shape[1])
    stats["pruned_scaled"] = not exact
    return labels, bound, bool(status2 == cp_model.OPTIMAL and exact), stats


def set_groups(problem: CombineProblem, budget: Budget) -> list | None:
    """:func:`feasible_groups` on a share of ``budget``, charged to it."""
    share = budget.share(ENUMERATION_SHARE)
    groups = feasible_groups(problem, budget=share)
    budget.charge(share)
    return groups


def solve_models(problem: CombineProblem, hint: np.ndarray, options: Options, budget: Budget, lb: int,
                 groups=ENUMERATE) -> Outcome:
    """The exact models from a feasible ``hint``, component by component for gamma = 0.

    ``lb`` is a proven lower bound for the whole instance; ``groups`` the set
    model's groups if the caller has enumerated them already (None: too many),
    else they are enumerated here (per component when there are several).
    """
    N = problem.shape[1]
    structure = analyse(problem)
    comps = structure.components
    if len(comps) == 1:
        if groups is ENUMERATE:
            groups = set_groups(problem, budget)
        labels, bound, proven, stats = _solve_one(problem, hint, options, budget, lb, groups)
        stats.update(components=1, twins=structure.num_twins)
        return Outcome(labels, bound=bound, proven=proven, bound_kind="cpsat", fallback=stats.pop("fallback", None),
                       stats=stats)
    sub_labels, sub_bounds, all_proven, fallbacks = [], [], True, []
    remaining = sum(c.size for c in comps)
    for cols in comps:
        share = budget.share(cols.size / remaining)
        remaining -= cols.size
        sub = subproblem(problem, cols)
        lab, bnd, prv, st = _solve_one(sub, canonical_labels(hint[cols]), options, share,
                                       combine_lower_bound(sub), set_groups(sub, share))
        budget.charge(share)
        sub_labels.append(lab)
        sub_bounds.append(bnd)
        all_proven &= prv
        if "fallback" in st:
            fallbacks.append(st["fallback"])
    labels = lift(N, comps, sub_labels, problem.alpha)
    bound = max(lifted_bound(sub_bounds, structure.nonempty.size, problem.alpha), lb)
    if hint.max() < labels.max():
        labels = hint
    G = int(labels.max()) + 1
    stats = {"components": len(comps), "component_groups_proven": all_proven, "twins": structure.num_twins}
    return Outcome(labels, bound=bound, proven=G <= bound, bound_kind="cpsat",
                   fallback="; ".join(sorted(set(fallbacks))) or None, stats=stats)


def cpsat(problem: CombineProblem, options: Options, budget: Budget) -> Outcome:
    """Solve P1 with CP-SAT within ``budget``: the LP bound first (gamma = 0), then :func:`solve_models`."""
    hint = start_labels(problem, options, budget)
    lb = known_bound(problem, options)
    lp_stats = None
    if problem.budget == 0:
        # The LP bound fixes more groups as used and often proves the hint optimal outright.
        share = budget.share(LP_SHARE)
        lp, lp_stats = lp_bound(problem, hint, options, share)
        budget.charge(share)
        lb = max(lb, lp)
    outcome = solve_models(problem, hint, options, budget, lb)
    outcome.stats["lp_bound"] = lp_stats
    return outcome


SOLVER = Solver("cpsat", cpsat, "exact CP-SAT model with symmetry breaking, bounds and hints", exact=True)
