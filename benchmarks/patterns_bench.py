"""PCNN pattern selection (greedy, CP-SAT, frequency) and PENNI sparse coding on CNN conv layers.

Prints two markdown tables:
1. per layer and pattern solver: kept energy (value), the solver's own upper
   bound, the gap to the best bound any solver proved, and seconds;
2. per layer, PENNI: relative error after the SVD start, after exact support
   selection and after ALS, and the parameter and MAC reductions (basis counted).

Layers: the embedded digits CNN, plus a
synthetic CNN whose kernels are noisy mixtures of a few smooth prototypes (the
structure trained 3x3 kernels have; i.i.d. Gaussian kernels have no shared
patterns to find).

Run: ./run python benchmarks/patterns_bench.py [--time-limit 10] [--n 4] [--K 8]
"""

from __future__ import annotations

import argparse

import numpy as np

from arrange.formats import penni
from arrange.models.digits import load_digits_layers
from solvers.patterns import SOLVERS, select_patterns
from solvers.problem import Options


def synthetic_layers(seed: int) -> list[tuple[str, np.ndarray]]:
    """Conv layers whose kernels mix 6 smooth 3x3 prototypes plus 30% noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:2, -1:2]
    protos = np.stack([np.exp(-((x - a) ** 2 + (y - b) ** 2)) for a, b in
                       [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)]]).reshape(6, 9)
    layers = []
    for name, (O, I) in [("syn.conv1", (16, 3)), ("syn.conv2", (32, 16)), ("syn.conv3", (32, 32))]:
        mix = rng.standard_normal((O * I, 6)) * (rng.random((O * I, 6)) < 0.4)
        W = mix @ protos + 0.3 * rng.standard_normal((O * I, 9))
        layers.append((name, W.reshape(O, I, 3, 3)))
    return layers


def digits_layers() -> list[tuple[str, np.ndarray]]:
    """The digits CNN's conv layers (kernels larger than 1x1)."""
    return [(f"digits.{L.name}", np.asarray(L.weight, dtype=np.float64)) for L in load_digits_layers()
            if L.kind == "conv" and L.weight.shape[2] * L.weight.shape[3] > 1]


def pattern_rows(name: str, W: np.ndarray, n: int, K: int, options: Options) -> list[str]:
    O, I, kh, kw = W.shape
    energy = (W ** 2).reshape(O * I, kh * kw)
    results = {s: select_patterns(energy, n, K, solver=s, options=options) for s in SOLVERS}
    best_bound = min(r.bound for r in results.values())
    rows = []
    for s, r in results.items():
        gap = (best_bound - r.value) / best_bound
        rows.append(f"| {name} | {O * I} | {r.stats['candidates']} | {s} | {r.value:.3f} | "
                    f"{r.bound:.3f} | {100 * gap:.2f}% | {r.status} | {r.seconds:.2f} |")
    return rows


def penni_row(name: str, W: np.ndarray, d: int, density: float) -> str:
    start = penni.encode(W, d=d, iterations=0, shrink=False)  # dense coefficients: the SVD start
    sparse = penni.encode(W, d=d, density=density, iterations=0)
    tuned = penni.encode(W, d=d, density=density, iterations=5, reselect=True)
    par, mac = penni.params(tuned), penni.macs(tuned)
    return (f"| {name} | {d} | {density:.2f} | {start.stats['relative_error']:.4f} | "
            f"{sparse.stats['relative_error']:.4f} | {tuned.stats['relative_error']:.4f} | "
            f"{par['dense'] / par['total']:.2f}x | {mac['dense'] / mac['total']:.2f}x | "
            f"{tuned.removed_out.size}/{tuned.removed_in.size} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--K", type=int, default=8)
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--density", type=float, default=0.25)
    args = parser.parse_args()
    layers = digits_layers() + synthetic_layers(args.seed)
    options = Options(time_limit=args.time_limit, seed=args.seed)

    print(f"### PCNN pattern selection, n={args.n}, K={args.K}, CP-SAT limit {args.time_limit:g} s\n")
    print("| layer | kernels | candidates | solver | value | bound | gap to best bound | status | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, W in layers:
        for row in pattern_rows(name, W, args.n, args.K, options):
            print(row)

    print(f"\n### PENNI, d={args.d}, coefficient density {args.density:g}\n")
    print("| layer | d | density | rel. error SVD | + exact support | + ALS (5) | params cut "
          "| MACs cut | removed out/in |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, W in layers:
        print(penni_row(name, W, args.d, args.density))


if __name__ == "__main__":
    main()
