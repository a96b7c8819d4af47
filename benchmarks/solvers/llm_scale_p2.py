"""2:4 channel permutation of LLM-sized layers: our auto and ria beside NVIDIA Apex's searches, in one run.

For each shape (LLaMA-7B's 4096 x 4096, 4096 x 11008 and 11008 x 4096; rows x
permuted columns) and two kinds of weights, |N(0,1)| and the same with a few
heavy outlier channels (columns scaled 30x, as activation-weighted scores have),
it runs, one after the other in this process:

- ``auto``: ``arrange.permute(W, k=4, n=2, solver="auto", time_limit=T)``;
- ``ria``: the RIA-style heuristic alone (sort, deal, assignment sweeps), same limit;
- Apex "progressive channel swap" given the same T seconds, and Apex's default
  "exhaustive" window-8 search with 100 escapes, both on CPU (Apex's own
  Python fallback, no CUDA here), each in a subprocess; the exhaustive search is stopped after
  ``--apex-timeout`` seconds ("did not finish" then). Apex's seconds are its
  search call's own, without the subprocess start.

Apex runs only from a checkout given by ``--apex DIR`` or ``$APEX_DIR`` (a work
tree or a bare git directory such as the mirror the fetch tool writes; its
``apex/contrib/sparsity/permutation_search_kernels`` is extracted to a
temporary directory), never from code copied here; without one, its rows say
"not available". Its modules never import ``time`` although the CPU path
calls ``time.perf_counter``; the worker binds it before calling in.

Every order is checked and scored by our checker: efficacy (Apex's measure,
against the rows bound), kept / bound (the best bound any of our runs
proved) and wall seconds; peak RSS of this process is printed per shape.

Run (from the repository root):
    ./run python benchmarks/solvers/llm_scale_p2.py --apex /work/.mirror/NVIDIA+apex/repo
    ./run python benchmarks/solvers/llm_scale_p2.py --quick --apex "$APEX_DIR"    # small shapes, 5 s
"""

from __future__ import annotations

import argparse
import atexit
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

import arrange
from solvers import GroupProblem, kept_magnitude

SHAPES = [(4096, 4096), (4096, 11008), (11008, 4096)]
QUICK_SHAPES = [(64, 32), (128, 64), (512, 1024)]
KINDS = ("abs N(0,1)", "outliers")
#: heavy channels in the outlier kind, and their scale
OUTLIERS, OUTLIER_SCALE = 8, 30.0
APEX_PACKAGE = "apex/contrib/sparsity/permutation_search_kernels"
APEX_STRATEGIES = {
    "apex progressive swap": {"strategy": "progressive channel swap"},
    "apex exhaustive w8": {"strategy": "exhaustive", "stripe_group_size": 8, "escape_attempts": 100},
}


def layer(R: int, N: int, kind: str) -> np.ndarray:
    """The benchmark matrix: |N(0,1)| (float32, as LLM weights are stored), optionally with outlier columns."""
    rng = np.random.default_rng([R, N])
    W = np.abs(rng.standard_normal((R, N), dtype=np.float32))
    if kind == "outliers":
        W[:, rng.choice(N, size=OUTLIERS, replace=False)] *= OUTLIER_SCALE
    return W


# ----------------------------------------------------------------- Apex peer

def apex_sources(where: str | None) -> Path | None:
    """A directory holding Apex's permutation_search_kernels package (extracted from a git dir), or None."""
    if not where:
        return None
    path = Path(where)
    if (path / APEX_PACKAGE / "__init__.py").is_file():
        return path / "apex/contrib/sparsity"
    if not (path / "HEAD").is_file() and not (path / ".git").exists():
        return None
    out = Path(tempfile.mkdtemp(prefix="apex-src-"))
    atexit.register(shutil.rmtree, out, True)
    try:
        archive = subprocess.run(["git", "--git-dir", str(path if (path / "HEAD").is_file() else path / ".git"),
                                  "archive", "HEAD", APEX_PACKAGE], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    tarfile.open(fileobj=BytesIO(archive)).extractall(out, filter="data")
    return out / "apex/contrib/sparsity"


class _AsTensor:
    """The three tensor methods Apex's entry point calls, over a numpy array (no torch needed)."""

    def __init__(self, array):
        self.array = array

    def cpu(self):
        return self

    def detach(self):
        return self

    def numpy(self):
        return self.array

    def size(self, dim):
        return self.array.shape[dim]


def _apex_worker(sources: str, strategy: str, seconds: float, matrix: str, out: str) -> None:
    """In a subprocess: run one Apex strategy on the saved matrix; save its permutation and search seconds."""
    import time as time_module

    # Apex caches its partition tables in ./.cache unless told otherwise: keep them out of the checkout
    os.environ["APEX_ASP_CACHE_DIR"] = os.path.dirname(out)
    sys.path.insert(0, sources)
    import permutation_search_kernels as psk
    from permutation_search_kernels import call_permutation_search_kernels, channel_swap, exhaustive_search
    from permutation_search_kernels import permutation_utilities

    for module in (call_permutation_search_kernels, channel_swap, exhaustive_search, permutation_utilities):
        module.time = time_module
    options = dict(APEX_STRATEGIES[strategy])
    if options["strategy"] == "progressive channel swap":
        options["progressive_search_time_limit"] = seconds
    np.random.seed(0)
    W = _AsTensor(np.load(matrix).astype(np.float64))
    start = time_module.perf_counter()
    perm = psk.accelerated_search_for_good_permutation(W, options)
    np.savez(out, perm=np.asarray(perm, dtype=np.int64), seconds=time_module.perf_counter() - start)


def run_apex(sources: Path, strategy: str, W: np.ndarray, seconds: float, timeout: float):
    """(order or None, search seconds, note) of one Apex strategy in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        matrix, out = os.path.join(tmp, "W.npy"), os.path.join(tmp, "perm.npz")
        np.save(matrix, W)
        cmd = [sys.executable, __file__, "--apex-worker", str(sources), strategy, str(seconds), matrix, out]
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - start, f"did not finish in {timeout:g} s"
        wall = time.perf_counter() - start
        if done.returncode != 0:
            return None, wall, "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80]
        with np.load(out) as saved:
            return saved["perm"], float(saved["seconds"]), f"subprocess {wall:.1f} s in all"


# ----------------------------------------------------------------- the table

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 5 s limit")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per call (default 50; quick 5)")
    parser.add_argument("--apex", default=os.environ.get("APEX_DIR"), help="Apex checkout or git dir ($APEX_DIR)")
    parser.add_argument("--apex-timeout", type=float, default=120.0,
                        help="seconds before an Apex run is stopped (0: skip Apex's exhaustive search)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--apex-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.apex_worker:
        sources, strategy, seconds, matrix, out = args.apex_worker
        _apex_worker(sources, strategy, float(seconds), matrix, out)
        return 0
    limit = args.time_limit or (5.0 if args.quick else 50.0)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    sources = apex_sources(args.apex)
    arrange.permute(layer(8, 16, "outliers"), k=4, n=2, time_limit=1.0)    # kernels loaded before timing
    print(f"2:4 (k = 4, n = 2), time limit {limit:g} s per call; Apex: "
          f"{sources or 'not available (give --apex DIR or APEX_DIR)'}\n")
    print("| shape | weights | method | efficacy | kept / bound | seconds | note |")
    print("|---|---|---|---|---|---|---|")
    for R, N in shapes:
        for kind in KINDS:
            W = layer(R, N, kind)
            problem = GroupProblem.from_weights(W, 4, 2)
            rows = {}
            for name in ("auto", "ria"):
                r = arrange.permute(W, k=4, n=2, solver=name, time_limit=limit, seed=args.seed)
                rows[name] = (r.order, r.seconds, f"{r.status}, stopped by {r.stopped_by}")
                bound, identity, rows_bound = r.upper_bound, r.identity_kept, r.rows_bound
            for strategy in APEX_STRATEGIES:
                if sources is None:
                    rows[strategy] = (None, float("nan"), "not available")
                elif strategy == "apex exhaustive w8" and args.apex_timeout <= 0:
                    rows[strategy] = (None, float("nan"), "skipped (--apex-timeout 0)")
                else:
                    # progressive swap stops itself after `limit`; allow for loading the matrix
                    timeout = args.apex_timeout if strategy == "apex exhaustive w8" else limit + 60
                    rows[strategy] = run_apex(sources, strategy, W, limit, timeout)
            for name, (order, seconds, note) in rows.items():
                if order is None:
                    print(f"| {R} x {N} | {kind} | {name} | - | - | {seconds:.1f} | {note} |", flush=True)
                    continue
                kept = kept_magnitude(problem, order)
                eff = (kept - identity) / (rows_bound - identity) if rows_bound > identity else 0.0
                print(f"| {R} x {N} | {kind} | {name} | {100 * eff:.2f}% | {kept / bound:.5f} | {seconds:.1f} "
                      f"| {note} |", flush=True)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        print(f"| {R} x {N} | | peak RSS so far | | | | {rss:.2f} GB |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
