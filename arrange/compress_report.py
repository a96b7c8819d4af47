"""The compression report: per-layer and model numbers, hardware figures, plots, export.

Hardware figures come from :mod:`hwmodel` on one array for three forms of each
layer: dense, the column-combining baseline (``greedy-cc`` on the same pruned
weights) and this engine's packing. Model rates are ratios of sums.  Subword
packings run on the array's b-bit PEs split into b/s s-bit lanes
(:mod:`hwmodel.packed`); ``subword_lanes=1`` gives each subword a whole PE.
"""

from __future__ import annotations

import json
import os

import numpy as np

import hwmodel

from . import defaults as D
from .compress import CompressConfig, LayerOutcome
from .joint import CompressReport
from .report import jsonable, markdown_table, or_dash

__all__ = ["hardware", "report_dict", "format_compress", "format_demo", "settings_line", "compress_json",
           "write_compress_report", "export_items", "packed_form"]


def _lanes(cfg: CompressConfig, subword_lanes: int | None) -> int:
    """Subword cells per PE: 1 without subwords, else ``subword_lanes`` or bits / subword."""
    if cfg.subword is None:
        return 1
    return cfg.bits // cfg.subword if subword_lanes is None else subword_lanes


def _specs(o: LayerOutcome, cfg: CompressConfig, M: int, lanes: int):
    """(engine spec, baseline spec or None) for one layer; GEMM N = filters, K = matrix columns."""
    nnz = int(np.count_nonzero(o.weights))
    common = dict(weight_bits=cfg.bits, nnz=nnz, name=o.name)
    if cfg.problem == "p1" and cfg.subword is None:
        spec = hwmodel.column_combined_layer(M, o.rows, o.cols, o.packed_cols, cfg.alpha, **common)
    elif cfg.problem == "p1":
        spec = hwmodel.subword_layer(M, o.rows, o.cols, o.packed_cols, cfg.alpha,
                                     subword_bits=cfg.subword, lanes=lanes, **common)
    else:
        dense = hwmodel.dense_layer(M, o.rows, o.cols, **common)
        spec = hwmodel.LayerSpec(
            M, o.rows, o.cols, o.packed_cols, cfg.k, cfg.bits, dense.act_bits, cfg.value_bits,
            hwmodel.packed.index_bits_for(cfg.k), cfg.subword, dense.useful_macs, None, o.name, lanes)
    base = None
    if o.baseline_cols:
        # the baseline's own kept nonzeros (its conflicts prune other weights than the engine's); an outcome
        # built without them: the engine's, capped by the cells the baseline has
        base_nnz = o.stats.get("baseline_nnz", min(nnz, o.rows * o.baseline_cols))
        base = hwmodel.column_combined_layer(M, o.rows, o.cols, o.baseline_cols, cfg.alpha,
                                             weight_bits=cfg.bits, nnz=base_nnz, name=o.name)
    return spec, base


def hardware(report: CompressReport, rows: int = 32, cols: int = 32, dataflow: str = "ws",
             pixels: dict | None = None, subword_lanes: int | None = None, pixels_note: str = "") -> dict:
    """Cycles, utilisation and energy per layer and in total: dense, baseline, engine.

    ``pixels`` maps a layer to its output pixels M (the GEMM's M); a layer not
    in it counts as M = 1 (one input vector), exact for linear layers and an
    underestimate of a conv's work, so the report names those layers.
    ``subword_lanes``: subword cells per PE for a subword packing (None: b/s,
    the lanes of a b-bit PE; 1: a whole PE per subword). ``pixels_note``: where
    ``pixels`` came from (a forward pass, an assumption), stated in the report.
    """
    pixels = pixels or {}
    lanes = _lanes(report.config, subword_lanes)
    per_layer, sums = [], {}
    for o in report.layers:
        spec, base = _specs(o, report.config, pixels.get(o.name, 1), lanes)
        forms = {"dense": spec.dense(), "engine": spec}
        if base is not None:
            forms["baseline"] = base
        row = {"name": o.name, "pixels": pixels.get(o.name, 1)}
        for form, s in forms.items():
            r = hwmodel.simulate_layer(s, rows=rows, cols=cols, dataflow=dataflow)
            row[form] = {"cycles": r.cycles, "utilization": r.utilization,
                         "energy_pj": r.total_energy_pj, "useful_macs": s.useful_macs}
            sums[form] = sums.get(form, hwmodel.Cost()) + r.cost
        per_layer.append(row)
    total = {form: {"cycles": c.cycles, "energy_pj": c.energy_pj, "useful_macs": c.useful_macs,
                    "utilization": c.utilization(rows, cols), "ops_per_joule": c.ops_per_joule}
             for form, c in sums.items()}
    for form in ("engine", "baseline"):
        if form in total:
            total[form]["speedup_vs_dense"] = total["dense"]["cycles"] / total[form]["cycles"]
            total[form]["energy_eff_vs_dense"] = total[form]["ops_per_joule"] / total["dense"]["ops_per_joule"]
    if "baseline" in total:
        total["engine"]["speedup_vs_baseline"] = total["baseline"]["cycles"] / total["engine"]["cycles"]
        total["engine"]["energy_eff_vs_baseline"] = (total["engine"]["ops_per_joule"]
                                                    / total["baseline"]["ops_per_joule"])
    assumed = [o.name for o in report.layers if o.name not in pixels]
    array = {"rows": rows, "cols": cols, "dataflow": dataflow, "subword_lanes": lanes}
    return {"array": array, "layers": per_layer, "total": total,
            "pixels_assumed_1": assumed, "pixels_note": pixels_note}


def _layer_row(o: LayerOutcome) -> dict:
    return {
        "name": o.name, "rows": o.rows, "cols": o.cols,
        "sparsity": 1 - np.count_nonzero(o.weights) / o.weights.size,
        "arranged_cols": o.arranged_cols, "packed_cols": o.packed_cols, "bound": o.bound,
        "objective": o.objective, "gap": o.gap, "status": o.status, "solver": o.solver,
        "matrix_compression": o.matrix_compression, "storage_compression": o.storage_compression,
        "baseline_compression": o.baseline_compression, "pruned_pct": o.pruned_pct,
        "seconds": o.seconds, "bits": o.bits,
    }


def _config(cfg) -> dict:
    """The config as plain values; per-layer scores as the names of the layers that have one."""
    from dataclasses import asdict, replace

    return {**asdict(replace(cfg, scores={})), "scores": sorted(cfg.scores)}


def report_dict(report: CompressReport, **hw) -> dict:
    from dataclasses import asdict

    return {
        "config": _config(report.config), "schedule": report.schedule,
        "stages": [asdict(s) for s in report.stages], "layers": [_layer_row(o) for o in report.layers],
        "total": report.total, "hardware": hardware(report, **hw) if report.layers else {},
        "skipped": [{"layer": n, "error": e} for n, e in report.skipped], "error": report.error,
    }


def compress_json(report: CompressReport, **hw) -> str:
    return json.dumps(jsonable(report_dict(report, **hw)), indent=2)


def settings_line(cfg: CompressConfig, schedule) -> str:
    """What decided the compression, in one line (the subword view stated, never implicit)."""
    problem = (f"p1 (alpha {cfg.alpha}, gamma {cfg.gamma:g})" if cfg.problem == "p1"
               else f"p2 (k {cfg.k}, n {cfg.n})")
    view = (f"{cfg.bits}-bit weights arranged whole" if cfg.subword is None else
            f"{cfg.bits}-bit weights arranged as {cfg.bits // cfg.subword} signed {cfg.subword}-bit subwords each "
            f"(--subword 0: whole weights)")
    rounds = f"{len(schedule)} rounds to " if len(schedule) > 1 else ""
    sub = f", subword sparsity {cfg.subword_sparsity:g}" if cfg.subword_sparsity else ""
    return (f"settings: {problem}; {view}{sub}; {rounds}sparsity {schedule[-1]:g} ({cfg.scope} scope); "
            f"solver {cfg.solver}, {cfg.time_limit:g} s per layer, seed {cfg.seed}")


def format_compress(report: CompressReport, **hw) -> str:
    """Markdown: settings, stages, per-layer numbers with model total, hardware totals."""
    d = report_dict(report, **hw)
    parts = [f"**Stopped early:** {report.error}"] if report.error else []
    parts += [settings_line(report.config, report.schedule), "## Accuracy by stage",
              markdown_table(["step", "sparsity", "metric", "matrix x", "storage x", "greedy-cc x"],
                        [[s["step"], or_dash(s["sparsity"]), or_dash(s["metric"], "{:.4f}"), or_dash(s["compression"]),
                          or_dash(s["storage_compression"]), or_dash(s["baseline_compression"])]
                         for s in d["stages"]])]
    rows = [[r["name"], f'{r["rows"]}x{r["cols"]}', or_dash(r["sparsity"], "{:.1%}"), r["packed_cols"],
             or_dash(r["bound"], "{:.4g}"), or_dash(r["gap"], "{:.1%}"), r["status"], or_dash(r["matrix_compression"]),
             or_dash(r["storage_compression"]), or_dash(r["baseline_compression"]), or_dash(r["pruned_pct"])]
            for r in d["layers"]]
    t = d["total"]
    if t:
        rows.append(["**total**", "", "", "", "", "", "", or_dash(t["matrix_compression"]),
                     or_dash(t["storage_compression"]), or_dash(t.get("baseline_compression")), ""])
    parts += ["## Layers", markdown_table(["layer", "shape", "sparsity", "packed cols", "bound", "gap",
                                      "status", "matrix x", "storage x", "greedy-cc x", "pruned %"], rows)]
    if d["hardware"]:
        ht = d["hardware"]["total"]
        a = d["hardware"]["array"]
        hrows = [[form, v["cycles"], or_dash(v["utilization"], "{:.1%}"), or_dash(v["energy_pj"], "{:.4g}"),
                  or_dash(v["ops_per_joule"], "{:.3g}"), or_dash(v.get("speedup_vs_dense")),
                  or_dash(v.get("energy_eff_vs_dense"))] for form, v in ht.items()]
        lanes = f', {a["subword_lanes"]} subword lanes per PE' if report.config.subword is not None else ""
        parts += [f'## Hardware ({a["rows"]}x{a["cols"]} array, {a["dataflow"]}{lanes})',
                  markdown_table(["form", "cycles", "utilization", "energy pJ", "ops/J", "speedup", "energy eff"],
                            hrows)]
        if d["hardware"]["pixels_note"]:
            parts.append(d["hardware"]["pixels_note"])
        if d["hardware"]["pixels_assumed_1"]:
            parts.append("output positions unknown (give --input-shape C,H,W or --tokens T), counted as M = 1: "
                         + ", ".join(d["hardware"]["pixels_assumed_1"]))
        if "speedup_vs_baseline" in ht.get("engine", {}):
            parts.append(f'engine vs column combining: {ht["engine"]["speedup_vs_baseline"]:.2f}x throughput, '
                         f'{ht["engine"]["energy_eff_vs_baseline"]:.2f}x energy efficiency')
    for n, e in report.skipped:
        parts.append(f"skipped {n}: {e}")
    return "\n\n".join(parts)


#: the line ``./run demo`` ends with: what to try on your own model
NEXT_STEP = ("Next, your own model: ./run arrange compress model.pth --model-builder mine.py:build "
             "--eval mine.py:evaluate [--finetune mine.py:finetune] --input-shape 3,224,224 --out out/mine "
             "(README, 'Your own model')")


def format_demo(report: CompressReport, **hw) -> str:
    """The newcomer's summary of a compression: the headline numbers, the layers, the next command."""
    d = report_dict(report, **hw)
    t = d["total"]
    stages = [s for s in report.stages if s.metric is not None]
    lines = ["Tight Compression of the embedded digits CNN: prune, quantise, arrange, fine-tune",
             settings_line(report.config, report.schedule), ""]
    if t:
        base = t.get("baseline_compression")
        lines.append(f"  matrix compression   {t['matrix_compression']:6.2f}x" + (
            f"   (column combining on the same pruned weights: {base:.2f}x)" if base else ""))
        lines.append(f"  storage compression  {t['storage_compression']:6.2f}x   (packed values + index bits "
                     f"vs dense {report.config.bits}-bit weights)")
    if len(stages) >= 2:
        first, last = stages[0].metric, stages[-1].metric
        lines.append(f"  accuracy             {first:.2%} -> {last:.2%} ({100 * (last - first):+.2f} pt, "
                     f"{stages[-1].step} model)")
    ht = d["hardware"].get("total", {}) if d["hardware"] else {}
    if "engine" in ht:
        a = d["hardware"]["array"]
        vs = (f"; {ht['engine']['speedup_vs_baseline']:.2f}x / {ht['engine']['energy_eff_vs_baseline']:.2f}x "
              f"vs column combining" if "speedup_vs_baseline" in ht["engine"] else "")
        lines.append(f"  hardware             {ht['engine']['speedup_vs_dense']:.2f}x throughput, "
                     f"{ht['engine']['energy_eff_vs_dense']:.2f}x energy efficiency vs dense on a "
                     f"{a['rows']}x{a['cols']} {a['dataflow']} array{vs}")
    if t:
        lines.append(f"  wall time            {t.get('wall_seconds', t['seconds']):.0f} s")
    rows = [[r["name"], f'{r["rows"]}x{r["cols"]}', or_dash(r["sparsity"], "{:.1%}"), r["packed_cols"],
             or_dash(r["matrix_compression"]), or_dash(r["storage_compression"]), or_dash(r["baseline_compression"])]
            for r in d["layers"]]
    lines += ["", markdown_table(["layer", "shape", "sparsity", "packed cols", "matrix x", "storage x",
                                  "greedy-cc x"], rows), ""]
    if report.error:
        lines.append(f"stopped early: {report.error}")
    lines += [f"skipped {n}: {e}" for n, e in report.skipped]
    lines.append("Every stage: ./run arrange compress " + " ".join(D.DEMO_ARGS))
    lines.append(NEXT_STEP)
    return "\n".join(lines)


def _plots(report: CompressReport, d: dict, out_dir: str) -> list:
    from .report import plot_layer_bars, plot_packed_matrix, pyplot

    cfg = report.config
    paths = []
    # The picture that explains the method: the largest layer before and after packing.
    o = max(report.layers, key=lambda o: o.rows * o.cols)
    packed = packed_form(o, cfg)
    if packed.num_groups:
        view = f"{cfg.subword}-bit subword columns" if cfg.subword else "weights"
        paths.append(plot_packed_matrix(os.path.join(out_dir, "packed_matrix.png"), o.name, o.allowed,
                                        packed.values, view))
    layers = report.layers
    series = {"this engine": [(o.rows * o.cols * cfg.bits, o.rows * o.packed_cols * cfg.slot_bits) for o in layers]}
    if all(o.baseline_cols for o in layers):
        series["column combining (greedy-cc, same pruned weights)"] = [(o.cols, o.baseline_cols) for o in layers]
    view = f"{cfg.subword}-bit subwords" if cfg.subword else "whole weights"
    setting = (f"p1 alpha {cfg.alpha} gamma {cfg.gamma:g}" if cfg.problem == "p1" else f"p2 k {cfg.k} n {cfg.n}")
    paths.append(plot_layer_bars(os.path.join(out_dir, "compression_per_layer.png"), [o.name for o in layers],
                                 [o.rows * o.cols for o in layers], series,
                                 f"matrix compression per layer: {setting}, {view}, "
                                 f"sparsity {report.schedule[-1]:g}"))
    if d["hardware"]:
        plt = pyplot()
        ht = d["hardware"]["total"]
        names = {"dense": "dense", "baseline": "column combining\n(greedy-cc)", "engine": "this engine"}
        forms = [f for f in ("dense", "baseline", "engine") if f in ht]
        a = d["hardware"]["array"]
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
        for ax, values, title in (
                (axes[0], [ht["dense"]["cycles"] / ht[f]["cycles"] for f in forms], "throughput vs dense (x)"),
                (axes[1], [ht[f]["ops_per_joule"] / ht["dense"]["ops_per_joule"] for f in forms],
                 "energy efficiency vs dense (x)")):
            bars = ax.bar([names[f] for f in forms], values, color=["grey", "tab:orange", "tab:blue"][-len(forms):])
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=2, fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.margins(y=0.15)
        fig.suptitle(f'{a["rows"]}x{a["cols"]} array, {a["dataflow"]}', fontsize=9)
        fig.tight_layout()
        paths.append(os.path.join(out_dir, "hardware.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_compress_report(report: CompressReport, out_dir: str, model_layers=(), **hw) -> list:
    """report.json, report.md, PNG plots and the hardware export in ``out_dir``; returns the paths.

    Works on a partial report too (a hook raised): whatever finished is written,
    and the error is stated at the top of report.md and in report.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    d = report_dict(report, **hw)
    paths = [os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")]
    with open(paths[0], "w") as f:
        json.dump(jsonable(d), f, indent=2)
    with open(paths[1], "w") as f:
        f.write("# Compression report\n\n" + format_compress(report, **hw) + "\n")
    if report.layers:
        paths += _plots(report, d, out_dir)
        paths += _export(report, model_layers, os.path.join(out_dir, "export"))
    return paths


def export_items(report: CompressReport, model_layers) -> list:
    """ExportLayer for each compressed layer (P1 groups, or P2 lanes), from its effective weights."""
    from .export import ExportLayer

    cfg = report.config
    by_name = {l.name: l for l in model_layers}
    return [ExportLayer(by_name[o.name], packed_form(o, cfg), o.scale, cfg.bits, cfg.subword)
            for o in report.layers if o.name in by_name]


def packed_form(o: LayerOutcome, cfg: CompressConfig):
    """The outcome's packed integers: its P1 packing, or its P2 groups as lanes."""
    from .export import fixed_ratio_packed
    from .quant import to_subwords

    if o.packed is not None:
        return o.packed
    q = np.rint(o.weights / o.scale[:, None]).astype(np.int32)
    M = q if cfg.subword is None else to_subwords(q, cfg.bits, cfg.subword).values
    return fixed_ratio_packed(M, o.order, cfg.k, cfg.n)


def _export(report: CompressReport, model_layers, out_dir: str) -> list:
    from .export import export_layers

    items = export_items(report, model_layers)
    # a grouped conv is exported packed only when all its groups are; otherwise as a plain array
    counts = {}
    for e in items:
        counts[e.layer.base_name] = counts.get(e.layer.base_name, 0) + 1
    items = [e for e in items if counts[e.layer.base_name] == e.layer.groups]
    packed_keys = {f"{e.layer.base_name}.weight" for e in items}
    rest = {k: v for k, v in report.state.items() if k not in packed_keys}
    return [export_layers(items, out_dir, state=rest)] if items else []
