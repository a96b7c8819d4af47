"""A P1 lower bound from the set-covering LP, by column generation, for any gamma.

Problem: P1 min-width combining partitions the nonempty columns into the
fewest groups of at most alpha columns whose conflicts (sum over rows of the
group's nonzeros in the row, minus one) are at most B = floor(gamma R).
Conflicts never decrease when a column joins, so any subset of a feasible
group is feasible, and covering with feasible groups is as good as
partitioning. Its LP relaxation over all feasible groups S,

    min sum_S y_S   s.t.   sum_{S containing j} y_S >= 1 for every column j,   y >= 0,

is a lower bound on the groups of any answer; for B = 0 it is the fractional
capacitated chromatic number, far stronger than the clique and capacity
bounds on dense conflict graphs (30.3 against 24 on the suite's random
128 x 128 instance at density 10%).

Method: column generation (Mehrotra and Trick) on the warm-started master of
:mod:`solvers.colgen`; its duals pi price new groups, and a group with
pi(S) > 1 improves the LP. Pricing is a maximum-weight set of at most alpha
columns with at most B conflicts: first a Numba greedy from the heaviest
seed columns (:func:`._pricing.greedy_pricing`, cheap, finds most improving
groups; for B > 0 also with conflicts priced at a share of the mean dual, and
zero-dual columns filling the groups up so they are maximal), then, when the greedy finds none, exactly: branch and bound for
B = 0 (:func:`._pricing.branch_and_bound_pricing`), CP-SAT otherwise (one
binary per column; per row a conflict count c_r >= sum_{j in row} x_j - 1,
sum_r c_r <= B, sum_j x_j <= alpha).

The bound does not need the LP solved to optimality: Farley's bound
sum(pi) / max(1, v) holds for any pi >= 0 and any proven v >= max_S pi(S)
(:func:`solvers.colgen.farley_bound`). v comes from the exact pricing (CP-SAT's
proven objective bound, rounded up for the integer scaling), or, when that
proves nothing, from the alpha largest duals. When the rounds are cut short a
reserved share of the budget prices the last duals exactly, so the bound is
valid and as strong as the work allows. Every round is charged to the work
budget (:mod:`solvers.budget`), so the bound does not depend on the clock.

Reference: A. Mehrotra, M. A. Trick, "A column generation approach for graph
coloring", INFORMS J. Computing 8(4), 1996, doi:10.1287/ijoc.8.4.344;
A. A. Farley, "A note on bounding a class of linear programming problems,
including cutting stock problems", Operations Research 38(5), 1990,
doi:10.1287/opre.38.5.922.
"""

from __future__ import annotations

import math

import numpy as np
from ortools.sat.python import cp_model

from ..budget import Budget
from ..colgen import Master, farley_bound
from ..problem import CombineProblem, Options
from ._kernels import column_bits, compact
from ._pricing import branch_and_bound_pricing, budget_branch_and_bound, greedy_pricing

__all__ = ["lp_bound", "greedy_pricing", "branch_and_bound_pricing", "budget_branch_and_bound", "MAX_COLUMNS"]

# Beyond this many nonempty columns the bound is not attempted (the master's rows alone
# outgrow what GLOP re-solves within a typical budget); 11008-column layers fit.
MAX_COLUMNS = 16384
# New groups added to the master LP per pricing round, best first: at least this many,
# more on large instances (fewer, larger rounds amortise the re-solves).
_GROUPS_PER_ROUND = 64
# Seed columns the greedy pricing grows a group from, heaviest duals first.
_MAX_SEEDS = 512
_MAX_PRICED_SEEDS = 128
# Conflict prices of the greedy pricing passes for B > 0, times the mean positive dual.
_MU_FACTORS = (0.0, 0.1, 0.3, 1.0)
# Share of the budget kept back to price the last duals exactly when the rounds are cut short.
_CERTIFY_SHARE = 0.2
# Share of the rounds' work left one exact pricing inside the rounds may use.
_PRICING_SHARE = 0.25
# Integer scale of the duals in the exact pricing model.
_SCALE = 1_000_000
# Improvement a priced group must bring: pi(S) > 1 + _EPS.
_EPS = 1e-6
# Branch-and-bound nodes before the exact pricing hands over to CP-SAT.
_NODE_LIMIT = 2_000_000


def _pricing_model(weight, row_cols, row_ptr, alpha: int, conflict_budget: int):
    """CP-SAT: the heaviest set of <= alpha columns with <= conflict_budget conflicts."""
    n = weight.size
    w_int = np.floor(weight * _SCALE).astype(np.int64)
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in range(n)]
    conflicts = []
    for r in range(row_ptr.size - 1):
        cols = row_cols[row_ptr[r]:row_ptr[r + 1]]
        if cols.size < 2:
            continue
        if conflict_budget == 0:
            model.add_at_most_one(x[j] for j in cols)
        else:
            c = model.new_int_var(0, min(int(cols.size) - 1, conflict_budget), "")
            model.add(c >= sum(x[j] for j in cols) - 1)
            conflicts.append(c)
    if conflicts:
        model.add(sum(conflicts) <= conflict_budget)
    model.add(sum(x) <= alpha)
    model.maximize(sum(int(w_int[j]) * x[j] for j in range(n) if w_int[j] > 0))
    return model, x


def _exact_pricing(weight, order, bits, csr, alpha: int, conflict_budget: int, options: Options,
                   budget: Budget, certify: float | None = None):
    """(improving groups, proven upper bound on max pi(S); inf when groups were found).

    Branch and bound first (row bits for B = 0, row counts otherwise): it
    finds improving groups or proves there are none (upper bound 1 + _EPS);
    past its node limit, CP-SAT within ``budget``. ``certify``: only the
    upper bound is wanted, and ``certify`` is the weight of a known group, so
    the branch and bound looks for the maximum itself, from just below it
    (raising its target on every set found).
    """
    col_ptr, col_rows, row_ptr, row_cols, R = csr
    # A node filters the candidates left against the new column's rows (bits for B = 0).
    per_node = order.size * (1.0 if conflict_budget == 0 else max(1.0, (col_ptr[-1] / max(col_ptr.size - 1, 1))))
    limit = min(_NODE_LIMIT, budget.steps_left(per_node))
    exact = certify is None
    if not exact or conflict_budget > 0:
        found = np.empty((_GROUPS_PER_ROUND if exact else 1, alpha), dtype=np.int64)
        target = 1 + _EPS if exact else certify * (1 - 1e-9)
        hits, finished, top, nodes = budget_branch_and_bound(order, col_ptr, col_rows, weight, alpha,
                                                            conflict_budget, R, target, limit, not exact, found)
        budget.spend(float(nodes) * per_node)
        if not exact and finished:
            return [], max(top, certify)
        if exact and hits:
            return [tuple(sorted(row[row >= 0].tolist())) for row in found[:hits]], math.inf
        if exact and finished:
            return [], 1 + _EPS
    else:
        found = np.empty((_GROUPS_PER_ROUND, alpha), dtype=np.int64)
        hits, finished = branch_and_bound_pricing(order, bits, weight, alpha, 1 + _EPS, limit, found)
        budget.spend(float(limit if not finished else 0) * per_node)
        if hits:
            return [tuple(sorted(row[row >= 0].tolist())) for row in found[:hits]], math.inf
        if finished:
            return [], 1 + _EPS
    model, x = _pricing_model(weight, row_cols, row_ptr, alpha, conflict_budget)
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
    group = tuple(j for j in range(len(x)) if solver.boolean_value(x[j]))
    return ([group] if weight[list(group)].sum() > 1 + _EPS else []), upper


def _positive_order(pi: np.ndarray) -> np.ndarray:
    order = np.argsort(-pi, kind="stable")
    return np.ascontiguousarray(order[pi[order] > 0], dtype=np.int64)


def lp_bound(problem: CombineProblem, labels: np.ndarray, options: Options,
             budget: Budget | None = None) -> tuple[int, dict]:
    """A lower bound on the groups of any answer, within ``budget`` (default: ``options.time_limit`` from now).

    ``labels`` is a feasible answer whose groups seed the master LP. Returns
    (bound, stats); the bound is 0 when the problem is out of scope (more than
    MAX_COLUMNS nonempty columns). ``stats["converged"]`` says whether the LP
    was solved to optimality (a rerun could not do better); ``stats["lp"]`` is
    the unrounded bound, ``stats["master"]`` the last master LP value (an
    upper bound on the LP, not a bound on the problem).
    """
    stats = {"rounds": 0, "groups": 0, "exact_pricings": 0, "converged": False, "lp": 0.0}
    n = problem.nonempty.size
    if n > MAX_COLUMNS or n == 0:
        return 0, stats
    budget = budget or Budget.start(options.time_limit)
    keep, (col_ptr, col_rows, row_ptr, row_cols) = compact(problem.mask)
    B, alpha = problem.budget, problem.alpha
    bits = column_bits(col_ptr, col_rows, problem.shape[0]) if B == 0 else None
    csr = (col_ptr, col_rows, row_ptr, row_cols, problem.shape[0])
    local = labels[keep]
    master = Master(n, "cover")
    for group in sorted({tuple(np.flatnonzero(local == g).tolist()) for g in range(int(local.max()) + 1)}
                        | {(j,) for j in range(n)}):
        master.add(group)
    per_round = max(_GROUPS_PER_ROUND, n // 2)
    members = np.empty((min(n, _MAX_SEEDS), alpha), dtype=np.int64)
    values = np.empty(min(n, _MAX_SEEDS))
    col_nnz = np.diff(col_ptr)

    def exact(pi, stage_budget, certify=None):
        stats["exact_pricings"] += 1
        return _exact_pricing(pi, _positive_order(pi), bits, csr, alpha, B, options, stage_budget, certify)

    def heuristic(pi):
        """Improving groups the greedy grows under the duals ``pi``, best first."""
        # Seeds among the positive duals; zero-dual columns last, so groups are filled up (maximal).
        order = np.argsort(-pi, kind="stable")
        seeds = min(int(np.count_nonzero(pi > 0)), _MAX_SEEDS)
        grown = set()
        for mu in (0.0,) if B == 0 else tuple(f * float(pi[order[:seeds]].mean()) for f in _MU_FACTORS):
            # The conflict-priced passes scan every candidate per step: fewer seeds.
            tries = seeds if mu == 0.0 else min(seeds, _MAX_PRICED_SEEDS)
            greedy_pricing(order, tries, col_ptr, col_rows, pi, alpha, B, problem.shape[0], mu, members, values)
            rounds.spend(tries * float(col_nnz.sum()) * (1 if mu == 0.0 else alpha))
            grown |= {tuple(sorted(members[s][members[s] >= 0].tolist())) for s in range(tries)}
        scored = sorted(((float(pi[list(g)].sum()), g) for g in grown), reverse=True)
        fresh = [g for value, g in scored if value > 1 + _EPS and g not in master][:per_round]
        return fresh, scored[0][0] if scored else 0.0

    best, last, top, converged = 0.0, None, 0.0, False
    rounds = budget.share(1.0 - _CERTIFY_SHARE)
    while not rounds.exhausted:
        pi = master.solve(rounds)
        if pi is None:
            break
        stats["rounds"] += 1
        last = pi
        fresh, top = heuristic(pi)
        if not fresh:
            # The greedy's best value is no upper bound on pricing; only the exact model gives one.
            pricing = rounds.share(_PRICING_SHARE)
            priced, upper = exact(pi, pricing)
            rounds.charge(pricing)
            best = max(best, farley_bound(pi, upper))
            fresh = [g for g in dict.fromkeys(priced) if g not in master]
            if not fresh:
                converged = upper <= 1 + _EPS
                break
        for group in fresh:
            master.add(group)
    budget.charge(rounds)
    if not converged and last is not None:
        _, upper = exact(last, budget, certify=top)
        best = max(best, farley_bound(last, upper))
    stats.update(groups=len(master), pivots=master.pivots, lp=best, master=master.value, converged=converged)
    return int(math.ceil(best - 1e-6)), stats
