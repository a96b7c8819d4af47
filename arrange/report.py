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
- ``compression_per_layer.png`` (each layer's matrix compression and the
  best its lower bound allows; the largest layers one bar each, the rest as
  "others") and ``packed_matrix.png`` (the largest layer before and after
  packing, as a block-density heat map).
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
           "read_packed", "jsonable", "save_npz", "pyplot", "bar_rows", "block_density", "plot_layer_bars",
           "plot_packed_matrix", "write_pack_plots"]

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
        metric = report.params.get("metric", "digits test accuracy")
        if metric == "digits test accuracy":
            out.append("test accuracy: " + ", ".join(f"{k} {v:.2%}" for k, v in report.accuracy.items()))
        else:
            out.append(f"metric ({metric}): " + ", ".join(f"{k} {v:.4g}" for k, v in report.accuracy.items()))
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


def write_pack_report(report, packed: dict, out_dir: str, masks: dict | None = None, plots: bool = True) -> list:
    """report.json, report.md, packed.npz (layout in the module docstring), given ``masks``
    (state-dict weight name -> bool array) masks.npz and masks.pt, and with ``plots``
    compression_per_layer.png and packed_matrix.png (:func:`write_pack_plots`); returns the paths written."""
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
    if plots:
        paths += write_pack_plots(report, packed, out_dir)
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


# --- plots ----------------------------------------------------------------------------------------

#: layers drawn one bar each; the rest are summed into one "others" bar (ratio of their sums)
TOP_LAYERS = 24
#: the packed-matrix picture's resolution: at most this many blocks across and down
MAX_BLOCKS = (256, 512)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_rows(names, sizes, series: dict, top: int = TOP_LAYERS) -> tuple[list, dict]:
    """(labels, label -> values) for per-layer bars: the ``top`` largest layers in model order, then others.

    ``series``: label -> per-layer (numerator, denominator) or None (no value);
    a bar is numerator / denominator, and the "others (k layers)" bar is the
    ratio of the others' sums (DESIGN.md section 4: ratios of sums), None when
    some of them have no value.

    >>> bar_rows(["a", "b", "c"], [10, 1, 5], {"x": [(8, 2), (3, 1), (10, 5)]}, top=2)
    (['a', 'c', 'others (1 layer)'], {'x': [4.0, 2.0, 3.0]})
    """
    order = sorted(range(len(names)), key=lambda i: -sizes[i])
    shown = sorted(order[:top])
    rest = order[top:]
    labels = [names[i] for i in shown]
    if rest:
        labels.append(f"others ({len(rest)} layer{'s' if len(rest) > 1 else ''})")
    values = {}
    for label, pairs in series.items():
        vals = [None if pairs[i] is None else pairs[i][0] / pairs[i][1] for i in shown]
        if rest:
            parts = [pairs[i] for i in rest]
            vals.append(None if any(p is None for p in parts) else
                        sum(p[0] for p in parts) / sum(p[1] for p in parts))
        values[label] = vals
    return labels, values


def plot_layer_bars(path: str, names, sizes, series: dict, title: str,
                    xlabel: str = "matrix compression (x, higher is better)", top: int = TOP_LAYERS) -> str:
    """Horizontal per-layer bars, one colour per series (legend names each), values written on the bars.

    Readable at any layer count: the ``top`` largest layers (by ``sizes``)
    get a bar each, the rest one "others" bar (:func:`bar_rows`).
    """
    plt = pyplot()
    labels, values = bar_rows(names, sizes, series, top)
    k = len(values)
    height = 0.8 / k
    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.22 * len(labels) * max(k, 1.5)), layout="constrained")
    y = np.arange(len(labels))
    for j, (label, vals) in enumerate(values.items()):
        pos = y + (j - (k - 1) / 2) * height
        bars = ax.barh(pos, [0 if v is None else v for v in vals], height, label=label)
        ax.bar_label(bars, labels=["-" if v is None else f"{v:.2f}" for v in vals], padding=2, fontsize=7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()  # model order top to bottom
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(xlabel)
    if len(labels) < len(names):
        title += f"\n(the {len(labels) - 1} largest of {len(names)} layers; the rest summed as others)"
    ax.set_title(title, fontsize=10)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    ax.margins(x=0.12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def block_density(mask: np.ndarray, blocks=MAX_BLOCKS) -> tuple[np.ndarray, tuple]:
    """Fraction of True per block of a bool (R, N) matrix, at most ``blocks`` (down, across) blocks.

    Returns (density, (block rows, block cols)); blocks at the right and bottom
    edges may be partial and are averaged over what they hold.

    >>> d, size = block_density(np.eye(4, dtype=bool), blocks=(2, 2))
    >>> d.tolist(), size
    ([[0.5, 0.0], [0.0, 0.5]], (2, 2))
    """
    mask = np.asarray(mask, dtype=bool)
    R, N = mask.shape
    br, bc = -(-R // min(R, blocks[0])), -(-N // min(N, blocks[1]))
    nr, nc = -(-R // br), -(-N // bc)
    padded = np.zeros((nr * br, nc * bc), dtype=np.float64)
    count = np.zeros_like(padded)
    padded[:R, :N] = mask
    count[:R, :N] = 1
    sums = padded.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    return sums / count.reshape(nr, br, nc, bc).sum(axis=(1, 3)), (br, bc)


def plot_packed_matrix(path: str, name: str, before: np.ndarray, packed_values: np.ndarray, view: str = "weights",
                       blocks=MAX_BLOCKS) -> str:
    """The layer before (R x N nonzeros) and after packing (R x G cells in use), as density heat maps.

    Small layers draw one pixel per entry; larger ones one per block of
    entries, coloured by the fraction nonzero, so a 128 x 131072 layer reads
    as its structure rather than noise. Each panel has its own colour scale
    (a sparse layer's blocks are far below the packed ones') and is as wide as
    its column count (the packed one at least a quarter of the other).
    """
    plt = pyplot()
    before = np.asarray(before, dtype=bool)
    after = np.asarray(packed_values) != 0
    R, N = before.shape
    G = after.shape[1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained",
                             gridspec_kw={"width_ratios": [N, max(G, N / 4)]})
    for ax, m, what in ((axes[0], before, f"{view}: {R} x {N}, {before.mean():.1%} nonzero"),
                        (axes[1], after, f"packed: {R} x {G}, {after.mean():.1%} of cells used")):
        d, (br, bc) = block_density(m, blocks)
        im = ax.imshow(d, aspect="auto", cmap="viridis", interpolation="nearest", vmin=0,
                       vmax=max(float(d.max()), 1e-9), extent=(0, m.shape[1], m.shape[0], 0))
        per = "one pixel per entry" if br == bc == 1 else f"one pixel per {br} x {bc} block"
        ax.set_title(f"{what}\n({per})", fontsize=9)
        ax.set_xlabel("column")
        fig.colorbar(im, ax=ax, fraction=0.05, label="fraction nonzero")
    axes[0].set_ylabel("row (output channel)")
    fig.suptitle(f"{name} before and after packing: {N} columns -> {G} ({N / max(G, 1):.2f}x fewer)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_pack_plots(report, packed: dict, out_dir: str) -> list:
    """compression_per_layer.png (each layer against its lower bound) and packed_matrix.png (largest layer)."""
    if not report.layers:
        return []
    rows = report.layers
    paths = [plot_layer_bars(
        os.path.join(out_dir, "compression_per_layer.png"), [r.name for r in rows], [r.rows * r.cols for r in rows],
        {"this engine (P1 column combining)": [(r.cols, r.groups) for r in rows],
         "bound (columns / lower bound on groups)": [(r.cols, max(r.lower_bound, 1)) for r in rows]},
        f"matrix compression per layer, alpha {report.params.get('alpha')}, gamma {report.params.get('gamma')}")]
    big = max(rows, key=lambda r: r.rows * r.cols)
    result = report.results.get(big.name)
    if big.name in packed:
        # in memory: every nonzero of the pruned matrix; from the layer store: the entries the packing kept
        before = result.keep_mask | result.pruned if result is not None else report.keep_masks[big.name]
        paths.append(plot_packed_matrix(os.path.join(out_dir, "packed_matrix.png"), big.name, before,
                                        packed[big.name].values))
    return paths
