"""A P2 upper bound from the set-partitioning LP, by column generation over k-subsets.

Problem: P2 fixed-ratio grouping splits the N columns into m = N / k groups
of k; a group S keeps c_S = sum over rows of its n largest magnitudes in the
row. The LP relaxation of the exact set-partitioning model,

    max sum_S c_S y_S   s.t.   sum_{S containing j} y_S = 1 for every column j,   y >= 0,

bounds the kept magnitude of any grouping from above, far tighter than the
rows bound (each row keeps its own top n N / k): on the Apex instance
(128 x 64, k = 4, n = 2) 2927.8 against 3042.3.

Method: column generation on the warm-started master of :mod:`solvers.colgen`,
seeded with the groups of a given order (a feasible partition). Pricing is the
k-subset of largest reduced cost c_S - pi(S); it is solved exactly by
enumeration when C(N, k) <= :data:`MAX_SUBSETS` (the values c_S computed once,
each round one pass over the subsets, charged to the work budget), adding the
best subsets to the master. For any duals pi and the exact pricing optimum v,
sum(pi) + m v is a valid upper bound (:func:`solvers.colgen.partition_bound`:
every grouping has exactly m groups), so the bound holds whenever the rounds
stop, and equals the LP value once v <= 0 (converged). Beyond
:data:`MAX_SUBSETS` no exact pricing is affordable and no bound is claimed
(the rows bound stands). k = 2 is solved exactly by matching instead.

Reference: G. Desaulniers, J. Desrosiers, M. M. Solomon (eds.), "Column
Generation", Springer 2005, chapter 1 (the Lagrangian bound of the master);
the set-partitioning view of channel permutation as in J. Pool, C. Yu,
"Channel Permutations for N:M Sparsity", NeurIPS 2021.
"""

from __future__ import annotations

import math

import numpy as np

from ..budget import Budget
from ..colgen import Master, partition_bound
from ..problem import GroupProblem
from ._kernels import all_group_kept, prepare
from ._lp_kernels import k_subsets, reduced_costs

__all__ = ["lp_bound", "applies", "MAX_SUBSETS"]

#: Largest C(N, k) priced by enumeration (memory: k int64 and one float per subset).
MAX_SUBSETS = 2_000_000
# Subsets added to the master per round, best reduced cost first: at least this many.
_SUBSETS_PER_ROUND = 64
# Reduced cost below which the LP counts as solved, relative to the largest group value.
_REL_EPS = 1e-9


def applies(problem: GroupProblem) -> str | None:
    """None when the bound can be computed, else why not (one line)."""
    if problem.k == 2:
        return "k = 2 is solved exactly by matching"
    if math.comb(problem.shape[1], problem.k) > MAX_SUBSETS:
        return f"C({problem.shape[1]}, {problem.k}) > {MAX_SUBSETS} subsets: no exact pricing"
    return None


def lp_bound(problem: GroupProblem, order: np.ndarray, budget: Budget) -> tuple[float | None, dict]:
    """An upper bound on the kept magnitude of any grouping, within ``budget``; (bound or None, stats).

    ``order`` is a feasible answer whose groups seed the master. None when
    :func:`applies` says no or the budget ends before a first bound;
    ``stats["converged"]`` says whether the LP was solved to optimality.
    """
    stats = {"rounds": 0, "groups": 0, "converged": False}
    why = applies(problem)
    if why is not None:
        stats["skipped"] = why
        return None, stats
    R, N = problem.shape
    k, n, m = problem.k, problem.n, problem.num_groups
    count = math.comb(N, k)
    cost = float(count) * (k + 2) * R
    if cost > budget.ops:
        stats["skipped"] = f"enumerating {count} subsets (~{cost:.2g} operations) does not fit the budget"
        return None, stats
    budget.spend(cost)
    magT = prepare(problem.magnitude)
    subsets = k_subsets(N, k, count)
    values = all_group_kept(magT, subsets.ravel(), k, n)
    eps = _REL_EPS * max(1.0, float(values.max()))
    order = np.asarray(order, dtype=np.int64)
    master = Master(N, "partition")
    for g in range(m):
        group = np.sort(order[g * k:(g + 1) * k])
        master.add(group, float(all_group_kept(magT, group, k, n)[0]))
    reduced = np.empty(count)
    per_round = max(_SUBSETS_PER_ROUND, N)
    best = None
    while not budget.exhausted:
        pi = master.solve(budget)
        if pi is None:
            break
        stats["rounds"] += 1
        v = reduced_costs(subsets, values, pi, reduced)
        budget.spend(float(count) * (k + 1))
        bound = partition_bound(pi, v, m)
        best = bound if best is None else min(best, bound)
        if v <= eps:
            stats["converged"] = True
            break
        top = np.argpartition(-reduced, per_round)[:per_round] if count > per_round else np.arange(count)
        for s in top[np.argsort(-reduced[top], kind="stable")]:
            if reduced[s] > eps:
                master.add(subsets[s], float(values[s]))
    stats.update(groups=len(master), pivots=master.pivots, master=master.value)
    return best, stats
