"""Whole-model timing + energy speed: a 50-layer model, dense vs packed, on 32 x 32 arrays.

Builds a seeded 50-layer CNN-like model (3x3 convs of growing width, packed by
column combining at alpha = 8 with 8-14% density, every fifth layer subword-packed),
runs :func:`hwmodel.run_model` for each dataflow and prints the wall time and
the model totals as a markdown table.

    ./run python benchmarks/hwmodel/model_speed.py
"""

import time

import numpy as np

from hwmodel import column_combined_layer, run_model, subword_layer


def model(seed=0, n_layers=50):
    """The 50 layer specs."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n_layers):
        side = 56 >> min(3, i // 13)
        cin, cout = 64 << min(3, i // 13), 64 << min(3, (i + 1) // 13)
        M, N, K = side * side, cout, 9 * cin
        nnz = int(N * K * rng.uniform(0.08, 0.14))
        if i % 5 == 4:
            layers.append(subword_layer(M, N, K, groups=-(-2 * K // 10), alpha=8, nnz=nnz, name=f"L{i}"))
        else:
            layers.append(column_combined_layer(M, N, K, groups=-(-K // 7), alpha=8, nnz=nnz, name=f"L{i}"))
    return layers


def main():
    layers = model()
    print("| dataflow | layers | seconds | cycles dense | cycles packed | speedup | util dense "
          "| util packed | energy dense (uJ) | energy packed (uJ) | ops/J gain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for df in ("os", "ws", "is"):
        t0 = time.perf_counter()
        rep = run_model(layers, 32, 32, df)
        sec = time.perf_counter() - t0
        t = rep.total
        print(f"| {df} | {len(layers)} | {sec:.4f} | {t['cycles_dense']} | {t['cycles_packed']} "
              f"| {t['speedup']:.2f} | {t['util_dense']:.3f} | {t['util_packed']:.3f} "
              f"| {t['energy_dense_pj'] / 1e6:.1f} | {t['energy_packed_pj'] / 1e6:.1f} "
              f"| {t['ops_per_j_packed'] / t['ops_per_j_dense']:.2f} |")


if __name__ == "__main__":
    main()
