"""Hardware export of packed layers, and the loaders that rebuild weights and the torch model.

For each layer the export holds the packed integer values (R x G), the select
indices (R x G), the group table (G x alpha: source weight column of each
member), the member shifts for subword layers, and one scale per row. They are
written twice: all arrays in ``packed.npz``, and each as a Verilog
``$readmemh`` file (one hex word per line, row-major, two's complement for
values, -1 table padding written as all ones). ``manifest.json`` states every
width and layout; :func:`load_export` reads only ``packed.npz`` + the manifest
and rebuilds the dense weights, so a round trip is checkable.

Both problems share the layout. A P1 group is one packed column. A P2 (k, n)
group of k permuted columns keeps up to n entries per row, so it is written as
n packed columns ("lanes") that list the same k members: lane l of a row holds
its l-th kept entry in permuted order. The rest of the model's state (biases,
layers that were not packed) rides along in ``packed.npz`` under ``state/``, so
:func:`rebuild_torch_model` gives back the whole compressed network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from hwmodel.packed import index_bits_for

from .errors import ArrangeError
from .formats import column_combine
from .formats.base import index_dtype
from .io import to_state_dict
from .layer import Layer

__all__ = ["ExportLayer", "export_layers", "load_export", "rebuild_torch_model", "fixed_ratio_packed",
           "hex_lines", "FORMAT"]

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
    return max(1, index_bits_for(n))


def hex_lines(values: np.ndarray, width: int) -> str:
    """$readmemh text: one two's complement word of ``width`` bits per line, row-major."""
    digits = (width + 3) // 4
    words = np.asarray(values, dtype=np.int64).ravel() & ((1 << width) - 1)
    return "".join(f"{w:0{digits}x}\n" for w in words.tolist())


def fixed_ratio_packed(M, order, k: int, n: int = 1) -> column_combine.ColumnCombined:
    """P2 (k, n) packing of a kept matrix (at most n nonzeros per row and group) as n lanes per group.

    ``order`` is the permutation over the matrix padded to a multiple of k
    (indices >= N are empty padding columns and are left out of the table).
    """
    M = np.asarray(M)
    R, N = M.shape
    order = np.asarray(order, dtype=np.int64)
    G = order.size // k
    table = np.full((G * n, k), -1, dtype=np.int64)
    values = np.zeros((R, G * n), dtype=M.dtype)
    select = np.zeros((R, G * n), dtype=index_dtype(k))
    for g in range(G):
        members = order[g * k:(g + 1) * k]
        real = members < N
        cells = np.zeros((R, k), dtype=M.dtype)
        cells[:, real] = M[:, members[real]]
        nz = cells != 0
        if np.any(nz.sum(axis=1) > n):
            raise ArrangeError(f"group {g}: a row keeps more than n={n} entries; not a ({k}, {n}) packing")
        # rank of each kept entry within its row, in permuted order
        lane = np.cumsum(nz, axis=1) - 1
        for l in range(n):
            rows, pos = np.nonzero(nz & (lane == l))
            table[g * n + l] = np.where(real, members, -1)
            values[rows, g * n + l] = cells[rows, pos]
            select[rows, g * n + l] = pos
    return column_combine.ColumnCombined(values, select, table, (R, N), int(k))


def _members(e: ExportLayer):
    """(source weight column, shift) for each group member, -1 padded."""
    table = e.packed.table
    if e.subword is None:
        return table, np.zeros_like(table)
    per = e.bits // e.subword
    src = np.where(table >= 0, table // per, -1)
    shift = np.where(table >= 0, (table % per) * e.subword, 0)
    return src, shift


def export_layers(layers: list, out_dir: str, state: dict | None = None) -> str:
    """Write packed.npz, the hex files and manifest.json; returns the manifest path.

    ``state``: other arrays of the model (biases, unpacked weights), stored as
    they are so the loaders can rebuild the whole network.
    """
    os.makedirs(out_dir, exist_ok=True)
    state = dict(state or {})
    manifest = {"format": FORMAT, "layers": [], "state": sorted(state)}
    arrays = {f"state/{k}": np.asarray(v) for k, v in state.items()}
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
    """The model's state from an export folder: ``<module>.weight`` rebuilt from the packed
    layers (grouped convs merged), plus the stored arrays (biases, unpacked weights)."""
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
    state = {k: z[f"state/{k}"] for k in manifest.get("state", [])}
    state.update(to_state_dict(layers))
    return state


def rebuild_torch_model(out_dir: str, module):
    """Load an export into a torch ``module`` of the same architecture (in place; returned, in eval mode).

    Every array of the export must name a parameter or buffer of the module
    with the same shape; the module's other entries keep their values.
    """
    import torch

    state = load_export(out_dir)
    own = module.state_dict()
    for key, value in state.items():
        if key not in own:
            raise ArrangeError(f"export in {out_dir}: {key} is not in the module; it has {', '.join(own)}")
        if tuple(own[key].shape) != tuple(np.shape(value)):
            raise ArrangeError(f"export in {out_dir}: {key} has shape {tuple(np.shape(value))}, "
                               f"the module's is {tuple(own[key].shape)}")
        own[key] = torch.as_tensor(np.asarray(value), dtype=own[key].dtype)
    module.load_state_dict(own)
    return module.eval()
