"""Hardware export of packed layers, and the loader that rebuilds weights from it.

For each layer the export holds the packed integer values (R x G), the select
indices (R x G), the group table (G x alpha: source weight column of each
member), the member shifts for subword layers, and one scale per row. They are
written twice: all arrays in ``packed.npz``, and each as a Verilog
``$readmemh`` file (one hex word per line, row-major, two's complement for
values, -1 table padding written as all ones). ``manifest.json`` states every
width and layout; :func:`load_export` reads only ``packed.npz`` + the manifest
and rebuilds the dense weights, so a round trip is checkable.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import ArrangeError
from .formats import column_combine
from .io import to_state_dict
from .layer import Layer

__all__ = ["ExportLayer", "export_layers", "load_export", "hex_lines", "FORMAT"]

FORMAT = "arrange-export/1"


@dataclass(eq=False)
class ExportLayer:
    """A quantised packed layer: packed over weight columns (subword=None) or subword columns."""

    layer: Layer                              # the source layer (name, kind, shape, group)
    packed: column_combine.ColumnCombined     # integer values
    scale: np.ndarray                         # (R,) dequantisation scale per row
    bits: int                                 # weight bit width b
    subword: int | None = None                # s, when packed over subword columns

    @property
    def value_bits(self) -> int:
        """Two's complement width of a packed value: b bits, or sign + s bits for a subword."""
        return self.bits if self.subword is None else self.subword + 1


def _width(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def hex_lines(values: np.ndarray, width: int) -> str:
    """$readmemh text: one two's complement word of ``width`` bits per line, row-major."""
    digits = (width + 3) // 4
    words = np.asarray(values, dtype=np.int64).ravel() & ((1 << width) - 1)
    return "".join(f"{w:0{digits}x}\n" for w in words.tolist())


def _members(e: ExportLayer):
    """(source weight column, shift) for each group member, -1 padded."""
    table = e.packed.table
    if e.subword is None:
        return table, np.zeros_like(table)
    per = e.bits // e.subword
    src = np.where(table >= 0, table // per, -1)
    shift = np.where(table >= 0, (table % per) * e.subword, 0)
    return src, shift


def export_layers(layers: list, out_dir: str) -> str:
    """Write packed.npz, the hex files and manifest.json; returns the manifest path."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"format": FORMAT, "layers": []}
    arrays = {}
    for e in layers:
        name = e.layer.name
        R, N = e.layer.shape2d
        src, shift = _members(e)
        fields = {"values": (e.packed.values, e.value_bits),
                  "select": (e.packed.select, _width(e.packed.alpha)),
                  "column": (src, _width(N) + 1), "shift": (shift, _width(e.bits))}
        files = {}
        for field, (arr, width) in fields.items():
            arrays[f"{name}/{field}"] = np.asarray(arr)
            fname = f"{name.replace('/', '_')}.{field}.hex"
            with open(os.path.join(out_dir, fname), "w") as f:
                f.write(hex_lines(arr, width))
            files[field] = {"file": fname, "width": width, "shape": list(np.shape(arr))}
        arrays[f"{name}/scale"] = np.asarray(e.scale, dtype=np.float64)
        arrays[f"{name}/table"] = e.packed.table
        manifest["layers"].append({
            "name": name, "kind": e.layer.kind, "weight_shape": list(e.layer.weight.shape),
            "group": e.layer.group, "groups": e.layer.groups, "matrix_shape": [R, N],
            "packed_columns": e.packed.shape[1], "num_groups": e.packed.num_groups,
            "alpha": e.packed.alpha, "bits": e.bits, "subword": e.subword, "files": files,
            "layout": "row-major; values/select are R x G cells; column/shift are G x alpha "
                      "members (column -1 = unused slot); weight = scale[row] * sum over a "
                      "row's cells of value << shift at the selected member's column",
        })
    np.savez_compressed(os.path.join(out_dir, "packed.npz"), **arrays)
    path = os.path.join(out_dir, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
    return path


def _dense(entry: dict, z) -> np.ndarray:
    name = entry["name"]
    R, N = entry["matrix_shape"]
    values, select = z[f"{name}/values"].astype(np.int64), z[f"{name}/select"]
    column, shift = z[f"{name}/column"], z[f"{name}/shift"]
    if np.any(select >= column.shape[1]):
        raise ArrangeError(f"export layer {name}: select index outside its group")
    q = np.zeros((R, N), dtype=np.int64)
    rows = np.arange(R)
    for g in range(values.shape[1]):
        nz = values[:, g] != 0
        cols = column[g, select[nz, g]]
        if np.any(cols < 0):
            raise ArrangeError(f"export layer {name}: select index points at an empty slot")
        np.add.at(q, (rows[nz], cols), values[nz, g] << shift[g, select[nz, g]])
    return q * z[f"{name}/scale"][:, None]


def load_export(out_dir: str) -> dict:
    """Rebuild ``<module>.weight`` arrays (grouped convs merged) from an export folder."""
    path = os.path.join(out_dir, "manifest.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
        z = np.load(os.path.join(out_dir, "packed.npz"), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArrangeError(f"cannot read export in {out_dir}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ArrangeError(f"{path}: not an {FORMAT} manifest")
    layers = []
    for entry in manifest["layers"]:
        W = _dense(entry, z).reshape(entry["weight_shape"])
        layers.append(Layer(entry["name"], entry["kind"], W, group=entry["group"], groups=entry["groups"]))
    return to_state_dict(layers)
