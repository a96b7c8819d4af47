"""The per-layer result store: every finished layer on disk as it completes, so nothing is lost.

Problem: a whole-model run takes minutes to hours; a crash, a killed worker
or Ctrl-C must not lose the layers already packed, and ``--resume`` must skip
them and still produce the report an uninterrupted run gives.

Method: ``<out>/layers/`` holds one ``.npz`` per finished layer (its packed
arrays ``values``, ``select``, ``table``, ``shape``, the bool ``keep_mask``
(R x N) and ``weight_shape``) and ``index.json``: the run's settings and, per
layer name, the file, the report row, a fingerprint of the layer's input
(blake2b of its weights, mask and the settings) and whether Ctrl-C cut its
search; failed layers are listed with their error and are tried again on
resume. Every write goes to a temporary file in the same folder first and is
moved into place with ``os.replace`` (atomic on POSIX), so a crash leaves
either the old file or the new one, never half of one. A layer is reused only
when its fingerprint matches, so resuming with other settings or weights
re-packs what changed; resuming into a folder written with other settings is
refused.

Reference: POSIX ``rename(2)`` atomicity; the ``.npz`` layout is numpy's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping

import numpy as np

from .errors import ArrangeError
from .formats.column_combine import ColumnCombined
from .io import OnDemand
from .report import jsonable

__all__ = ["LayerStore", "fingerprint"]

INDEX = "index.json"
VERSION = 1


def fingerprint(layer, settings: dict) -> str:
    """blake2b of the layer's name, weights, mask and the run settings that decide its packing."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(f"{layer.name}|{layer.kind}|{layer.group}/{layer.groups}|{layer.weight.dtype}|"
             f"{tuple(layer.weight.shape)}".encode())
    h.update(memoryview(np.ascontiguousarray(layer.weight)).cast("B"))
    if layer.mask is not None:
        h.update(np.packbits(layer.mask).tobytes())
    return h.hexdigest()


def _atomic(path: str, write) -> None:
    """``write(file)`` to a temporary file beside ``path``, then move it into place."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
    return f"{safe}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}.npz"


class LayerStore:
    """``<out_dir>/layers``: one file per finished layer plus ``index.json``.

    ``settings``: the run-level settings (JSON-able); with ``resume`` the index
    found must have been written with the same ones, else ArrangeError.
    Without ``resume`` an earlier run's index and layer files there are removed.
    """

    def __init__(self, out_dir: str, settings: dict, resume: bool = False):
        self.dir = os.path.join(out_dir, "layers")
        self.settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        os.makedirs(self.dir, exist_ok=True)
        self.index = {"version": VERSION, "settings": self.settings, "layers": {}, "failed": {}}
        path = os.path.join(self.dir, INDEX)
        if resume and os.path.exists(path):
            try:
                with open(path) as f:
                    found = json.load(f)
            except (OSError, ValueError) as exc:
                raise ArrangeError(f"--resume: cannot read {path}: {exc}") from None
            if found.get("version") != VERSION or found.get("settings") != self.settings:
                diff = sorted(k for k in set(self.settings) | set(found.get("settings", {}))
                              if self.settings.get(k) != found.get("settings", {}).get(k))
                raise ArrangeError(f"--resume: {out_dir} was written with other settings "
                                   f"({', '.join(diff) or 'format version'}); use another --out or drop --resume")
            self.index = found
            self.index["failed"] = {}
        else:   # a fresh run: the layer files of an earlier one in this folder would only mislead
            for name in os.listdir(self.dir):
                if name.endswith(".npz"):
                    os.unlink(os.path.join(self.dir, name))
        self._save_index()

    def __len__(self) -> int:
        return len(self.index["layers"])

    def lookup(self, name: str, key: str):
        """The stored report row (a dict) of layer ``name`` if its fingerprint is ``key`` and
        its search ran to the end (not cut by Ctrl-C), else None."""
        entry = self.index["layers"].get(name)
        if entry is None or entry["fingerprint"] != key or entry.get("interrupted"):
            return None
        if not os.path.exists(os.path.join(self.dir, entry["file"])):
            return None
        return entry["row"]

    def fingerprints(self) -> dict:
        """Layer name -> fingerprint of every layer :meth:`lookup` would give back."""
        return {n: e["fingerprint"] for n, e in self.index["layers"].items()
                if self.lookup(n, e["fingerprint"]) is not None}

    def put(self, name: str, key: str, row: dict, result, weight_shape, interrupted: bool = False) -> None:
        """Write layer ``name`` (its :class:`CombineResult`-like ``result``: ``.packed``, ``.keep_mask``)
        and record it in the index."""
        p = result.packed
        file = _file_name(name)
        arrays = {"values": p.values, "select": p.select, "table": p.table, "shape": np.asarray(p.shape),
                  "alpha": np.asarray(p.alpha), "keep_mask": np.asarray(result.keep_mask, dtype=bool),
                  "weight_shape": np.asarray(weight_shape)}
        _atomic(os.path.join(self.dir, file), lambda f: np.savez_compressed(f, **arrays))
        self.index["layers"][name] = {"file": file, "fingerprint": key, "row": jsonable(row),
                                      "interrupted": bool(interrupted)}
        self.index["failed"].pop(name, None)
        self._save_index()

    def fail(self, name: str, error: str) -> None:
        self.index["failed"][name] = error
        self._save_index()

    def _load(self, name: str):
        entry = self.index["layers"].get(name)
        if entry is None:
            raise KeyError(name)
        return np.load(os.path.join(self.dir, entry["file"]), allow_pickle=False)

    def packed(self, name: str) -> ColumnCombined:
        with self._load(name) as z:
            return ColumnCombined(z["values"], z["select"], z["table"], tuple(int(x) for x in z["shape"]),
                                  int(z["alpha"]))

    def keep_mask(self, name: str) -> np.ndarray:
        """Bool (R, N): the nonzeros of layer ``name`` that survive its packing."""
        with self._load(name) as z:
            return z["keep_mask"]

    def _save_index(self) -> None:
        data = json.dumps(self.index, indent=1, default=str).encode()
        _atomic(os.path.join(self.dir, INDEX), lambda f: f.write(data))

    def packed_map(self, names) -> Mapping:
        """Layer name -> ColumnCombined for ``names``, each read from its file when asked for."""
        return OnDemand(list(names), self.packed)

    def keep_map(self, names) -> Mapping:
        """Layer name -> bool keep-mask for ``names``, each read from its file when asked for."""
        return OnDemand(list(names), self.keep_mask)

