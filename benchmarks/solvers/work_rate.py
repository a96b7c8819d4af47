"""Operations per second the budgeted searches achieve, against the rate their work budget assumes.

Each search runs for at most 2 s of wall time on a random instance with an
unlimited operation budget (so the clock ends it), after a warm-up that compiles
its kernels, and charges its own cost model as it goes (solvers.budget).  The
budget credits ``OPS_PER_SECOND`` operations per second of time limit; "slack"
= achieved / credited must stay above 1 for the budget, not the clock, to end
a search (and so for the same seed to give the same answer).  It is shown for
runs long enough (>= 0.5 s) for a budget to matter.

Run (from the repository root):
    ./run python benchmarks/solvers/work_rate.py
"""

from __future__ import annotations

import time

import numpy as np

from solvers import Budget, combine, group, permdiag
from solvers.budget import OPS_PER_SECOND
from solvers.problem import CombineProblem, GroupProblem, Options

SECONDS = 2.0
MIN_SECONDS = 0.5
P2_INSTANCES = [(64, 64, 4, 2), (128, 256, 4, 2), (32, 576, 16, 1), (256, 1024, 4, 2)]
P2_SEARCHES = ["apex-swap", "tabu", "apex-window2", "anneal", "lns", "ria"]
#: (rows, columns, density, alpha, gamma)
P1_INSTANCES = [(64, 256, 0.1, 8, 0.0), (128, 256, 0.1, 8, 0.05), (256, 512, 0.1, 8, 0.02), (128, 2048, 0.1, 8, 0.05)]
P1_SEARCHES = ["tabu", "anneal"]
#: PermDNN projection: (rows, columns, p, solver)
PERMDIAG_INSTANCES = [(8, 10, 2, "exact"), (256, 256, 8, "assign"), (512, 512, 8, "assign"), (1024, 1024, 4, "assign")]


def _p1(R, N, density, alpha, gamma):
    rng = np.random.default_rng([R, N])
    return CombineProblem(rng.random((R, N)) * (rng.random((R, N)) < density), alpha, gamma)


def _p2(R, N, k, n):
    return GroupProblem(np.random.default_rng([R, N]).random((R, N)), k=k, n=n)


def _permdiag(R, N, p):
    return permdiag.PermDiagProblem(np.random.default_rng([R, N, p]).standard_normal((R, N)) ** 2, p)


def _measure(module, problem, name):
    """(operations, seconds) of one clock-bound run with no operation limit."""
    budget = Budget.unlimited(time.perf_counter() + SECONDS)
    result = module.solve(problem, name, Options(time_limit=SECONDS, seed=0), budget)
    return result.ops, result.seconds


def main():
    module_of = {"p1": combine, "p2": group, "permdiag": permdiag}
    for name in P1_SEARCHES:
        combine.solve(_p1(*P1_INSTANCES[0]), name, Options(time_limit=30))
    for name in P2_SEARCHES:
        group.solve(_p2(8, 16, 4, 2), name, Options(time_limit=30))
    permdiag.solve(_permdiag(8, 8, 2), "assign", Options(time_limit=30))
    print(f"credited: {OPS_PER_SECOND:.2g} operations per second of time limit\n")
    print("| problem | search | instance | operations | seconds | ops/s | slack |")
    print("|---|---|---|---|---|---|---|")
    slacks = []
    runs = [("p1", name, f"{R} x {N}, density {d}, alpha {a}, gamma {g}", _p1(R, N, d, a, g))
            for R, N, d, a, g in P1_INSTANCES for name in P1_SEARCHES]
    runs += [("p2", name, f"{R} x {N}, {n}:{k}", _p2(R, N, k, n))
             for R, N, k, n in P2_INSTANCES for name in P2_SEARCHES
             # O(N^2) swap scans: the portfolio does not use them above 256 columns
             if not (name in ("apex-swap", "tabu", "apex-window2") and N > 256)]
    runs += [("permdiag", name, f"{R} x {N}, p = {p}", _permdiag(R, N, p)) for R, N, p, name in PERMDIAG_INSTANCES]
    for prob, name, label, problem in runs:
        ops, secs = _measure(module_of[prob], problem, name)
        rate = ops / secs
        # a search that ends on its own within MIN_SECONDS never meets its budget; its rate is overhead
        slack = "-"
        if secs >= MIN_SECONDS:
            slacks.append(rate / OPS_PER_SECOND)
            slack = f"{slacks[-1]:.1f}"
        print(f"| {prob} | {name} | {label} | {ops:.3g} | {secs:.2f} | {rate:.3g} | {slack} |")
    print(f"\nlowest slack over runs of >= {MIN_SECONDS} s: {min(slacks):.1f}")


if __name__ == "__main__":
    main()
