"""Render and write pack reports (a terminal/markdown table, JSON, packed arrays, masks), and model rates.

:func:`compression` is the one place a model's matrix and storage compression
are computed from its layers: ratios of sums (DESIGN.md section 4), never
means of per-layer ratios.

Files written by :func:`write_pack_report` into ``--out``:

- ``report.json`` / ``report.md``: per-layer rows, the model total, faults
  (``skipped``, exit code 2) and the tensors the selection left out
  (``not_selected``, not errors), gamma advice where a packing does not pay.
- ``packed.npz``: for each packed layer ``L`` (the report's ``name``; one group
  of a grouped conv is ``conv[g0]``), ``L/values`` (R x G, the source weight's
  dtype: float32 stays float32, float16 stays float16, bfloat16 is read as
  float32), ``L/select`` (R x G, the smallest integer dtype holding alpha - 1:
  the member of the group each value came from), ``L/table`` (G x alpha int64,
  each group's columns, -1 padded) and ``L/shape`` (R, N). Dense matrix:
  ``W[r, table[g, select[r, g]]] = values[r, g]`` wherever ``values[r, g] != 0``
  (:func:`read_packed` and :func:`arrange.formats.column_combine.decode` do
  this); a conv's row r is output channel ``g0 * R + r`` of the full weight,
  its columns ``(i * kh + y) * kw + x``.
- ``masks.npz`` (and ``masks.pt`` when torch is installed and the masks fit in
  half the memory available, since torch writes it in one piece): state-dict weight
  name (``encoder.layer.0.attention.self.query.weight``) -> bool keep-mask of the
  full weight shape, grouped convs merged back, for
  ``torch.nn.utils.prune.custom_from_mask(module, "weight", mask)``.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile

import numpy as np

from .io import selection_summary

__all__ = ["compression", "markdown_table", "or_dash", "format_table", "write_pack_report", "write_masks",
           "read_packed", "jsonable", "save_npz"]

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
    """A markdown table, one row per layer plus the model total, then advice, selection and faults."""
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
    out += [f"advice {r.name}: {r.advice['message']}" for r in report.layers if r.advice]
    summary = selection_summary(report.not_selected)
    if summary:
        out.append(summary)
    for name, reason in report.skipped:
        out.append(f"failed {name}: {reason}")
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


def write_pack_report(report, packed: dict, out_dir: str, masks: dict | None = None) -> list:
    """report.json, report.md, packed.npz (layout in the module docstring) and, given ``masks``
    (state-dict weight name -> bool array), masks.npz and masks.pt; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md"),
             os.path.join(out_dir, "packed.npz")]
    with open(paths[0], "w") as f:
        f.write(to_json(report) + "\n")
    with open(paths[1], "w") as f:
        f.write("# Pack report\n\n")
        f.write(", ".join(f"{k}={v}" for k, v in report.params.items()) + "\n\n")
        f.write(format_table(report) + "\n")
        if report.not_selected:
            f.write("\n## Not arranged (selection, not errors)\n\n")
            f.write("".join(f"- `{n.name}` ({n.kind}): {n.reason}\n" for n in report.not_selected))
    dtypes = {r.name: r.dtype for r in report.layers}

    def arrays():   # one layer at a time: ``packed`` may read each from a store when asked for
        for name, p in packed.items():
            yield f"{name}/values", _at_precision(p.values, dtypes.get(name))
            yield f"{name}/select", p.select
            yield f"{name}/table", p.table
            yield f"{name}/shape", np.asarray(p.shape)

    save_npz(paths[2], arrays())
    if masks is not None:
        paths += write_masks(masks, out_dir)
    return paths


def _at_precision(values: np.ndarray, dtype: str | None) -> np.ndarray:
    """The packed values in the source weight's dtype: they were read from it, so the cast is exact."""
    if dtype is None or dtype == str(values.dtype):
        return values
    cast = values.astype(dtype)
    if not np.array_equal(cast.astype(values.dtype), values):
        raise AssertionError(f"packed values do not fit {dtype}, the dtype they were read from")
    return cast


def save_npz(path: str, items) -> None:
    """``np.savez_compressed`` from an iterable of (name, array), one array in memory at a time."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, a in items:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)


def write_masks(masks, out_dir: str) -> list:
    """masks.npz and, when torch is installed, masks.pt (bool tensors, ``torch.load(weights_only=True)``).

    ``masks`` (name -> bool array) may be a mapping that reads each mask when
    asked for: masks.npz is written one mask at a time; masks.pt, which torch
    writes in one piece, is left out (with a line on stderr) when all masks
    together would take more than half the memory available.
    """
    from .executor import available_memory

    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "masks.npz")]
    save_npz(paths[0], ((k, np.ascontiguousarray(m, dtype=bool)) for k, m in masks.items()))
    try:
        import torch
    except ImportError:
        return paths
    with zipfile.ZipFile(paths[0]) as zf:   # the sizes, from the directory just written
        total = sum(i.file_size for i in zf.infolist())
    free = available_memory()
    if free is not None and total > free / 2:
        print(f"arrange: masks.pt not written: the masks take {total / 2 ** 30:.1f} GiB and torch.save needs "
              f"them all in memory ({free / 2 ** 30:.1f} GiB available); masks.npz holds them", file=sys.stderr)
        return paths
    paths.append(os.path.join(out_dir, "masks.pt"))
    torch.save({k: torch.from_numpy(np.ascontiguousarray(m, dtype=bool)) for k, m in masks.items()}, paths[1])
    return paths


def read_packed(path) -> dict:
    """``packed.npz`` back as layer name -> :class:`~arrange.formats.column_combine.ColumnCombined`."""
    from .formats.column_combine import ColumnCombined

    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.rsplit("/", 1)[0] for k in z.files}, key=lambda n: z.files.index(f"{n}/values"))
        return {n: ColumnCombined(z[f"{n}/values"], z[f"{n}/select"], z[f"{n}/table"],
                                  tuple(int(x) for x in z[f"{n}/shape"]), int(z[f"{n}/table"].shape[1]))
                for n in names}
