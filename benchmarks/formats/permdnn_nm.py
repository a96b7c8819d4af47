"""PermDNN and N:M formats side by side: kept energy / efficacy and hardware cost.

Run: ./run python benchmarks/formats/permdnn_nm.py  (about a minute on one core)

Tables (markdown):
1. PermDNN projection: kept energy share, unpermuted vs permuted (exact on the
   small layer, iterated assignment on the others), with the rows/columns bound.
2. N:M with channel permutation: efficacy (Apex's measure) of 2:4 on the
   64-column x 128-row random matrix of Pool & Yu, per P2 solver.
3. FC engine (16 PEs, ReLU inputs with half zeros): PermDNN p=4 vs the same
   density unstructured with CSC indices (EIE-style), and dense.
4. Sparse tensor core: dense vs 2:4 vs 1:4 on the same 32x32 array.
"""

from __future__ import annotations

import time

import numpy as np

from arrange.errors import ArrangeError
from arrange.formats import nm, permdnn
from hwmodel.fc_engine import fc_energy, simulate_fc
from hwmodel.sparse_core import simulate_sparse_gemm
from solvers import group, permdiag


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")
    print()


def planted(R, N, p, rng, noise=0.1):
    shifts = rng.integers(p, size=(R // p, N // p))
    rows, cols = permdnn.positions(shifts, p)
    W = noise * rng.standard_normal((R, N))
    W[rows, cols] += rng.standard_normal(rows.shape)
    return W[rng.permutation(R)][:, rng.permutation(N)]


def permdnn_table():
    rng = np.random.default_rng(0)
    cases = [("gaussian", 8, 8, 2), ("gaussian", 64, 64, 8), ("gaussian", 256, 512, 8),
             ("planted+noise", 8, 8, 2), ("planted+noise", 64, 64, 8),
             ("planted+noise", 256, 512, 4)]
    rows = []
    for kind, R, N, p in cases:
        W = rng.standard_normal((R, N)) if kind == "gaussian" else planted(R, N, p, rng)
        t = time.perf_counter()
        packed = permdnn.encode(W, p, time_limit=30, seed=0)
        sec = time.perf_counter() - t
        bound = permdiag.upper_bound(permdiag.PermDiagProblem.from_weights(W, p))
        tot = packed.total_energy
        rows.append([kind, f"{R}x{N}", p, f"{packed.unpermuted_energy / tot:.3f}",
                     f"{packed.kept_energy / tot:.3f}", f"{bound / tot:.3f}", packed.solver,
                     packed.status, f"{sec:.2f}"])
    table(["matrix", "R x N", "p", "kept unpermuted", "kept permuted", "bound", "solver", "status", "s"],
          rows)


def nm_table():
    W = np.random.default_rng(1).standard_normal((128, 64))
    rows = []
    for solver in sorted(group.SOLVERS):
        t = time.perf_counter()
        try:
            packed = nm.encode(W, 2, 4, solver=solver, time_limit=5, seed=0)
        except ArrangeError as exc:  # solvers limited to other k say so
            rows.append([solver, "n/a", "", str(exc).split(";")[0], ""])
            continue
        rows.append([solver, f"{packed.kept:.2f}", f"{packed.upper_bound:.2f}",
                     f"{100 * packed.efficacy:.1f}%", f"{time.perf_counter() - t:.2f}"])
    table(["P2 solver (2:4, 128x64 random)", "kept magnitude", "rows bound", "efficacy", "s"], rows)


def fc_table():
    rng = np.random.default_rng(2)
    R = N = 1024
    p = 4
    shifts = rng.integers(p, size=(R // p, N // p))
    r, c = permdnn.positions(shifts, p)
    perm = np.zeros((R, N), dtype=bool)
    perm[r, c] = True
    unstructured = rng.random((R, N)) < 1 / p
    X = np.maximum(rng.standard_normal((8, N)), 0)
    rows = []
    for name, mask, index, kw in [
        ("dense", np.ones((R, N), dtype=bool), 0, {"skip_zero_inputs": False}),
        ("unstructured 25%, CSC (EIE-style)", unstructured, 4, {"index_per_weight": True}),
        ("PermDNN p=4, blocked PEs", perm, 0, {"assignment": "blocked"}),
        ("PermDNN p=4, interleaved PEs", perm, 0, {}),
    ]:
        res = simulate_fc(mask, X, n_pe=16, **kw)
        e = fc_energy(res, index_bits=index)
        rows.append([name, res.cycles, res.macs, f"{res.utilization:.3f}", f"{sum(e.values()) / 1e3:.1f}"])
    table(["1024x1024 FC, 16 PEs, 8 ReLU inputs", "cycles", "useful MACs", "utilisation", "energy nJ"], rows)


def sparse_core_table():
    rows = []
    for M, N, K in [(196, 64, 576), (49, 128, 1152), (1, 1000, 2048)]:
        for n, m in [(2, 4), (1, 4)]:
            c = simulate_sparse_gemm(M, N, K, n=n, m=m, rows=32, cols=32, dataflow="ws")
            rows.append([f"{M}x{N}x{K}", f"{n}:{m}", c.dense.cycles, c.packed.cycles,
                         f"{c.speedup:.2f}", f"{c.energy_ratio:.2f}"])
    table(["GEMM M x N x K (ws, 32x32)", "N:M", "dense cycles", "sparse cycles", "speedup", "energy ratio"],
          rows)


if __name__ == "__main__":
    permdnn_table()
    nm_table()
    fc_table()
    sparse_core_table()
