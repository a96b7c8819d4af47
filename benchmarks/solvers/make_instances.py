"""Generate the solver benchmark's instance suite (deterministic: fixed seed per instance).

Problem: a fixed, reproducible set of P1 (min-width combining) and P2
(fixed-ratio grouping) instances in several structural families and three
size classes, stored compactly as files (format: :func:`arrange.bench.save_instance`).
Method: each instance draws from its own generator seeded by crc32 of its name,
so adding an instance never changes the others. Families are described in
README.md beside this script.
Reference: the Apex instance is NVIDIA Apex ASP's permutation test matrix
(Pool & Yu, "Channel Permutations for N:M Sparsity", NeurIPS 2021).

Usage: python benchmarks/solvers/make_instances.py [--sizes small,medium,large] [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import zlib
from pathlib import Path

import numpy as np

from arrange.bench import SIZES, save_instance, size_class

__all__ = ["MASK_FAMILIES", "P1_SPECS", "P2_SPECS", "DIGITS_SPARSITIES", "prune_to", "build_instances",
           "main"]

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- mask families

def random_mask(rng, R: int, N: int, density: float) -> np.ndarray:
    """Each entry nonzero independently with probability ``density``."""
    return rng.random((R, N)) < density


def skewed_mask(rng, R: int, N: int, density: float) -> np.ndarray:
    """Power-law row counts (Pareto, shape 1.5) with mean density*N, capped at 3x the mean.

    The cap keeps the densest row (a lower bound on the group count) from
    making the instance trivial; columns within a row are uniform.
    """
    mean = density * N
    raw = rng.pareto(1.5, R) + 1.0
    counts = np.clip(np.rint(mean * raw / raw.mean()), 1, min(N, 3 * mean)).astype(np.int64)
    mask = np.zeros((R, N), dtype=bool)
    for r in range(R):
        mask[r, rng.choice(N, counts[r], replace=False)] = True
    return mask


def clustered_mask(rng, R: int, N: int, density: float, width: int = 16) -> np.ndarray:
    """Columns in clusters of ``width``; each cluster draws 80% of its nonzeros from
    its own quarter of the rows, so columns of one cluster conflict heavily."""
    home_rows = max(1, R // 4)
    p_in = min(1.0, 0.8 * density * R / home_rows)
    p_out = 0.2 * density * R / max(1, R - home_rows)
    mask = rng.random((R, N)) < p_out
    for start in range(0, N, width):
        rows = rng.choice(R, home_rows, replace=False)
        stop = min(N, start + width)
        mask[np.ix_(rows, np.arange(start, stop))] = rng.random((home_rows, stop - start)) < p_in
    return mask


def block_mask(rng, R: int, N: int, density: float, row_blocks: int = 4, col_width: int = 32) -> np.ndarray:
    """A grid of 4 row blocks x blocks of 32 columns, each block uniform with its own
    density drawn from Gamma(0.5, 2 * density) (mean ``density``), capped at 0.6."""
    mask = np.zeros((R, N), dtype=bool)
    row_edges = np.linspace(0, R, row_blocks + 1).astype(int)
    for c0 in range(0, N, col_width):
        c1 = min(N, c0 + col_width)
        for r0, r1 in zip(row_edges[:-1], row_edges[1:]):
            d = min(0.6, rng.gamma(0.5, 2 * density))
            mask[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < d
    return mask


MASK_FAMILIES = {"random": random_mask, "skewed": skewed_mask, "clustered": clustered_mask,
                 "block": block_mask}

# ---------------------------------------------------------------- the suite

# P1: (family, rows, cols, density, alpha, gamma). gamma > 0 stores float16 magnitudes
# (|N(0,1)|) because conflict pruning keeps the largest; gamma = 0 needs only the mask.
P1_SPECS = [
    ("random", 64, 64, 0.05, 8, 0.0), ("random", 64, 64, 0.10, 8, 0.0),
    ("random", 32, 48, 0.20, 8, 0.0), ("skewed", 64, 64, 0.05, 8, 0.0),
    ("clustered", 64, 64, 0.10, 8, 0.0), ("block", 64, 64, 0.10, 8, 0.0),
    ("random", 64, 64, 0.10, 8, 0.05),
    ("random", 128, 256, 0.02, 8, 0.0), ("random", 128, 256, 0.05, 8, 0.0),
    ("random", 256, 512, 0.05, 8, 0.0), ("random", 128, 128, 0.10, 8, 0.0),
    ("skewed", 128, 256, 0.05, 8, 0.0), ("skewed", 256, 512, 0.03, 8, 0.0),
    ("clustered", 128, 256, 0.10, 8, 0.0), ("clustered", 256, 512, 0.05, 8, 0.0),
    ("block", 128, 512, 0.05, 8, 0.0), ("block", 256, 256, 0.10, 8, 0.0),
    ("random", 128, 256, 0.10, 8, 0.05), ("random", 256, 512, 0.10, 8, 0.02),
    ("random", 128, 2048, 0.05, 8, 0.0), ("random", 128, 8192, 0.02, 8, 0.0),
    ("random", 128, 65536, 0.02, 8, 0.0), ("skewed", 128, 4096, 0.03, 8, 0.0),
    ("clustered", 256, 2048, 0.05, 8, 0.0), ("block", 128, 2048, 0.05, 8, 0.0),
    ("random", 128, 2048, 0.10, 8, 0.05),
]

# P2: (family, rows, cols, density, k, n). density 1 is a dense uniform matrix.
P2_SPECS = [
    ("random", 64, 64, 1.0, 4, 2), ("random", 32, 32, 1.0, 2, 1), ("sparse", 64, 64, 0.25, 4, 1),
    ("random", 256, 256, 1.0, 4, 2), ("random", 128, 128, 1.0, 2, 1),
    ("sparse", 128, 512, 0.125, 8, 1),
    ("random", 256, 2048, 1.0, 4, 2),
]

# Per-layer magnitude pruning of the embedded digits CNN before P1 / P2.
DIGITS_SPARSITIES = (0.8, 0.9)
DIGITS_P2 = (4, 2)
MIN_DIGITS_COLS = 16


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _pct(x: float) -> str:
    return f"{round(100 * x):02d}"


def _p1_instances(sizes):
    for family, R, N, density, alpha, gamma in P1_SPECS:
        size = size_class(N)
        if size not in sizes:
            continue
        name = f"p1-{size}-{family}-{R}x{N}-d{_pct(density)}" + (f"-g{_pct(gamma)}" if gamma else "")
        rng = _rng(name)
        mask = MASK_FAMILIES[family](rng, R, N, density)
        W = mask
        if gamma:
            W = np.where(mask, np.abs(rng.standard_normal((R, N))), 0).astype(np.float16)
            W[mask & (W == 0)] = np.float16(6e-8)  # float16 underflow must not empty an entry
        yield W, {"name": name, "problem": "p1", "size": size, "family": family,
                  "params": {"alpha": alpha, "gamma": gamma}, "density": density}


def _p2_instances(sizes):
    for family, R, N, density, k, n in P2_SPECS:
        size = size_class(N)
        if size not in sizes:
            continue
        name = f"p2-{size}-{family}-{R}x{N}-k{k}n{n}" + (f"-d{_pct(density)}" if density < 1 else "")
        rng = _rng(name)
        W = rng.random((R, N))
        if density < 1:
            W = np.where(random_mask(rng, R, N, density), W, 0.0)
        yield W.astype(np.float32), {"name": name, "problem": "p2", "size": size, "family": family,
                                     "params": {"k": k, "n": n}, "density": density}
    if "small" in sizes:
        # Exactly Apex's test matrix (legacy global-RNG stream), kept in float64 so the
        # published kept / bound figures reproduce to the last digit.
        W = np.random.RandomState(1).rand(128, 64)
        yield W, {"name": "p2-small-apex-128x64-k4n2", "problem": "p2", "size": "small",
                  "family": "apex", "params": {"k": 4, "n": 2}, "density": 1.0}


def prune_to(W: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep the largest (1 - sparsity) fraction of |W| (ties broken by position)."""
    flat = np.abs(W).ravel()
    keep = max(1, int(round(flat.size * (1 - sparsity))))
    idx = np.argsort(-flat, kind="stable")[:keep]
    out = np.zeros(flat.size, dtype=np.float32)
    out[idx] = W.ravel()[idx]
    return out.reshape(W.shape)


def _digits_instances(sizes):
    from arrange.models.digits import load_digits_layers

    for layer in load_digits_layers().layers:
        W = np.asarray(layer.matrix, dtype=np.float32)
        R, N = W.shape
        size = size_class(N)
        if N < MIN_DIGITS_COLS or size not in sizes:
            continue
        # File-name safe: "conv2[g0]" -> "conv2_g0".
        lname = re.sub(r"[^A-Za-z0-9]+", "_", str(layer.name)).strip("_")
        for s in DIGITS_SPARSITIES:
            pruned = prune_to(W, s)
            yield pruned != 0, {"name": f"p1-{size}-digits-{lname}-s{_pct(s)}", "problem": "p1",
                                "size": size, "family": "digits", "params": {"alpha": 8, "gamma": 0.0},
                                "density": 1 - s}
        k, n = DIGITS_P2
        if N % k == 0:
            # N:M grouping acts on the dense trained weights, as Apex does.
            yield W, {"name": f"p2-{size}-digits-{lname}-k{k}n{n}", "problem": "p2", "size": size,
                      "family": "digits", "params": {"k": k, "n": n}, "density": 1.0}


def build_instances(sizes=SIZES, digits: bool = True) -> list[tuple[np.ndarray, dict]]:
    """Every suite instance of the given sizes as (matrix, meta); same call, same arrays."""
    out = list(_p1_instances(sizes)) + list(_p2_instances(sizes))
    if digits:
        out += list(_digits_instances(sizes))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated size classes")
    parser.add_argument("--out", default=str(HERE / "instances"), help="output folder")
    parser.add_argument("--no-digits", action="store_true", help="skip the digits CNN layers")
    args = parser.parse_args(argv)
    sizes = tuple(s for s in args.sizes.split(",") if s)
    if any(s not in SIZES for s in sizes):
        parser.error(f"--sizes: expected a subset of {','.join(SIZES)}, got {args.sizes}")
    digits = not args.no_digits
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| instance | R x N | nnz | kB |\n|---|---|---|---|")
    for W, meta in build_instances(sizes, digits):
        path = out / f"{meta['name']}.npz"
        save_instance(path, W, meta)
        print(f"| {meta['name']} | {W.shape[0]}x{W.shape[1]} | {int(np.count_nonzero(W))} | "
              f"{path.stat().st_size / 1024:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
