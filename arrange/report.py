"""Render and write pack reports (a terminal/markdown table, JSON, packed arrays), and model rates.

:func:`compression` is the one place a model's matrix and storage compression
are computed from its layers: ratios of sums (DESIGN.md section 4), never
means of per-layer ratios.
"""

from __future__ import annotations

import json
import os

import numpy as np

__all__ = ["compression", "markdown_table", "or_dash", "format_table", "write_pack_report", "jsonable"]

_COLUMNS = [
    ("layer", "name", "{}"), ("rows", "rows", "{}"), ("cols", "cols", "{}"), ("nnz", "nnz", "{}"),
    ("groups", "groups", "{}"), ("bound", "lower_bound", "{}"), ("gap", "gap", "{:.1%}"),
    ("status", "status", "{}"), ("matrix x", "matrix_compression", "{:.2f}"),
    ("storage x", "storage_compression", "{:.2f}"), ("pruned %", "pruned_pct", "{:.2f}"),
    ("seconds", "seconds", "{:.2f}"),
]


def compression(parts) -> dict:
    """Model matrix and storage compression from per-layer (dense slots, packed slots, dense bits, packed bits).

    Slots may be counted in any one unit (weights, or bits of the slot width);
    packed bits include the index.

    >>> compression([(64, 16, 512, 200), (36, 12, 288, 100)])
    {'matrix_compression': 3.5714285714285716, 'storage_compression': 2.6666666666666665}
    """
    dense_slots, packed_slots, dense_bits, packed_bits = (sum(v) for v in zip(*parts))
    return {"matrix_compression": dense_slots / packed_slots, "storage_compression": dense_bits / packed_bits}


def markdown_table(header, rows) -> str:
    """A markdown table (cells through ``str``), no trailing newline."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def or_dash(value, fmt: str = "{:.2f}") -> str:
    """``value`` formatted, or "-" when it is None (a number a row does not have)."""
    return "-" if value is None else fmt.format(value)


def _row(values: dict, name: str) -> list:
    return [fmt.format(values[key]) if key != "name" else name for _, key, fmt in _COLUMNS]


def format_table(report) -> str:
    """A markdown table, one row per layer plus the model total."""
    head = [h for h, _, _ in _COLUMNS]
    rows = [_row(r.as_dict(), r.name) for r in report.layers]
    if report.total:
        rows.append(_row(report.total, "**total**"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    if report.layers:
        out.append(f"verified: {len(report.layers)} layers decode exactly to their pruned matrices")
    if report.accuracy:
        out.append("test accuracy: " + ", ".join(f"{k} {v:.2%}" for k, v in report.accuracy.items()))
    for name, reason in report.skipped:
        out.append(f"skipped {name}: {reason}")
    return "\n".join(out)


def jsonable(obj):
    """Dicts, lists and numpy scalars as plain JSON types (dict keys as strings)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def to_json(report) -> str:
    return json.dumps(jsonable(report.as_dict()), indent=2)


def write_pack_report(report, packed: dict, out_dir: str) -> list:
    """report.json, report.md and one packed.npz with values/select/table per layer."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md"),
             os.path.join(out_dir, "packed.npz")]
    with open(paths[0], "w") as f:
        f.write(to_json(report) + "\n")
    with open(paths[1], "w") as f:
        f.write("# Pack report\n\n")
        f.write(", ".join(f"{k}={v}" for k, v in report.params.items()) + "\n\n")
        f.write(format_table(report) + "\n")
    arrays = {}
    for name, p in packed.items():
        arrays[f"{name}/values"] = p.values
        arrays[f"{name}/select"] = p.select
        arrays[f"{name}/table"] = p.table
        arrays[f"{name}/shape"] = np.asarray(p.shape)
    np.savez_compressed(paths[2], **arrays)
    return paths
