"""Accuracy against compression across sparsity levels, for this engine and for column combining.

Problem: one compression run gives one point; a user choosing a setting needs
the whole trade-off curve, and the curve of the column-combining baseline run
through the same flow, to compare them at equal accuracy.

Method: a progressive sweep, as gradual pruning does it: the sparsity levels
are one schedule of :func:`arrange.joint.compress_model`, each level pruned,
arranged and fine-tuned starting from the previous level's compressed model,
and each level's model-total rates and metric (after fine-tuning when the
hooks fine-tune, else after arrangement) form one point. The baseline curve is
the same schedule with column combining's own setting: P1 with ``greedy-cc``
on whole weights (no subwords, no subword pruning). With ``jobs > 1`` and a
picklable hooks factory the two flows run in parallel processes.

References: Chen et al., "Tight Compression", IEEE TCAD 2022
(doi:10.1109/TCAD.2022.3178047), section on accuracy vs compression; Kung et
al., "Column Combining", ASPLOS 2019 (doi:10.1145/3297858.3304028).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

from .compress import CompressConfig
from .errors import ArrangeError
from .joint import Hooks, compress_model
from .report import markdown_table, or_dash

__all__ = ["SweepPoint", "SweepResult", "sweep", "sweep_levels", "column_combining_config",
           "compression_at_metric", "format_sweep", "write_sweep", "parse_sweep"]


@dataclass(frozen=True)
class SweepPoint:
    """One level of a sweep: model-total rates and the metric."""

    sparsity: float
    matrix_compression: float
    storage_compression: float
    baseline_compression: float | None   # greedy-cc on the same pruned weights (engine curve only)
    metric: float | None


@dataclass
class SweepResult:
    engine: list            # SweepPoint per level
    baseline: list          # SweepPoint per level: column combining through the same flow ([] if not run)
    dense_metric: float | None
    config: CompressConfig
    levels: list
    seconds: float


def sweep_levels(count: int = 10, low: float = 0.5, high: float = 0.95) -> list:
    """``count`` evenly spaced sparsities from ``low`` to ``high`` (rounded to 4 digits)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ArrangeError(f"sweep needs an integer number of levels >= 1, got {count!r}")
    if not 0 <= low <= high < 1:
        raise ArrangeError(f"sweep sparsities must satisfy 0 <= low <= high < 1, got {low} and {high}")
    return [round(float(s), 4) for s in np.linspace(low, high, count)] if count > 1 else [high]


def parse_sweep(text: str) -> list:
    """``"10"`` -> :func:`sweep_levels` (10); ``"0.5,0.7,0.9"`` -> those sparsities."""
    text = text.strip()
    try:
        if "," in text or "." in text:
            return [float(t) for t in text.split(",") if t.strip()]
        return sweep_levels(int(text))
    except ValueError:
        raise ArrangeError(f"--sweep expects a number of levels or comma-separated sparsities, got {text!r}") from None


def column_combining_config(cfg: CompressConfig) -> CompressConfig:
    """Column combining's own setting with cfg's alpha, gamma, pruning scope and seed."""
    return replace(cfg, problem="p1", solver="greedy-cc", subword=None, subword_sparsity=0.0,
                   arrangement_aware=False, baseline=False)


def _points(report) -> list:
    """The last stage of each level (fine-tuned if there was fine-tuning, else arranged)."""
    last = {}
    for s in report.stages:
        if s.step in ("arranged", "finetuned"):
            last[s.sparsity] = s
    return [SweepPoint(sp, s.compression, s.storage_compression, s.baseline_compression, s.metric)
            for sp, s in last.items()]


def _flow(args):
    """One flow of the sweep (picklable for a process pool): (points, dense metric)."""
    layers, cfg, hooks, levels, jobs, rounds = args
    hooks = hooks() if callable(hooks) and not isinstance(hooks, Hooks) else hooks
    report = compress_model(layers, cfg, hooks=hooks, schedule=levels, jobs=jobs, finetune_rounds=rounds)
    return _points(report), report.stages[0].metric


def sweep(layers, cfg: CompressConfig, hooks: Hooks | Callable[[], Hooks] | None = None,
          levels=None, jobs: int = 1, baseline: bool = True, finetune_rounds: int = 1) -> SweepResult:
    """Sweep ``levels`` (default :func:`sweep_levels`) for cfg, and for column combining if ``baseline``.

    ``hooks`` may be a zero-argument factory returning :class:`Hooks` (e.g.
    ``functools.partial(digits_hooks, epochs=2)``); with ``jobs > 1`` the two
    flows then run in parallel processes, otherwise one after the other with
    ``jobs`` processes over the layers.
    """
    levels = sweep_levels() if levels is None else [float(s) for s in levels]
    if not levels or any(not 0 <= s < 1 for s in levels):
        raise ArrangeError(f"sweep sparsities must be in [0, 1), got {levels}")
    if sorted(set(levels)) != levels:
        raise ArrangeError(f"sweep sparsities must be strictly increasing, got {levels}")
    layers = list(layers)
    start = time.perf_counter()
    flows = [(layers, cfg, hooks, levels, jobs, finetune_rounds)]
    if baseline:
        flows.append((layers, column_combining_config(cfg), hooks, levels, jobs, finetune_rounds))
    if jobs > 1 and len(flows) == 2 and callable(hooks) and not isinstance(hooks, Hooks):
        with ProcessPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(_flow, [f[:4] + (1, finetune_rounds) for f in flows]))
    else:
        results = [_flow(f) for f in flows]
    engine, dense = results[0]
    base = results[1][0] if baseline else []
    return SweepResult(engine, base, dense, cfg, levels, time.perf_counter() - start)


def compression_at_metric(points, metric: float) -> SweepPoint | None:
    """The most compressed point whose metric is at least ``metric`` (None if none is)."""
    ok = [p for p in points if p.metric is not None and p.metric >= metric]
    return max(ok, key=lambda p: p.matrix_compression) if ok else None


def _table(result: SweepResult) -> str:
    base = {p.sparsity: p for p in result.baseline}
    rows = []
    for p in result.engine:
        b = base.get(p.sparsity)
        rows.append([f"{p.sparsity:.3f}", f"{p.matrix_compression:.2f}", f"{p.storage_compression:.2f}",
                     or_dash(p.baseline_compression), or_dash(p.metric, "{:.4f}"),
                     or_dash(b and b.matrix_compression), or_dash(b and b.metric, "{:.4f}")])
    return markdown_table(["sparsity", "engine matrix x", "engine storage x", "greedy-cc x (same weights)",
                           "engine metric", "column combining x", "column combining metric"], rows)


def format_sweep(result: SweepResult) -> str:
    """Markdown: the points of both curves and the comparison at equal metric."""
    parts = [f"## Sweep ({len(result.levels)} levels, {result.seconds:.1f} s)",
             f"dense metric: {or_dash(result.dense_metric, '{:.4f}')}", _table(result)]
    if result.baseline and all(p.metric is not None for p in result.engine):
        lines = []
        for p in result.engine:
            b = compression_at_metric(result.baseline, p.metric) if p.metric is not None else None
            lines.append(f"- engine {p.matrix_compression:.2f}x at {p.metric:.4f}: column combining "
                         + (f"{b.matrix_compression:.2f}x at {b.metric:.4f} -> {p.matrix_compression / b.matrix_compression:.2f}x"
                            if b else "never reaches this metric"))
        parts += ["## At equal metric (best column-combining point at least as accurate)", "\n".join(lines)]
    return "\n\n".join(parts)


def _plot(result: SweepResult, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label, marker in ((result.engine, "this engine", "o"),
                                  (result.baseline, "column combining (greedy-cc)", "s")):
        if points:
            ax.plot([p.matrix_compression for p in points], [p.metric for p in points], marker=marker,
                    label=label)
    if result.dense_metric is not None:
        ax.axhline(result.dense_metric, color="grey", linestyle="--", label="dense")
    ax.set_xlabel("matrix compression (x)")
    ax.set_ylabel("metric after fine-tuning")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_sweep(result: SweepResult, out_dir: str) -> list:
    """sweep.json, sweep.md and accuracy_vs_compression.png in ``out_dir``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, n) for n in ("sweep.json", "sweep.md", "accuracy_vs_compression.png")]
    with open(paths[0], "w") as f:
        json.dump({"config": asdict(result.config), "levels": result.levels, "seconds": result.seconds,
                   "dense_metric": result.dense_metric, "engine": [asdict(p) for p in result.engine],
                   "baseline": [asdict(p) for p in result.baseline]}, f, indent=2)
    with open(paths[1], "w") as f:
        f.write("# Accuracy vs compression\n\n" + format_sweep(result) + "\n")
    _plot(result, paths[2])
    return paths
