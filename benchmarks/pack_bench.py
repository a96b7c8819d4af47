"""Benchmark of the fast P1 solvers: greedy-cc (column combining's packer), ffd and dsatur.

Prints markdown tables:

1. random layers (R = 64..256, N = 128..4096, several densities) and the
   embedded digits CNN's layers (magnitude-pruned) at alpha = 8, gamma = 0 and
   0.1: groups per solver, the lower bound, gap to it, seconds per solver and
   the speed ratio of ffd over greedy-cc;
2. dsatur against networkx's ``greedy_color(strategy="DSATUR")`` at 2048
   columns (alpha >= N, gamma = 0: plain colouring);
3. the time to pack a 128 x 65536 layer.

Every answer passes the checker (``solvers.combine.solve``). Seconds are solver time only, best of 3 runs for the Numba
solvers (1 run for greedy-cc), after a warm-up that compiles the kernels.

    ./run python benchmarks/pack_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from arrange.bench import conflict_edges, networkx_dsatur
from solvers import Budget
from solvers.combine import SOLVERS, solve
from solvers.problem import CombineProblem, Options

NAMES = ("greedy-cc", "ffd", "dsatur")
RANDOM = [  # (R, N, density)
    (64, 128, 0.2), (64, 512, 0.1), (128, 512, 0.05), (128, 1024, 0.1), (128, 2048, 0.05),
    (256, 1024, 0.1), (128, 4096, 0.02), (256, 4096, 0.05),
]
QUICK = RANDOM[:4]


def random_layer(R: int, N: int, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((R, N)) * (rng.random((R, N)) < density)


def digits_layers(sparsity: float) -> list[tuple[str, np.ndarray]]:
    """The digits CNN's layers pruned to ``sparsity``; empty (with a note) if the model is not available."""
    try:
        from arrange.models.digits import load_digits_layers
        from arrange.prune import magnitude_prune
    except ImportError as exc:
        print(f"(digits CNN skipped: {exc})")
        return []
    return [(f"digits {layer.name} s={sparsity}", magnitude_prune(layer.matrix, sparsity))
            for layer in load_digits_layers().layers]


def timed(name: str, problem: CombineProblem, repeats: int) -> tuple[np.ndarray, float]:
    """Labels and best wall time of ``repeats`` runs of a registered solver."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        options = Options()
        labels = SOLVERS[name].run(problem, options, Budget.start(options.time_limit)).solution
        best = min(best, time.perf_counter() - start)
    return labels, best


def warm_up():
    for gamma in (0.0, 0.1):
        problem = CombineProblem.from_weights(random_layer(16, 64, 0.3), alpha=4, gamma=gamma)
        for name in NAMES:
            solve(problem, name)


def solver_row(label: str, W: np.ndarray, alpha: int, gamma: float) -> str:
    problem = CombineProblem.from_weights(W, alpha=alpha, gamma=gamma)
    groups, secs, bound = {}, {}, None
    for name in NAMES:
        result = solve(problem, name)
        _, secs[name] = timed(name, problem, 1 if name == "greedy-cc" else 3)
        groups[name] = result.num_groups
        bound = result.lower_bound
    gaps = " | ".join(f"{100 * (groups[n] - bound) / bound:.1f}%" for n in NAMES)
    times = " | ".join(f"{secs[n]:.4f}" for n in NAMES)
    R, N = W.shape
    return (f"| {label} | {R}x{N} | {gamma} | {bound} | " + " | ".join(str(groups[n]) for n in NAMES)
            + f" | {gaps} | {times} | {secs['greedy-cc'] / secs['ffd']:.0f}x |")


def table_solvers(quick: bool):
    print("## P1 fast solvers (alpha = 8)\n")
    print("| instance | RxN | gamma | LB | greedy-cc | ffd | dsatur | gap cc | gap ffd | gap dsatur "
          "| s cc | s ffd | s dsatur | ffd vs cc |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    instances = [(f"random d={d}", random_layer(R, N, d)) for R, N, d in (QUICK if quick else RANDOM)]
    for sparsity in (0.5, 0.8):
        instances += digits_layers(sparsity)
    for gamma in (0.0, 0.1):
        for label, W in instances:
            print(solver_row(label, W, 8, gamma), flush=True)


def table_networkx(quick: bool):
    print("\n## DSatur vs networkx greedy_color(strategy=\"DSATUR\"), 2048 columns, alpha >= N, gamma = 0\n")
    print("| instance | conflict edges | networkx colours | dsatur groups | networkx s | dsatur s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for R, d in ([(128, 0.01)] if quick else [(256, 0.005), (128, 0.01), (128, 0.02)]):
        W = random_layer(R, 2048, d)
        problem = CombineProblem.from_weights(W, alpha=2048)
        ours = solve(problem, "dsatur").num_groups
        _, secs = timed("dsatur", problem, 3)
        edges = conflict_edges(problem.mask)
        theirs, nx_secs = networkx_dsatur(problem.mask, edges)
        print(f"| {R}x2048 d={d} | {edges[0].size} | {theirs} | {ours} | {nx_secs:.2f} | {secs:.4f} "
              f"| {nx_secs / secs:.0f}x |", flush=True)


# Time limit for the 128 x 65536 table, long enough for DSatur to finish.
LARGE_TIME_LIMIT = 120.0


def table_large(quick: bool):
    print("\n## 128 x 65536 layer, alpha = 8\n")
    print("| density | gamma | solver | groups | LB | solver s | with check and bound s |")
    print("|---|---|---|---|---|---|---|")
    cases = [(0.02, "ffd"), (0.02, "dsatur"), (0.05, "ffd"), (0.1, "ffd")]
    for d, name in (cases[:1] if quick else cases):
        W = random_layer(128, 65536, d)
        for gamma in (0.0, 0.1):
            problem = CombineProblem.from_weights(W, alpha=8, gamma=gamma)
            start = time.perf_counter()
            result = solve(problem, name, Options(time_limit=LARGE_TIME_LIMIT))
            total = time.perf_counter() - start
            note = " (cut by the time limit: ffd's answer)" if result.fallback else ""
            print(f"| {d} | {gamma} | {name}{note} | {result.num_groups} | {result.lower_bound} "
                  f"| {result.seconds:.2f} | {total:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small instances only")
    args = parser.parse_args()
    warm_up()
    table_solvers(args.quick)
    table_networkx(args.quick)
    table_large(args.quick)


if __name__ == "__main__":
    main()
