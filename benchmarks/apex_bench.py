"""P2 on the public NVIDIA Apex instance: every grouping solver side by side.

Instance: ``np.random.seed(1); W = np.random.rand(128, 64)`` (rows x columns),
k = 4, n = 2 (2:4 sparsity). Apex's published figures (Pool & Yu, NeurIPS 2021):
kept 2852.377 without permutation, rows bound 3042.332, efficacy 35.5% (window
8) and 36.6% (window 12). ``--lp`` also solves the LP relaxation of the exact
set-partitioning model over all C(64, 4) groups (scipy HiGHS, ~30 s), an upper
bound on any grouping's kept magnitude, tighter than the rows bound.

Run: ``./run python benchmarks/apex_bench.py [--time-limit 10] [--seed 0] [--lp]``
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from solvers import GroupProblem, Options
from solvers.group import solve
from solvers.group._kernels import all_group_kept, prepare

APEX_IDENTITY = 2852.377
APEX_ROWS_BOUND = 3042.332
APEX_PUBLISHED = {"Apex window 8 (published)": 0.355, "Apex window 12 (published)": 0.366}
# (solver, time limit or None for the command-line one)
RUNS = [
    ("identity", None), ("apex-swap", None), ("apex-window2", None), ("apex-window3", None),
    ("anneal", None), ("lns", None), ("ria", None), ("tabu", None), ("auto", 2.0),
]


def apex_instance() -> GroupProblem:
    np.random.seed(1)
    return GroupProblem.from_weights(np.random.rand(128, 64), k=4, n=2)


def lp_bound(problem: GroupProblem) -> float:
    """LP relaxation of set partitioning over every k-subset of the columns."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    N, k = problem.shape[1], problem.k
    subsets = np.array(list(itertools.combinations(range(N), k)), dtype=np.int64)
    values = all_group_kept(prepare(problem.magnitude), subsets.ravel(), k, problem.n)
    S = len(subsets)
    cover = sp.csr_matrix((np.ones(k * S), (subsets.ravel(), np.repeat(np.arange(S), k))), shape=(N, S))
    res = linprog(-values, A_eq=cover, b_eq=np.ones(N), bounds=(0, 1), method="highs")
    return float(-res.fun)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per solver (auto always gets 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lp", action="store_true", help="also compute the set-partitioning LP bound")
    args = ap.parse_args()
    problem = apex_instance()

    # Compile (or load from cache) every kernel on a tiny instance so timings measure solving.
    tiny = GroupProblem.from_weights(np.random.default_rng(0).random((4, 16)), k=4, n=2)
    for name, _ in RUNS:
        solve(tiny, name, Options(time_limit=1.0))

    rows = []
    for name, limit in RUNS:
        options = Options(time_limit=limit or args.time_limit, seed=args.seed)
        cpu = time.process_time()
        result = solve(problem, name, options)
        cpu = time.process_time() - cpu
        rows.append((name, f"{result.kept:.3f}", f"{100 * result.efficacy:.2f}%", f"{result.seconds:.2f}",
                     f"{cpu:.2f}", result.status))
    identity = rows[0]
    bound = solve(problem, "identity").upper_bound

    print(f"identity kept {identity[1]} (Apex: {APEX_IDENTITY}), rows bound {bound:.3f} (Apex: {APEX_ROWS_BOUND})")
    if args.lp:
        lp = lp_bound(problem)
        base = float(identity[1])
        print(f"set-partitioning LP bound {lp:.3f}: efficacy <= {100 * (lp - base) / (bound - base):.2f}%")
    print()
    print("| solver | kept | efficacy | wall s | cpu s | status |")
    print("|---|---:|---:|---:|---:|---|")
    for label, eff in APEX_PUBLISHED.items():
        print(f"| {label} | | {100 * eff:.1f}% | | | |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
