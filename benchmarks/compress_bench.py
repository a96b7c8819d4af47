"""Compression targets of issue 5 on the embedded digits CNN, measured side by side in one run.

(a) matrix compression (model total, subword level) with subword-level pruning
    at <= 1 point accuracy drop after fine-tuning (target >= 14x, Tight Compression's 14.13x);
(b) the engine against column combining at equal accuracy: column combining
    (P1, greedy-cc, whole weights) run through the same prune/fine-tune flow
    over a sparsity sweep, its most compressed point at least as accurate as
    the engine (target >= 1.75x); also greedy-cc on the engine's own pruned weights;
(c) throughput and energy efficiency from hwmodel on one small array (8x8,
    weight stationary: the digits CNN has at most 64 filters and 288 columns,
    so a 32x32 array would sit mostly idle) over dense and over column combining
    (paper: 2.75x throughput, 1.86x energy efficiency);
(d) the wall time of a 10-level sweep (target < 5 minutes on 2 cores).

Run (from the repository root):
    ./run python benchmarks/compress_bench.py [--jobs 2] [--epochs 10]
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import replace

from arrange.compress import CompressConfig
from arrange.compress_report import hardware
from arrange.hooks import digits_hooks
from arrange.joint import compress_model
from arrange.models.digits import DIGITS_TEST_ACCURACY, digits_pixels, load_digits_layers
from arrange.sweep import column_combining_config, compression_at_metric, sweep, sweep_levels, write_sweep

ARRAY = dict(rows=8, cols=8, dataflow="ws")
LR = 2e-3

#: gradual schedules: many small pruning steps, each fine-tuned
LONG = [0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94]
LONGER = LONG + [0.95, 0.96]

#: candidate engine settings: (label, config, schedule); all prune globally, subwords s=4
CANDIDATES = (
    ("P1 a32 g0.15 sw0.4", CompressConfig(scope="global", subword=4, subword_sparsity=0.4, alpha=32, gamma=0.15,
                                          solver="ffd", time_limit=1.0), LONG),
    ("P1 a32 g0.2 sw0.5", CompressConfig(scope="global", subword=4, subword_sparsity=0.5, alpha=32, gamma=0.2,
                                         solver="ffd", time_limit=1.0), LONG),
    ("P1 a32 g0.15 sw0.4 (to 0.96)", CompressConfig(scope="global", subword=4, subword_sparsity=0.4, alpha=32,
                                                    gamma=0.15, solver="ffd", time_limit=1.0), LONGER),
    ("P2 k16 n1", CompressConfig(scope="global", subword=4, problem="p2", k=16, n=1, solver="anneal",
                                 time_limit=1.0), [0.5, 0.7, 0.8, 0.85]),
)
#: the column-combining curve (same flow, whole weights, greedy-cc)
CC_LEVELS = LONGER + [0.97]


def _hooks(epochs):
    return digits_hooks(epochs=epochs, lr=LR)


def _run(cfg, schedule, epochs, jobs):
    cfg = replace(cfg, sparsity=schedule[-1])
    t = time.perf_counter()
    report = compress_model(load_digits_layers().layers, cfg, hooks=_hooks(epochs), schedule=schedule, jobs=jobs)
    return report, time.perf_counter() - t


def _hw(report, subword_lanes=None):
    return hardware(report, pixels=digits_pixels(), subword_lanes=subword_lanes, **ARRAY)["total"]


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs per stage")
    ap.add_argument("--out", metavar="DIR", help="also write the sweep folder (sweep.md/.json, plot) here")
    args = ap.parse_args(argv)
    dense = DIGITS_TEST_ACCURACY
    floor = dense - 0.01
    start = time.perf_counter()

    # (a) engine candidates; every fine-tuned stage of a schedule is a complete compressed model
    runs, rows = [], []
    for label, cfg, schedule in CANDIDATES:
        report, secs = _run(cfg, schedule, args.epochs, args.jobs)
        tuned = [s for s in report.stages if s.step == "finetuned"]
        for i, s in enumerate(tuned):
            runs.append((s.compression if s.metric >= floor else 0, s.metric, label, cfg, schedule[:i + 1]))
            rows.append([label, f"{s.sparsity:g}", f"{s.metric:.4f}", f"{100 * (dense - s.metric):.2f}",
                         f"{s.compression:.2f}", f"{s.storage_compression:.2f}",
                         f"{s.baseline_compression:.2f}" if s.baseline_compression else "-",
                         "yes" if s.metric >= floor and s.compression >= 14 else "no",
                         f"{secs:.0f}" if i == len(tuned) - 1 else ""])
    print(f"## (a) engine settings, stage by stage (digits CNN, dense accuracy {dense:.4f}, global pruning, "
          f"{args.epochs} epochs/stage, lr {LR})\n")
    print(_table(["setting", "sparsity", "accuracy", "drop (pt)", "matrix x", "storage x",
                  "greedy-cc x (same weights)", ">=14x at <=1pt", "s"], rows))
    best = max(runs, key=lambda r: (r[0], r[1]))
    if best[0] == 0:
        print("\nno stage of any setting stays within 1 point")
        return
    _, acc, label, cfg, schedule = best
    # Re-run up to the chosen stage with the same per-stage subword pruning, for its layers.
    per_stage = 1 - (1 - cfg.subword_sparsity) ** (1 / len(next(c[2] for c in CANDIDATES if c[0] == label)))
    cfg = replace(cfg, subword_sparsity=1 - (1 - per_stage) ** len(schedule))
    report, _ = _run(cfg, schedule, args.epochs, args.jobs)
    acc, cx = report.stages[-1].metric, report.total["matrix_compression"]
    print(f"\nmost compressed within 1 point: {label} at sparsity {schedule[-1]:g} -> {cx:.2f}x "
          f"(storage {report.total['storage_compression']:.2f}x) at accuracy {acc:.4f}"
          + ("" if cx >= 14 else " -- the 14x target is NOT met"))

    # (b) column combining through the same flow, swept; matched at equal accuracy
    cc_cfg = column_combining_config(cfg)
    cc = sweep(load_digits_layers().layers, cc_cfg, hooks=functools.partial(_hooks, args.epochs),
               levels=CC_LEVELS, jobs=args.jobs, baseline=False)
    print(f"\n## (b) column combining (P1 greedy-cc, alpha={cc_cfg.alpha}, gamma={cc_cfg.gamma}, whole weights) "
          f"through the same flow\n")
    print(_table(["sparsity", "matrix x", "storage x", "accuracy"],
                 [[f"{p.sparsity:g}", f"{p.matrix_compression:.2f}", f"{p.storage_compression:.2f}",
                   f"{p.metric:.4f}"] for p in cc.engine]))
    match = compression_at_metric(cc.engine, acc)
    print()
    if match is None:
        print(f"column combining never reaches {acc:.4f}; no equal-accuracy ratio")
    else:
        print(_table(["", "matrix x", "accuracy"],
                     [[f"engine ({label})", f"{cx:.2f}", f"{acc:.4f}"],
                      [f"column combining at >= that accuracy (sparsity {match.sparsity:g})",
                       f"{match.matrix_compression:.2f}", f"{match.metric:.4f}"],
                      ["**ratio (target >= 1.75x)**", f"**{cx / match.matrix_compression:.2f}x**", ""]]))
    print(f"\ngreedy-cc on the engine's own pruned weights: {report.total['baseline_compression']:.2f}x "
          f"-> engine / greedy-cc = {report.total['vs_baseline']:.2f}x")

    # (c) hardware on one array
    hw = _hw(report)
    hrows = [["dense", hw["dense"]["cycles"], f"{hw['dense']['energy_pj']:.4g}", "1.00", "1.00"]]
    cc_hw = None
    if match is not None:
        upto = CC_LEVELS[:CC_LEVELS.index(match.sparsity) + 1]
        cc_report, _ = _run(cc_cfg, upto, args.epochs, args.jobs)
        cc_hw = _hw(cc_report)["engine"]
        hrows.append([f"column combining at equal accuracy (sparsity {match.sparsity:g})", cc_hw["cycles"],
                      f"{cc_hw['energy_pj']:.4g}", f"{hw['dense']['cycles'] / cc_hw['cycles']:.2f}",
                      f"{hw['dense']['energy_pj'] / cc_hw['energy_pj']:.2f}"])
    b = hw["baseline"]
    hrows.append(["greedy-cc on the engine's pruned weights", b["cycles"], f"{b['energy_pj']:.4g}",
                  f"{b['speedup_vs_dense']:.2f}", f"{b['energy_eff_vs_dense']:.2f}"])
    e = hw["engine"]
    hrows.append([f"engine ({label}), 2 subword lanes per PE", e["cycles"], f"{e['energy_pj']:.4g}",
                  f"{e['speedup_vs_dense']:.2f}", f"{e['energy_eff_vs_dense']:.2f}"])
    e1 = _hw(report, subword_lanes=1)["engine"]
    hrows.append(["engine, one subword per PE", e1["cycles"], f"{e1['energy_pj']:.4g}",
                  f"{e1['speedup_vs_dense']:.2f}", f"{e1['energy_eff_vs_dense']:.2f}"])
    print(f"\n## (c) hardware: {ARRAY['rows']}x{ARRAY['cols']} array, {ARRAY['dataflow']}, one inference "
          f"(energy efficiency = same work / energy)\n")
    print(_table(["form", "cycles", "energy pJ", "throughput vs dense", "energy eff vs dense"], hrows))
    print("\n(8-bit PEs; a subword packing runs each PE as two 4-bit lanes holding two packed subword columns, "
          "dense and whole-weight forms use the PE as one 8-bit multiplier)")
    print(f"\nengine vs greedy-cc on the same weights: {e['speedup_vs_baseline']:.2f}x throughput, "
          f"{e['energy_eff_vs_baseline']:.2f}x energy efficiency (paper: 2.75x, 1.86x)")
    if cc_hw is not None:
        print(f"engine vs column combining at equal accuracy: {cc_hw['cycles'] / e['cycles']:.2f}x throughput, "
              f"{cc_hw['energy_pj'] / e['energy_pj']:.2f}x energy efficiency (paper: 2.75x, 1.86x); "
              f"one subword per PE: {cc_hw['cycles'] / e1['cycles']:.2f}x, {cc_hw['energy_pj'] / e1['energy_pj']:.2f}x")

    # (d) the 10-level sweep, both curves, timed
    levels = sweep_levels(10)
    t = time.perf_counter()
    sw = sweep(load_digits_layers().layers, replace(CANDIDATES[0][1], sparsity=levels[-1]),
               hooks=functools.partial(_hooks, args.epochs), levels=levels, jobs=args.jobs)
    secs = time.perf_counter() - t
    if args.out:
        write_sweep(sw, args.out)
    print(f"\n## (d) 10-level sweep ({CANDIDATES[0][0]}, {args.epochs} epochs/level, engine and column-combining "
          f"curves in parallel, jobs={args.jobs})\n")
    print(_table(["sparsity", "engine x", "engine accuracy", "column combining x", "column combining accuracy"],
                 [[f"{p.sparsity:g}", f"{p.matrix_compression:.2f}", f"{p.metric:.4f}",
                   f"{q.matrix_compression:.2f}", f"{q.metric:.4f}"] for p, q in zip(sw.engine, sw.baseline)]))
    print(f"\nsweep wall time: {secs:.1f} s (target < 300 s)")
    print(f"\ntotal benchmark time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
