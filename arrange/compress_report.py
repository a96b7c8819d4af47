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

from .compress import CompressConfig, LayerOutcome
from .joint import CompressReport
from .report import jsonable, markdown_table, or_dash

__all__ = ["hardware", "report_dict", "format_compress", "compress_json", "write_compress_report",
           "export_items", "packed_form"]


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
        base_nnz = min(nnz, o.rows * o.cols)
        base = hwmodel.column_combined_layer(M, o.rows, o.cols, o.baseline_cols, cfg.alpha,
                                             weight_bits=cfg.bits, nnz=base_nnz, name=o.name)
    return spec, base


def hardware(report: CompressReport, rows: int = 32, cols: int = 32, dataflow: str = "ws",
             pixels: dict | None = None, subword_lanes: int | None = None) -> dict:
    """Cycles, utilisation and energy per layer and in total: dense, baseline, engine.

    ``pixels`` maps a layer to its output pixels M (the GEMM's M); a layer not
    in it counts as M = 1 (one input vector), exact for linear layers and an
    underestimate of a conv's work, so the report names those layers.
    ``subword_lanes``: subword cells per PE for a subword packing (None: b/s,
    the lanes of a b-bit PE; 1: a whole PE per subword).
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
            "pixels_assumed_1": assumed}


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


def format_compress(report: CompressReport, **hw) -> str:
    """Markdown: stages, per-layer numbers with model total, hardware totals."""
    d = report_dict(report, **hw)
    parts = [f"**Stopped early:** {report.error}"] if report.error else []
    parts += ["## Accuracy by stage",
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
        if d["hardware"]["pixels_assumed_1"]:
            parts.append("output pixels unknown, counted as M = 1: " + ", ".join(d["hardware"]["pixels_assumed_1"]))
        if "speedup_vs_baseline" in ht.get("engine", {}):
            parts.append(f'engine vs column combining: {ht["engine"]["speedup_vs_baseline"]:.2f}x throughput, '
                         f'{ht["engine"]["energy_eff_vs_baseline"]:.2f}x energy efficiency')
    for n, e in report.skipped:
        parts.append(f"skipped {n}: {e}")
    return "\n\n".join(parts)


def _plots(report: CompressReport, d: dict, out_dir: str) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    # The picture that explains the method: the largest layer before and after packing.
    o = max(report.layers, key=lambda o: o.rows * o.cols)
    packed = packed_form(o, report.config)
    if packed.num_groups:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={
            "width_ratios": [o.arranged_cols, max(packed.values.shape[1], o.arranged_cols // 4)]})
        view = "subword columns" if report.config.subword else "weights"
        axes[0].imshow(o.allowed, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
        axes[0].set_title(f"{o.name}: sparse {view}, {o.rows}x{o.arranged_cols}")
        axes[1].imshow(packed.values != 0, aspect="auto", cmap="Greys", interpolation="nearest",
                       vmin=0, vmax=1)
        axes[1].set_title(f"packed {o.rows}x{packed.values.shape[1]}")
        for ax in axes:
            ax.set_xlabel("column"); ax.set_ylabel("row (filter)")
        fig.tight_layout()
        paths.append(os.path.join(out_dir, "packed_matrix.png"))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    names = [r["name"] for r in d["layers"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, [r["matrix_compression"] for r in d["layers"]], 0.4, label="this engine")
    ax.bar(x + 0.2, [r["baseline_compression"] or 0 for r in d["layers"]], 0.4, label="column combining")
    ax.set_xticks(x, names, rotation=30)
    ax.set_ylabel("matrix compression (x)")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "compression_per_layer.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    if d["hardware"]:
        ht = d["hardware"]["total"]
        forms = [f for f in ("dense", "baseline", "engine") if f in ht]
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
        axes[0].bar(forms, [ht["dense"]["cycles"] / ht[f]["cycles"] for f in forms])
        axes[0].set_title("throughput vs dense")
        axes[1].bar(forms, [ht[f]["ops_per_joule"] / ht["dense"]["ops_per_joule"] for f in forms])
        axes[1].set_title("energy efficiency vs dense")
        fig.tight_layout()
        paths.append(os.path.join(out_dir, "hardware.png"))
        fig.savefig(paths[-1], dpi=100)
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
