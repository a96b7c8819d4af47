"""P2 grouping as a CP-SAT model, exact for small instances.

Two models. When the k-subsets of the columns are few (C(N, k) <= MAX_SUBSETS)
the set-partitioning model is used: one boolean per k-subset with its exact
kept magnitude as objective weight, every column covered once; its LP
relaxation is tight, so CP-SAT proves optimality quickly. Otherwise the
assignment model.

Assignment model variables: x[c, g] (column c in group g) and z[r, c, g] (entry (r, c) kept in
group g's cell of row r). Constraints: every column in one group, every group
k columns, z[r, c, g] <= x[c, g], at most n kept entries per (row, group) cell.
Objective: maximise sum of |W[r, c]| z[r, c, g] with magnitudes scaled to integers.
Symmetry breaking numbers groups by their smallest column: column 0 is in
group 0 and column c may join group g > 0 only if group g-1 holds an earlier column.
Instances above the size cap are not modelled: the LNS heuristic answers
instead and the result's ``fallback`` says so.  Otherwise LNS first finds the
hint on :data:`HINT_SHARE` of the budget, the model is charged its size to
build (when what is left cannot pay for that, the hint is the answer, and
``fallback`` says so), and CP-SAT gets the rest as deterministic time
(:mod:`solvers.budget`).

Reference: L. Perron and F. Didier, "CP-SAT", OR-Tools (Google),
https://developers.google.com/optimization; model layout after the
cpsat-primer (Schmitt and Stuber).
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
from ortools.sat.python import cp_model

from ..budget import OPS_PER_SECOND, Budget
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver
from ._kernels import all_group_kept, prepare
from .lns import lns
from .start import start_order

__all__ = ["SOLVER", "build_model", "build_partition_model", "cpsat", "MAX_COLUMNS", "MAX_VARIABLES",
           "MAX_SUBSETS"]

log = logging.getLogger(__name__)

# Size caps of the model (columns, and kept-entry variables R * N * G).
MAX_COLUMNS = 24
MAX_VARIABLES = 200_000
MAX_SUBSETS = 50_000
# Integer resolution of the magnitudes relative to the largest one.
_SCALE = 2.0 ** 30
# Share of the budget the LNS hint may use before the model is built.
HINT_SHARE = 0.3
# Operations charged per model term built in Python (about 250,000 terms a second).
_OPS_PER_TERM = OPS_PER_SECOND / 250_000
# Least budget worth handing CP-SAT after the build (0.05 s of time limit).
_MIN_SOLVE_OPS = 0.05 * OPS_PER_SECOND

_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "model_invalid",
    cp_model.UNKNOWN: "unknown",
}


def integer_weights(magnitude: np.ndarray) -> tuple[np.ndarray, float]:
    """Magnitudes rounded to integers at a fixed relative resolution, and the scale used."""
    top = float(magnitude.max())
    scale = _SCALE / top if top > 0 else 1.0
    return np.rint(magnitude * scale).astype(np.int64), scale


def build_model(problem: GroupProblem, weights: np.ndarray):
    """The CP-SAT model and its x variables (list of lists, x[c][g])."""
    R, N = problem.shape
    k, n, G = problem.k, problem.n, problem.num_groups
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{c}_{g}") for g in range(G)] for c in range(N)]
    for c in range(N):
        model.add_exactly_one(x[c])
    for g in range(G):
        model.add(sum(x[c][g] for c in range(N)) == k)
    model.add(x[0][0] == 1)
    for c in range(N):
        for g in range(1, G):
            if g > c:
                model.add(x[c][g] == 0)
            else:
                model.add(x[c][g] <= sum(x[e][g - 1] for e in range(c)))
    objective = []
    for r in range(R):
        nz = np.flatnonzero(weights[r])
        for g in range(G):
            cell = []
            for c in nz:
                z = model.new_bool_var(f"z{r}_{c}_{g}")
                model.add_implication(z, x[c][g])
                cell.append(z)
                objective.append(int(weights[r, c]) * z)
            if len(cell) > n:
                model.add(sum(cell) <= n)
    model.maximize(sum(objective))
    return model, x


def build_partition_model(problem: GroupProblem, scale: float):
    """The set-partitioning model, its y variables and the (S, k) subsets they stand for."""
    N, k, n = problem.shape[1], problem.k, problem.n
    subsets = np.array(list(itertools.combinations(range(N), k)), dtype=np.int64)
    values = all_group_kept(prepare(problem.magnitude), subsets.ravel(), k, n)
    weights = np.rint(values * scale).astype(np.int64)
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{s}") for s in range(len(subsets))]
    covering = [[] for _ in range(N)]
    for s, members in enumerate(subsets):
        for c in members:
            covering[c].append(y[s])
    for c in range(N):
        model.add_exactly_one(covering[c])
    model.maximize(sum(int(w) * v for w, v in zip(weights, y)))
    return model, y, subsets


def _order_from_groups(x, solver, N: int, G: int) -> np.ndarray:
    members = [[c for c in range(N) if solver.value(x[c][g])] for g in range(G)]
    return np.array([c for group in members for c in group], dtype=np.int64)


def _add_hint(model, x, order: np.ndarray, k: int) -> None:
    # Renumber the hint's groups by smallest column so it obeys the symmetry breaking.
    groups = sorted((sorted(order[g * k:(g + 1) * k].tolist()) for g in range(len(order) // k)))
    label = {c: g for g, members in enumerate(groups) for c in members}
    for c, row in enumerate(x):
        for g, var in enumerate(row):
            model.add_hint(var, label[c] == g)


def use_partition_model(problem: GroupProblem) -> bool:
    return math.comb(problem.shape[1], problem.k) <= MAX_SUBSETS


def too_large(problem: GroupProblem) -> bool:
    R, N = problem.shape
    if use_partition_model(problem):
        return False
    return N > MAX_COLUMNS or R * N * problem.num_groups > MAX_VARIABLES


def _model_terms(problem: GroupProblem) -> int:
    """Terms of the model that :func:`_solve_model` builds (its Python build cost)."""
    N, G = problem.shape[1], problem.num_groups
    if use_partition_model(problem):
        return math.comb(N, problem.k) * (problem.k + 2)
    return G * (N * N + 3 * int(np.count_nonzero(problem.magnitude)))


def _solve_model(problem: GroupProblem, hint: np.ndarray, options: Options, budget: Budget):
    """(solver, status code, order decoder, rounding slack in objective units, scale, model name)."""
    k, G = problem.k, problem.num_groups
    budget.spend(_OPS_PER_TERM * _model_terms(problem))
    if use_partition_model(problem):
        scale = integer_weights(problem.magnitude)[1]
        model, y, subsets = build_partition_model(problem, scale)
        chosen = {tuple(sorted(hint[g * k:(g + 1) * k].tolist())) for g in range(G)}
        for s, members in enumerate(subsets):
            model.add_hint(y[s], tuple(members.tolist()) in chosen)
        slack = 0.5 * G
        def decode(solver):
            picked = [subsets[s] for s in range(len(y)) if solver.value(y[s])]
            return np.concatenate(picked).astype(np.int64)
        name = "set partitioning"
    else:
        weights, scale = integer_weights(problem.magnitude)
        model, x = build_model(problem, weights)
        _add_hint(model, x, hint, k)
        slack = 0.5 * problem.shape[0] * G * problem.n
        def decode(solver):
            return _order_from_groups(x, solver, problem.shape[1], G)
        name = "assignment"
    solver = budget.cpsat_solver(options.seed, options.workers)
    if name == "set partitioning":
        # Its LP relaxation is tight; full linearization lets one worker prove optimality.
        solver.parameters.linearization_level = 2
    status = solver.solve(model)
    budget.spend_cpsat(solver)
    return solver, status, decode, slack, scale, name


def cpsat(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    """Solve a model within the budget; fall back to LNS when the instance is too large."""
    start = start_order(problem, options)
    if too_large(problem):
        outcome = lns(problem, start, options.seed, budget)
        outcome.fallback = (f"C(N,k) > {MAX_SUBSETS} and (N={problem.shape[1]} > {MAX_COLUMNS} or R*N*G > "
                            f"{MAX_VARIABLES}): too large for CP-SAT; LNS instead")
        outcome.stats["method"] = "LNS (CP-SAT fallback)"
        return outcome
    share = budget.share(HINT_SHARE)
    hint = lns(problem, start, options.seed, share).solution
    budget.charge(share)
    build = _OPS_PER_TERM * _model_terms(problem)
    if budget.ops < build + _MIN_SOLVE_OPS:
        return Outcome(hint, fallback=f"the model (~{build:.2g} operations to build) does not fit the budget "
                                      f"left ({max(budget.ops, 0):.2g}); the LNS hint instead",
                       stats={"method": "LNS (CP-SAT fallback)"})
    solver, code, decode, slack, scale, name = _solve_model(problem, hint, options, budget)
    status = _STATUS.get(code, "unknown")
    log.debug("cpsat %s model: status %s bound %s", name, status, solver.best_objective_bound)
    stats = {"method": f"CP-SAT ({name} model)", "cpsat_status": status, "wall": solver.wall_time}
    if code in (cp_model.INFEASIBLE, cp_model.MODEL_INVALID):
        raise RuntimeError(f"CP-SAT reported {status} for a grouping model, which always has solutions (a bug)")
    if code == cp_model.UNKNOWN:
        # No solution within the time limit: the hint stands, the bound is unproven.
        return Outcome(hint, stats=stats)
    # Rounding each kept term to an integer moves the objective by at most `slack` units.
    bound = (solver.best_objective_bound + slack) / scale
    return Outcome(decode(solver), bound=bound, proven=code == cp_model.OPTIMAL, bound_kind="cpsat",
                   stats=stats)


SOLVER = Solver("cpsat", cpsat, "CP-SAT set-partitioning or assignment model for small instances (else LNS fallback)",
                exact=True)
