"""Cross-check of hwmodel's dense timing against SCALE-Sim 3.0.0, with speed.

Runs the same dense layers (seeded random GEMMs on a few array shapes, and
conv layers of ResNet-18 and VGG-16 on a 32 x 32 array) through both, for all
three dataflows, and prints one markdown table: SCALE-Sim's "Total Cycles",
ours (``scalesim_cycles`` = cycles - 1, the stated convention), the
difference, whether the SRAM ifmap/filter read counts agree, seconds each and
the speed ratio.  SCALE-Sim runs in its own venv (numpy<2.4); create it with
``bash benchmarks/hwmodel/setup_scalesim.sh``.

    ./run python benchmarks/hwmodel/vs_scalesim.py [--quick]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from hwmodel import simulate_conv, simulate_gemm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCALESIM_PY = os.path.join(ROOT, ".venv-scalesim", "bin", "python")
DRIVER = os.path.join(ROOT, "benchmarks", "hwmodel", "scalesim_driver.py")

#: (name, [ifmap_h, ifmap_w, kernel_h, kernel_w, channels, filters, stride]); ifmaps padded.
CONV_LAYERS = [
    ("resnet18.conv1", [230, 230, 7, 7, 3, 64, 2]),
    ("resnet18.layer1.conv", [58, 58, 3, 3, 64, 64, 1]),
    ("resnet18.layer2.conv", [30, 30, 3, 3, 128, 128, 1]),
    ("resnet18.layer3.conv", [16, 16, 3, 3, 256, 256, 1]),
    ("resnet18.layer4.conv", [9, 9, 3, 3, 512, 512, 1]),
    ("vgg16.conv3_1", [58, 58, 3, 3, 128, 256, 1]),
    ("vgg16.conv5_1", [16, 16, 3, 3, 512, 512, 1]),
]


def layers(quick: bool, seed: int = 0):
    """The compared layers: dicts in the driver's input format."""
    rng = np.random.default_rng(seed)
    out = []
    shapes = [(32, 32), (8, 16), (16, 8)]
    for i in range(4 if quick else 12):
        M, N, K = (int(x) for x in rng.integers(1, 300, 3))
        R, C = shapes[i % len(shapes)]
        for df in ("os", "ws", "is"):
            out.append({"name": f"gemm{i} {M}x{N}x{K}", "kind": "gemm", "dims": [M, N, K],
                        "rows": R, "cols": C, "dataflow": df})
    for name, dims in CONV_LAYERS[:2] if quick else CONV_LAYERS:
        if quick:
            name, dims = name + " (ifmap/4)", [dims[0] // 4, dims[1] // 4] + dims[2:]
        for df in ("os", "ws", "is"):
            out.append({"name": name, "kind": "conv", "dims": dims, "rows": 32, "cols": 32,
                        "dataflow": df})
    return out


def ours(layer):
    """Our result for one layer and seconds per call (best of a timed loop)."""
    args = dict(rows=layer["rows"], cols=layer["cols"], dataflow=layer["dataflow"])
    fn = simulate_gemm if layer["kind"] == "gemm" else simulate_conv
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        res = fn(*layer["dims"], **args)
    return res, (time.perf_counter() - t0) / reps


def run_scalesim(batch):
    """SCALE-Sim results for ``batch`` (via the driver in .venv-scalesim)."""
    proc = subprocess.run([SCALESIM_PY, DRIVER], input=json.dumps(batch), capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller layers")
    args = ap.parse_args()
    if not os.path.exists(SCALESIM_PY):
        sys.exit("no .venv-scalesim: run bash benchmarks/hwmodel/setup_scalesim.sh first")
    todo = layers(args.quick)
    theirs = run_scalesim(todo)
    print("| layer | array | df | SCALE-Sim cycles | ours (cycles-1) | diff | SRAM reads agree "
          "| SCALE-Sim s | ours s | speed ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    same = agree = 0
    tot_s = tot_o = 0.0
    for layer, ss in zip(todo, theirs):
        res, sec = ours(layer)
        diff = res.scalesim_cycles - ss["total_cycles"]
        reads = (res.sram_reads["ifmap"], res.sram_reads["filter"]) == (
            ss["sram_ifmap_reads"], ss["sram_filter_reads"])
        same += diff == 0
        agree += reads
        tot_s += ss["seconds"]
        tot_o += sec
        print(f"| {layer['name']} | {layer['rows']}x{layer['cols']} | {layer['dataflow']} "
              f"| {ss['total_cycles']} | {res.scalesim_cycles} | {diff} | {reads} "
              f"| {ss['seconds']:.3f} | {sec * 1e6:.1f} us | {ss['seconds'] / sec:,.0f}x |")
    n = len(todo)
    print(f"\nidentical cycle counts: {same}/{n} layers; SRAM ifmap+filter reads agree: {agree}/{n}; "
          f"total SCALE-Sim {tot_s:.1f} s vs ours {tot_o * 1e3:.2f} ms ({tot_s / tot_o:,.0f}x)")


if __name__ == "__main__":
    main()
