"""Weight import: models, state dicts and weight files to a list of :class:`Layer`.

Problem: users bring weights in many containers (a torch ``nn.Module``, a state
dict, ``.pt``/``.pth``, ``.safetensors``, ``.npy``, ``.npz``), often already
pruned by another flow, and some of them broken. The engine needs every conv and
linear weight as a :class:`~arrange.layer.Layer` with its mask, a one-line reason
for each weight it cannot use, and never an unpickled arbitrary object.

Method: every source is first turned into one flat ``name -> numpy array`` dict.
Entries whose key ends in ``weight`` (or ``weight_orig``, left by
``torch.nn.utils.prune``) are layers, 2-D = linear, 4-D = conv; a dict without
such keys (a plain ``.npz``, a ``.npy``) has one layer per array. For an
``nn.Module`` the module types decide instead (``Conv2d`` with its ``groups``,
``Linear``). Masks come from ``<name>.weight_mask``, ``<name>_mask`` and
``<key>_mask`` entries and from the ``masks=`` argument; they are ANDed. A
grouped conv becomes one layer per group. ``.pt`` files are read with
``torch.load(weights_only=True)``, which refuses pickled Python objects.

Reference: PyTorch serialization notes, "weights_only" loading,
https://pytorch.org/docs/stable/notes/serialization.html ; safetensors format,
https://huggingface.co/docs/safetensors .
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ArrangeError, LayerError, is_int
from .layer import KINDS, Layer, as_mask, group_name

__all__ = ["FORMATS", "Model", "as_arrays", "layer_masks", "layer_weight", "load_model", "to_state_dict"]

WEIGHT_SUFFIXES = ("weight_orig", "weight")
#: file extensions load_model reads
FORMATS = (".pt", ".pth", ".safetensors", ".npy", ".npz")
_TORCH_HINT = "torch is needed for this (pip install 'arrange[torch]')"


@dataclass
class Model:
    """Imported layers, the weights that were skipped (name, reason), and where they came from."""

    layers: list[Layer]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; ArrangeError naming the known layers otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ArrangeError(f"no layer {name!r} in {self.source}; layers: {_names([l.name for l in self.layers])}")


@dataclass(frozen=True)
class _Entry:
    """One candidate layer: its name, the array key, the kind (None = by ndim) and the groups."""

    name: str
    key: str
    kind: str | None = None
    groups: int = 1
    problem: str | None = None


def load_model(source, masks: Mapping | None = None, groups: Mapping | None = None) -> Model:
    """Import every conv and linear layer of ``source``.

    Parameters
    ----------
    source : a torch ``nn.Module``; a state dict (name -> tensor or ndarray); a
        2-D/4-D numpy array (one layer called ``matrix``); or a path to a
        ``.pt``/``.pth``, ``.safetensors``, ``.npy`` or ``.npz`` file.
    masks : optional layer name -> bool or 0/1 array of the full weight's shape;
        ANDed with any mask found in the source.
    groups : optional layer name -> conv groups, for sources that cannot tell
        (state dicts and files); an ``nn.Module``'s own ``groups`` are used otherwise.

    Returns
    -------
    Model
        ``.layers`` in source order (a grouped conv as ``name[g0]``, ``name[g1]``, ...),
        ``.skipped`` as (name, reason) for weights that cannot be used
        (NaN/inf, wrong number of dimensions, mask shape mismatch), ``.source``.

    Raises
    ------
    ArrangeError
        One line, for an unreadable, corrupt or unsafe file (e.g. a pickled
        ``nn.Module``), an unknown source type, no weights at all, or
        ``masks``/``groups`` naming layers the source does not have.

    Examples
    --------
    >>> import numpy as np
    >>> m = load_model({"fc.weight": np.eye(3), "fc.bias": np.zeros(3)})
    >>> [(l.name, l.kind, l.shape2d) for l in m.layers]
    [('fc', 'linear', (3, 3))]
    """
    label, tensors, entries = _read(source)
    if not entries:
        raise ArrangeError(f"no conv or linear weights found in {label}")
    _check_names("masks", masks, entries, label)
    _check_names("groups", groups, entries, label)
    bad = {k: g for k, g in (groups or {}).items() if not (is_int(g) and g >= 1)}
    if bad:
        raise ArrangeError(f"groups must be integers >= 1, got {bad}")
    model = Model([], [], label)
    for entry in entries:
        try:
            model.layers.extend(_layers(entry, tensors, masks or {}, groups or {}))
        except LayerError as e:
            model.skipped.append((entry.name, e.problem))
    return model


def _read(source) -> tuple[str, dict[str, np.ndarray], list[_Entry]]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        tensors = _read_file(path)
        return str(path), tensors, _dict_entries(tensors)
    if _is_module(source):
        return _module_source(source)
    if isinstance(source, Mapping):
        tensors = as_arrays(source)
        return "state dict", tensors, _dict_entries(tensors)
    if isinstance(source, np.ndarray):
        return "array", {"matrix": source}, [_Entry("matrix", "matrix")]
    raise ArrangeError(f"cannot import a {type(source).__name__}; allowed: an nn.Module, a state dict, "
                       f"a numpy array or a path to a {'/'.join(FORMATS)} file")


def _is_module(obj) -> bool:
    torch = sys.modules.get("torch")  # an nn.Module exists only if torch is already imported
    return torch is not None and isinstance(obj, torch.nn.Module)


def _module_source(module) -> tuple[str, dict[str, np.ndarray], list[_Entry]]:
    """Entries from module types: Conv2d (with groups) and Linear; other convs are skipped."""
    from torch import nn

    tensors = as_arrays(module.state_dict())
    entries = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            kind, groups, problem = "conv", m.groups, None
        elif isinstance(m, nn.Linear):
            kind, groups, problem = "linear", 1, None
        elif isinstance(m, nn.modules.conv._ConvNd):
            kind, groups, problem = None, 1, f"{type(m).__name__} is not supported; allowed: Conv2d, Linear"
        else:
            continue
        prefix = f"{name}." if name else ""
        key = prefix + ("weight_orig" if prefix + "weight_orig" in tensors else "weight")
        entries.append(_Entry(name or type(module).__name__, key, kind, groups, problem))
    return f"{type(module).__name__} module", tensors, entries


def _weight_suffix(key: str) -> str | None:
    return next((s for s in WEIGHT_SUFFIXES if key.endswith(s)), None)


def _dict_entries(tensors: Mapping[str, np.ndarray]) -> list[_Entry]:
    """State-dict keys ending in weight/weight_orig; without any, every non-mask array."""
    weight_keys = [k for k in tensors if _weight_suffix(k)]
    if not weight_keys:
        return [_Entry(k, k) for k in tensors if not k.endswith("_mask")]
    entries = []
    for key in weight_keys:
        prefix = key[: -len(_weight_suffix(key))]
        if key + "_orig" in tensors:  # the pruned original plus its mask is the source of truth
            continue
        if tensors[key].ndim == 1 and prefix + "running_mean" in tensors:
            continue  # a batch-norm scale, not a layer to pack
        entries.append(_Entry(prefix.rstrip("._") or key, key))
    return entries


def _mask_keys(entry: _Entry) -> list[str]:
    suffix = _weight_suffix(entry.key)
    prefix = [entry.key[: -len(suffix)] + "weight_mask"] if suffix else []
    return prefix + [entry.name + "_mask", entry.key + "_mask"]


def _layers(entry: _Entry, tensors, masks: Mapping, groups: Mapping) -> list[Layer]:
    """The entry's layer(s); LayerError on anything that makes it unusable."""
    if entry.problem:
        raise LayerError(entry.name, entry.problem)
    w = tensors.get(entry.key)
    if w is None:
        raise LayerError(entry.name, f"no array {entry.key!r}")
    kind = entry.kind or next((k for k, nd in KINDS.items() if nd == w.ndim), None)
    if kind is None or w.ndim != KINDS[kind]:
        raise LayerError(entry.name, f"{w.ndim}-D array {tuple(w.shape)} is not a conv (4-D) "
                                     f"or linear (2-D) weight")
    mask = None
    for key in _mask_keys(entry):
        if key in tensors:
            mask = as_mask(entry.name, tensors[key], w.shape)
            break
    if entry.name in masks:
        given = as_mask(entry.name, masks[entry.name], w.shape)
        mask = given if mask is None else mask & given
    whole = Layer(entry.name, kind, w, mask)
    return _split_groups(whole, groups.get(entry.name, entry.groups))


def _split_groups(layer: Layer, groups: int) -> list[Layer]:
    """A grouped conv's weight (O, I/groups, kh, kw) as one layer per block of O/groups filters."""
    if groups == 1:
        return [layer]
    out = layer.weight.shape[0]
    if layer.kind != "conv" or out % groups:
        raise LayerError(layer.name, f"groups={groups} does not fit a {layer.kind} weight "
                                     f"{tuple(layer.weight.shape)}; the output channels must divide evenly")
    size = out // groups
    return [Layer(group_name(layer.name, g, groups), "conv", layer.weight[g * size:(g + 1) * size],
                  None if layer.mask is None else layer.mask[g * size:(g + 1) * size], g, groups)
            for g in range(groups)]


def _check_names(what: str, given: Mapping | None, entries: list[_Entry], label: str) -> None:
    unknown = sorted(set(given or ()) - {e.name for e in entries})
    if unknown:
        raise ArrangeError(f"{what} given for unknown layer(s) {', '.join(map(str, unknown))} "
                           f"of {label}; layers: {_names([e.name for e in entries])}")


def _names(names: list[str], limit: int = 8) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "(none)"


# --- reading containers -------------------------------------------------------


def as_arrays(d: Mapping) -> dict[str, np.ndarray]:
    """The array-valued entries of ``d`` (numpy arrays or torch tensors) as numpy; others are dropped."""
    out = {}
    for k, v in d.items():
        a = _to_numpy(v)
        if a is not None:
            out[str(k)] = a
    return out


def _to_numpy(v) -> np.ndarray | None:
    if isinstance(v, np.ndarray):
        return v
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        if v.is_floating_point() and v.dtype not in (torch.float32, torch.float64):
            v = v.float()  # numpy has no bfloat16
        return v.numpy()
    return None


def _read_file(path: Path) -> dict[str, np.ndarray]:
    readers = {".pt": _read_torch, ".pth": _read_torch, ".safetensors": _read_safetensors,
               ".npy": _read_npy, ".npz": _read_npz}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ArrangeError(f"cannot read {path.name}: unknown format {path.suffix or '(no extension)'!r}; "
                           f"allowed: {', '.join(FORMATS)}")
    if not path.is_file():
        raise ArrangeError(f"cannot read {path}: no such file")
    if path.stat().st_size == 0:
        raise ArrangeError(f"cannot read {path.name}: empty file")
    try:
        return reader(path)
    except ArrangeError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file can fail anywhere inside the reader
        raise ArrangeError(f"cannot read {path.name}: {_first_line(e)}") from e


def _first_line(e: Exception) -> str:
    """The exception's first sentence: library messages run to paragraphs."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0].split('. ')[0]}" if text else type(e).__name__


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ArrangeError(f"cannot read {path.name}: {_TORCH_HINT}") from None
    import pickle

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if found:
            raise ArrangeError(f"cannot read {path.name}: it holds a pickled {found.group(1)} object, which is "
                               f"refused for safety; save model.state_dict() instead") from None
        raise ArrangeError(f"cannot read {path.name}: not a torch weights file (corrupt or truncated?)") from None
    if isinstance(obj, torch.Tensor):
        return {path.stem: _to_numpy(obj)}
    if not isinstance(obj, Mapping):
        raise ArrangeError(f"cannot read {path.name}: holds a {type(obj).__name__}, not a state dict")
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    return as_arrays(obj)


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ArrangeError(f"cannot read {path.name}: safetensors is needed (pip install 'arrange[torch]')") \
            from None
    try:
        return load_file(path)
    except TypeError:
        # numpy lacks bfloat16/float8; torch can read those and upcast them
        if not _torch_available():
            raise
        from safetensors.torch import load_file as load_torch

        return as_arrays(load_torch(path))


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _read_npy(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ArrangeError(f"cannot read {path.name}: not a .npy file (corrupt or truncated?)")
    return {path.stem: _no_pickle(path, lambda: np.load(path, allow_pickle=False))}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ArrangeError(f"cannot read {path.name}: not a .npz file (corrupt or truncated?)")
    with np.load(path, allow_pickle=False) as z:
        return {k: _no_pickle(path, lambda: z[k]) for k in z.files}


def _no_pickle(path: Path, read) -> np.ndarray:
    """``read()`` (a numpy load with allow_pickle=False), with a clear error for object arrays."""
    try:
        return read()
    except ValueError as e:
        if "pickle" in str(e):
            raise ArrangeError(f"cannot read {path.name}: it holds pickled object arrays, which are refused "
                               f"for safety") from None
        raise


# --- back to tensors ----------------------------------------------------------


def _merge(layers, arrays) -> dict[str, np.ndarray]:
    """base name -> the groups' arrays concatenated along the output channels."""
    parts: dict[str, list] = {}
    for layer, a in zip(layers, arrays):
        parts.setdefault(layer.base_name, [None] * layer.groups)
        slots = parts[layer.base_name]
        if len(slots) != layer.groups or slots[layer.group] is not None:
            raise ArrangeError(f"layer {layer.name}: group {layer.group} of {layer.groups} given twice "
                               f"or with another group count")
        slots[layer.group] = a
    missing = [f"{b}[g{g}]" for b, slots in parts.items() for g, a in enumerate(slots) if a is None]
    if missing:
        raise ArrangeError(f"missing groups {', '.join(missing)}; a grouped conv needs all its groups")
    return {b: np.concatenate(slots) if len(slots) > 1 else slots[0] for b, slots in parts.items()}


def to_state_dict(layers) -> dict[str, np.ndarray]:
    """``<name>.weight`` -> the masked weight of each layer, grouped convs merged back."""
    layers = list(layers)
    return {f"{b}.weight": w for b, w in
            _merge(layers, [l.matrix.reshape(l.weight.shape) for l in layers]).items()}


def layer_masks(layers) -> dict[str, np.ndarray]:
    """Layer (module) name -> bool keep-mask of the full weight; all True where a layer has no mask."""
    layers = list(layers)
    return _merge(layers, [np.ones(l.weight.shape, bool) if l.mask is None else l.mask for l in layers])


def layer_weight(state: Mapping, layer: Layer) -> np.ndarray:
    """The layer's slice of its module's weight in a state dict (its group's output channels), float64.

    The inverse of :func:`to_state_dict` for one layer: shaped like ``layer.weight``.
    """
    full = np.asarray(state[f"{layer.base_name}.weight"], dtype=np.float64)
    rows = layer.weight.shape[0]
    return full[layer.group * rows:(layer.group + 1) * rows]
