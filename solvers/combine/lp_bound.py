"""A P1 lower bound from the set-covering LP, by column generation (gamma = 0).

Problem: P1 min-width combining with gamma = 0 is capacitated colouring: cover
the nonempty columns with the fewest conflict-free groups of at most alpha
columns. Its LP relaxation over all such groups S,

    min sum_S y_S   s.t.   sum_{S containing j} y_S >= 1 for every column j,   y >= 0,

(the fractional capacitated chromatic number) is far stronger than the clique
and capacity bounds on dense conflict graphs: 30.3 against 24 on the suite's
random 128 x 128 instance at density 10%.

Method: column generation (Mehrotra and Trick). The restricted master LP over
the groups found so far is solved with GLOP; its duals pi price new groups:
a group with pi(S) > 1 improves the LP. Pricing is a maximum-weight
conflict-free set of at most alpha columns: first a Numba greedy from every
column (cheap, finds most improving groups), then, when the greedy finds
none, CP-SAT exactly (one AtMostOne per row, a cardinality constraint).

The bound does not need the LP solved to optimality: for any pi >= 0 and any
upper bound v on max_S pi(S), pi / max(1, v) is feasible for the dual of the
full LP, so sum(pi) / max(1, v) is a lower bound (Farley's bound). v comes
from CP-SAT's proven objective bound, rounded up for the integer scaling, so
the bound is valid even when pricing stops at its time limit. The rounds stop
when a work budget derived from the time limit is spent (:mod:`solvers.budget`;
a round is charged for its master LP re-solve), so the bound does not depend
on the clock.

Reference: A. Mehrotra, M. A. Trick, "A column generation approach for graph
coloring", INFORMS J. Computing 8(4), 1996, doi:10.1287/ijoc.8.4.344;
A. A. Farley, "A note on bounding a class of linear programming problems,
including cutting stock problems", Operations Research 38(5), 1990,
doi:10.1287/opre.38.5.922.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from ..budget import Budget
from ..problem import CombineProblem, Options
from ._kernels import column_bits, compact

__all__ = ["lp_bound", "greedy_pricing", "branch_and_bound_pricing", "MAX_COLUMNS"]

# Beyond this many nonempty columns the bound is not attempted: the master LP re-solves
# get slow (GLOP does not warm-start through pywraplp), and on such layers the capacity
# bound is usually tight already.
MAX_COLUMNS = 1024
# Operations charged per (group in the master LP x column) for one re-solve: GLOP takes
# 55-80 ns per such pair on the medium suite here, about half the budget's rate.
_LP_OPS = 40
# New groups added to the master LP per pricing round, best first.
_GROUPS_PER_ROUND = 64
# Integer scale of the duals in the exact pricing model.
_SCALE = 1_000_000
# Improvement a priced group must bring: pi(S) > 1 + _EPS.
_EPS = 1e-6
# Branch-and-bound nodes before the exact pricing hands over to CP-SAT.
_NODE_LIMIT = 2_000_000


@njit(cache=True)
def greedy_pricing(order, bits, weight, alpha, members, values):
    """From every seed column in ``order``, add the heaviest compatible columns up to alpha.

    ``order`` lists the columns of positive weight, heaviest first. Row
    ``s`` of ``members`` (-1 padded) receives the group grown from order[s]
    and ``values[s]`` its weight.
    """
    W = bits.shape[1]
    occ = np.empty(W, dtype=np.uint64)
    for s in range(order.shape[0]):
        seed = order[s]
        for w in range(W):
            occ[w] = bits[seed, w]
        members[s, :] = -1
        members[s, 0] = seed
        size = 1
        total = weight[seed]
        for t in range(order.shape[0]):
            if size == alpha:
                break
            j = order[t]
            if j == seed:
                continue
            clash = False
            for w in range(W):
                if occ[w] & bits[j, w]:
                    clash = True
                    break
            if clash:
                continue
            for w in range(W):
                occ[w] |= bits[j, w]
            members[s, size] = j
            size += 1
            total += weight[j]
        values[s] = total


@njit(cache=True)
def branch_and_bound_pricing(order, bits, weight, alpha, target, node_limit, found):
    """Conflict-free sets of at most alpha columns weighing more than ``target``, by branch and bound.

    ``order`` lists the columns of positive weight, heaviest first. Each level
    keeps the candidates compatible with the columns chosen so far (as
    maximum-clique algorithms do), and a level ends once its chosen weight
    plus the heaviest candidates that could still join cannot beat the best.
    Row i of ``found`` (-1 padded) receives the i-th set heavier than
    ``target``; the search stops when ``found`` is full. Returns (sets found,
    finished): a finished search that found none proves that no set weighs
    more than ``target``; a run past ``node_limit`` nodes proves nothing.
    """
    n = order.shape[0]
    W = bits.shape[1]
    cands = np.empty((alpha + 1, max(n, 1)), dtype=np.int64)
    count = np.zeros(alpha + 1, dtype=np.int64)
    ptr = np.zeros(alpha + 1, dtype=np.int64)
    occ = np.zeros((alpha + 1, W), dtype=np.uint64)
    value = np.zeros(alpha + 1)
    chosen = np.full(alpha, -1, dtype=np.int64)
    best = target
    hits = 0
    found[:, :] = -1
    for t in range(n):
        cands[0, t] = t
    count[0] = n
    nodes = 0
    level = 0
    while level >= 0:
        if level == alpha or ptr[level] >= count[level]:
            level -= 1
            continue
        first = ptr[level]
        ptr[level] += 1
        # Candidates are in weight order, so the next ones are the heaviest still possible.
        ub = value[level]
        for t in range(first, min(count[level], first + alpha - level)):
            ub += weight[order[cands[level, t]]]
        if ub <= best:
            level -= 1
            continue
        j = order[cands[level, first]]
        chosen[level] = j
        v = value[level] + weight[j]
        if v > best:
            found[hits, :level + 1] = chosen[:level + 1]
            hits += 1
            if hits == found.shape[0]:
                return hits, True
        nodes += 1
        if nodes > node_limit:
            return hits, False
        if level + 1 == alpha:
            continue
        c = 0
        for t in range(ptr[level], count[level]):
            jj = order[cands[level, t]]
            clash = False
            for w in range(W):
                if (occ[level, w] | bits[j, w]) & bits[jj, w]:
                    clash = True
                    break
            if not clash:
                cands[level + 1, c] = cands[level, t]
                c += 1
        if c:
            for w in range(W):
                occ[level + 1, w] = occ[level, w] | bits[j, w]
            value[level + 1] = v
            count[level + 1] = c
            ptr[level + 1] = 0
            level += 1
    return hits, True


def _exact_pricing(weight, order, bits, row_cols, row_ptr, alpha, options: Options, budget: Budget):
    """(improving groups, upper bound on max pi(S), inf when groups were found).

    Branch and bound first: it finds improving groups or proves there are
    none (upper bound 1 + _EPS); past its node limit, CP-SAT within ``budget``.
    """
    found = np.empty((_GROUPS_PER_ROUND, alpha), dtype=np.int64)
    hits, finished = branch_and_bound_pricing(order, bits, weight, alpha, 1 + _EPS, _NODE_LIMIT, found)
    if hits:
        return [tuple(sorted(row[row >= 0].tolist())) for row in found[:hits]], math.inf
    if finished:
        return [], 1 + _EPS
    n = weight.size
    w_int = np.floor(weight * _SCALE).astype(np.int64)
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in range(n)]
    for r in range(row_ptr.size - 1):
        cols = row_cols[row_ptr[r]:row_ptr[r + 1]]
        if cols.size > 1:
            model.add_at_most_one(x[j] for j in cols)
    model.add(sum(x) <= alpha)
    model.maximize(sum(int(w_int[j]) * x[j] for j in range(n) if w_int[j] > 0))
    solver = budget.cpsat_solver(options.seed, options.workers)
    status = solver.solve(model)
    budget.spend_cpsat(solver)
    # Without any constraint no group beats the alpha largest weights; CP-SAT's bound
    # counts only once it has a solution (with none its bound field means nothing).
    upper = float(np.sort(weight)[-alpha:].sum())
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return [], upper
    # Flooring lost < 1 / _SCALE per member, at most alpha members.
    upper = min(upper, (solver.best_objective_bound + alpha) / _SCALE)
    group = tuple(j for j in range(n) if solver.boolean_value(x[j]))
    return ([group] if weight[list(group)].sum() > 1 + _EPS else []), upper


class _Master:
    """The restricted master LP, kept in one GLOP model that grows by columns (warm starts)."""

    def __init__(self, n: int):
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        self.rows = [self.lp.Constraint(1.0, self.lp.infinity()) for _ in range(n)]
        self.objective = self.lp.Objective()
        self.objective.SetMinimization()

    def add(self, group) -> None:
        var = self.lp.NumVar(0.0, self.lp.infinity(), "")
        self.objective.SetCoefficient(var, 1.0)
        for j in group:
            self.rows[j].SetCoefficient(var, 1.0)

    def duals(self) -> np.ndarray | None:
        """Duals of the cover rows clipped at 0, or None if GLOP failed."""
        if self.lp.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        return np.maximum([c.dual_value() for c in self.rows], 0.0)


def _farley(pi: np.ndarray, upper: float) -> float:
    """sum(pi) / max(1, upper): a lower bound when upper >= max_S pi(S) over all groups."""
    return float(pi.sum()) / max(1.0, upper)


def lp_bound(problem: CombineProblem, labels: np.ndarray, options: Options,
             budget: Budget | None = None) -> tuple[int, dict]:
    """A lower bound on the groups of any answer, within ``budget`` (default: ``options.time_limit`` from now).

    ``labels`` is a feasible answer whose groups seed the master LP. Returns
    (bound, stats); the bound is 0 when the problem is out of scope (gamma > 0
    or more than MAX_COLUMNS nonempty columns). ``stats["converged"]`` says
    whether the LP was solved to optimality (a rerun could not do better).
    """
    stats = {"rounds": 0, "groups": 0, "exact_pricings": 0, "converged": False}
    if problem.budget != 0 or problem.nonempty.size > MAX_COLUMNS or problem.nonempty.size == 0:
        return 0, stats
    budget = budget or Budget.start(options.time_limit)
    keep, (col_ptr, col_rows, row_ptr, row_cols) = compact(problem.mask)
    n = keep.size
    bits = column_bits(col_ptr, col_rows, problem.shape[0])
    local = labels[keep]
    groups = {tuple(np.flatnonzero(local == g).tolist()) for g in range(int(local.max()) + 1)}
    groups |= {(j,) for j in range(n)}
    groups = sorted(groups)
    seen = set(groups)
    master = _Master(n)
    for group in groups:
        master.add(group)
    members = np.empty((n, problem.alpha), dtype=np.int64)
    values = np.empty(n)
    best = 0.0
    converged = False
    while not budget.exhausted:
        stats["rounds"] += 1
        budget.spend(_LP_OPS * len(groups) * n)
        pi = master.duals()
        if pi is None:
            break
        order = np.argsort(-pi, kind="stable")
        order = np.ascontiguousarray(order[pi[order] > 0], dtype=np.int64)
        greedy_pricing(order, bits, pi, problem.alpha, members[:order.size], values[:order.size])
        improving = sorted(((values[s], tuple(sorted(members[s][members[s] >= 0].tolist())))
                            for s in range(order.size) if values[s] > 1 + _EPS), reverse=True)
        fresh = list(dict.fromkeys(g for _, g in improving if g not in seen))[:_GROUPS_PER_ROUND]
        if not fresh:
            # The greedy's best value is no upper bound on pricing; only the exact model gives one.
            stats["exact_pricings"] += 1
            priced, upper = _exact_pricing(pi, order, bits, row_cols, row_ptr, problem.alpha, options, budget)
            best = max(best, _farley(pi, upper))
            fresh = [g for g in dict.fromkeys(priced) if g not in seen]
            if not fresh:
                converged = upper <= 1 + _EPS
                break
        for group in fresh:
            master.add(group)
            groups.append(group)
            seen.add(group)
    stats["groups"] = len(groups)
    stats["lp"] = best
    stats["converged"] = converged
    return int(math.ceil(best - 1e-6)), stats
