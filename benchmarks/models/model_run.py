"""A LLaMA-7B-shaped model through `arrange pack`: wall seconds and peak memory, --jobs 1 against 2.

    ./run python benchmarks/models/model_run.py --quick            # 1 block at 1/4 scale, about a minute
    ./run python benchmarks/models/model_run.py                    # 4 blocks x 7 = 28 LLaMA-7B matrices
    ./run python benchmarks/models/model_run.py --jobs 1,2 --time-limit 10 --limit 3600

Builds the matrices of LLaMA-7B transformer blocks (q, k, v, o 4096 x 4096;
gate, up 11008 x 4096; down 4096 x 11008), random |N(0,1)| weights kept with
probability 1 - sparsity, written as float16 to a temporary ``.safetensors``
file (never stored in the repository; built a row block at a time), then runs
``arrange pack FILE --out DIR`` on it as a subprocess per ``--jobs`` value,
with a wall-clock cap. The command streams the file layer by layer (memory
mapped), so its peak RSS should stay far below the model's size in float64.
Printed per run: layers packed and failed, wall seconds, the peak RSS of the
whole process tree (parent plus workers, sampled every 0.1 s from /proc) and
the largest single process (its VmHWM), total groups against the bound, and
the speed-up over the first --jobs value. Target (issue 13): peak RSS < 8 GB;
``--jobs 2`` at least 1.7x faster than ``--jobs 1`` on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN, INTERMEDIATE = 4096, 11008
#: one LLaMA block's weight matrices: name -> (out, in)
BLOCK = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (HIDDEN, HIDDEN),
         "self_attn.v_proj": (HIDDEN, HIDDEN), "self_attn.o_proj": (HIDDEN, HIDDEN),
         "mlp.gate_proj": (INTERMEDIATE, HIDDEN), "mlp.up_proj": (INTERMEDIATE, HIDDEN),
         "mlp.down_proj": (HIDDEN, INTERMEDIATE)}


def shapes(blocks: int, scale: int) -> dict:
    """State-dict name -> shape for ``blocks`` blocks, every dimension divided by ``scale``."""
    return {f"model.layers.{b}.{name}.weight": (o // scale, i // scale)
            for b in range(blocks) for name, (o, i) in BLOCK.items()}


def write_model(path: Path, tensors: dict, sparsity: float, seed: int, rows_per_chunk: int = 512) -> int:
    """Write random sparse float16 matrices as safetensors, a row block at a time; returns bytes written."""
    header, offset = {}, 0
    for name, (o, i) in tensors.items():
        header[name] = {"dtype": "F16", "shape": [o, i], "data_offsets": [offset, offset + o * i * 2]}
        offset += o * i * 2
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for o, i in tensors.values():
            for r in range(0, o, rows_per_chunk):
                n = min(rows_per_chunk, o - r)
                block = np.abs(rng.standard_normal((n, i), dtype=np.float32)) + 1e-3
                block[rng.random((n, i), dtype=np.float32) < sparsity] = 0
                f.write(block.astype("<f2").tobytes())
    return 8 + len(text) + offset


def _tree_rss(pid: int) -> tuple[int, int]:
    """(resident bytes of ``pid`` and all its descendants, the largest peak RSS (VmHWM) among them)."""
    total, peak, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                fields = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if l.startswith(("VmRSS", "VmHWM"))}
            total += fields.get("VmRSS", 0)
            peak = max(peak, fields.get("VmHWM", 0))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total, peak


def run_pack(model: Path, out: Path, jobs: int, args) -> dict:
    """One `arrange pack` subprocess; wall seconds, peak tree RSS, and the report's totals."""
    cmd = [sys.executable, "-m", "arrange.cli", "pack", str(model), "--solver", args.solver, "--gamma",
           str(args.gamma), "--alpha", str(args.alpha), "--time-limit", str(args.time_limit), "--jobs", str(jobs),
           "--out", str(out), "--quiet"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, single, timed_out = 0, 0, False
    while proc.poll() is None:
        tree, hwm = _tree_rss(proc.pid)
        peak, single = max(peak, tree), max(single, hwm)
        if time.perf_counter() - start > args.limit:
            proc.kill()
            timed_out = True
            break
        time.sleep(0.1)
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    row = {"jobs": jobs, "exit": proc.returncode, "wall_s": wall, "peak_tree_gb": peak / 1e9,
           "peak_process_gb": single / 1e9, "timed_out": timed_out}
    report = out / "report.json"
    if report.exists():
        rep = json.loads(report.read_text())
        t = rep["total"]
        row.update(layers=len(rep["layers"]), failed=len(rep["skipped"]), groups=t.get("groups"),
                   bound=t.get("lower_bound"), matrix_x=t.get("matrix_compression"))
    else:
        stored = out / "layers" / "index.json"
        row.update(layers=len(json.loads(stored.read_text())["layers"]) if stored.exists() else 0)
    if proc.returncode not in (0, 2) and not timed_out:
        row["error"] = err.strip().splitlines()[-1] if err.strip() else ""
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 block at 1/4 scale (7 matrices up to 2752 x 1024)")
    ap.add_argument("--blocks", type=int, default=4, help="transformer blocks (7 matrices each; default 4)")
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to run (default 1,2)")
    ap.add_argument("--sparsity", type=float, default=0.9, help="fraction of zero weights (default 0.9)")
    ap.add_argument("--gamma", type=float, default=0.05)
    ap.add_argument("--alpha", type=int, default=8)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--time-limit", type=float, default=2.0, help="seconds per layer (default 2)")
    ap.add_argument("--limit", type=float, default=1800.0, help="wall-clock cap per run, seconds (default 1800)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="where the temporary model and outputs go (default: a temp dir)")
    args = ap.parse_args(argv)
    blocks, scale = (1, 4) if args.quick else (args.blocks, 1)
    tensors = shapes(blocks, scale)
    work = Path(tempfile.mkdtemp(prefix="model_run-", dir=args.dir))
    try:
        model = work / "llama_block.safetensors"
        t0 = time.perf_counter()
        size = write_model(model, tensors, args.sparsity, args.seed)
        print(f"model: {len(tensors)} matrices ({blocks} block(s), scale 1/{scale}), "
              f"{sum(o * i for o, i in tensors.values()) / 1e6:.0f} M weights, sparsity {args.sparsity:g}, "
              f"float16 file {size / 1e9:.2f} GB (float64 in memory would be {size * 4 / 1e9:.1f} GB), "
              f"written in {time.perf_counter() - t0:.0f} s")
        print(f"pack: solver {args.solver}, alpha {args.alpha}, gamma {args.gamma:g}, time limit "
              f"{args.time_limit:g} s per layer, wall cap {args.limit:g} s")
        head = ["jobs", "exit", "layers", "failed", "wall s", "peak RSS tree GB", "peak RSS process GB",
                "groups", "bound", "matrix x", "speed-up"]
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        first = None
        for jobs in (int(j) for j in args.jobs.split(",")):
            row = run_pack(model, work / f"out-jobs{jobs}", jobs, args)
            first = first or row["wall_s"]
            cells = [row["jobs"], row["exit"] if not row["timed_out"] else "timeout", row.get("layers", "-"),
                     row.get("failed", "-"), f"{row['wall_s']:.1f}", f"{row['peak_tree_gb']:.2f}",
                     f"{row['peak_process_gb']:.2f}", row.get("groups", "-"), row.get("bound", "-"),
                     f"{row['matrix_x']:.2f}" if row.get("matrix_x") else "-", f"{first / row['wall_s']:.2f}x"]
            print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
            if row.get("error"):
                print(f"  error: {row['error']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
