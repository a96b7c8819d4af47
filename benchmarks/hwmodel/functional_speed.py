"""Functional execution speed: a 256-filter x 2304-input layer over 1024 pixels.

Runs the cycle-stepped kernels (after a small warm-up call that compiles them)
for dense (alpha = 1) and column-combined (alpha = 8, one weight per cell per
group) forms on a 32 x 32 array, checks the outputs against the masked dense
product and the cycles against the timing model, and prints a markdown table.

    ./run python benchmarks/hwmodel/functional_speed.py
"""

import time

import numpy as np

from hwmodel import dense_from_packed, execute_packed, schedule

N, K, M, ROWS, COLS = 256, 2304, 1024, 32, 32


def packed_layer(alpha, rng):
    """Random column-combined layer: K columns in groups of alpha, one kept weight per cell."""
    groups = rng.permutation(K).reshape(-1, alpha)
    values = rng.integers(-127, 128, (N, groups.shape[0]))
    select = rng.integers(0, alpha, (N, groups.shape[0]))
    return values, select, groups


def main():
    rng = np.random.default_rng(0)
    acts = rng.integers(-128, 128, (M, K))
    for df in ("ws", "os", "is"):  # compile
        v, s, g = packed_layer(4, rng)
        execute_packed(v[:3, :5], s[:3, :5], g[:5], acts[:4], 4, 4, df)
    print("| dataflow | format | G | cycles | = timing model | exact | seconds |")
    print("|---|---|---|---|---|---|---|")
    for df in ("ws", "os", "is"):
        for alpha in (1, 8):
            v, s, g = packed_layer(alpha, rng)
            t0 = time.perf_counter()
            res = execute_packed(v, s, g, acts, ROWS, COLS, df)
            sec = time.perf_counter() - t0
            exact = np.array_equal(res.outputs, acts @ dense_from_packed(v, s, g, K).T)
            same = res.cycles == schedule(M, N, g.shape[0], ROWS, COLS, df).cycles
            name = "dense" if alpha == 1 else f"combined alpha={alpha}"
            print(f"| {df} | {name} | {g.shape[0]} | {res.cycles} | {same} | {exact} | {sec:.2f} |")


if __name__ == "__main__":
    main()
