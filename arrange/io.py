"""Weight import: models, state dicts and weight files to a list of :class:`Layer`.

Problem: users bring weights in many containers (a torch ``nn.Module``, a state
dict, ``.pt``/``.pth``, ``.safetensors``, ``.npy``, ``.npz``), often already
pruned by another flow, and some of them broken. The engine needs every conv and
linear weight as a :class:`~arrange.layer.Layer` with its mask, a one-line reason
for each weight it cannot use, and never an unpickled arbitrary object.

Method: every source is first turned into one flat ``name -> numpy array`` dict.
Entries whose key ends in ``weight`` (or ``weight_orig``, left by
``torch.nn.utils.prune``) are candidate layers, 2-D = linear, 4-D = conv; a dict
without such keys (a plain ``.npz``, a ``.npy``) has one candidate per array. For
an ``nn.Module`` the module types decide instead (``Conv2d`` with its ``groups``,
``Linear``; ``Embedding`` and norms by type). Masks come from
``<name>.weight_mask``, ``<name>_mask`` and ``<key>_mask`` entries and from the
``masks=`` argument; they are ANDed. A grouped conv becomes one layer per group.
``.pt`` files are read with ``torch.load(weights_only=True)``, which refuses
pickled Python objects.

Layer selection (DESIGN.md section 6b): by default the weight matrices of conv
and linear layers are arranged. Tensors that are never layers (1-D or 0-D: norm
scales, biases; buffers such as running statistics) and 2-D tensors named or
typed as embeddings (lookup tables, not matrix products: ``word_embeddings``,
``wte``, ``embed_tokens``, ``nn.Embedding``, ...) are *not selected*: listed with
the reason in :attr:`Model.not_selected`, never errors. ``include`` / ``exclude``
glob patterns (``fnmatch``, matched against the state-dict name and the layer
name) change the set: with ``include``, exactly the 2-D/4-D candidates it
matches are arranged (embeddings too); ``exclude`` removes what it matches. A
selected layer that cannot be used (NaN, a 3-D or 5-D weight, a bad mask) is a
fault, listed in :attr:`Model.skipped`.

Reference: PyTorch serialization notes, "weights_only" loading,
https://pytorch.org/docs/stable/notes/serialization.html ; safetensors format,
https://huggingface.co/docs/safetensors .
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from .errors import ArrangeError, LayerError, is_int
from .layer import KINDS, Layer, as_mask, group_name

__all__ = ["FORMATS", "Model", "NotSelected", "as_arrays", "layer_masks", "layer_weight", "load_model",
           "selection_summary", "to_state_dict", "weight_masks"]

WEIGHT_SUFFIXES = ("weight_orig", "weight")
#: file extensions load_model reads
FORMATS = (".pt", ".pth", ".safetensors", ".npy", ".npz")
_TORCH_HINT = "torch is needed for this (pip install 'arrange[torch]')"


#: the kinds of tensors the selection leaves out, in the order reports list them
_KIND_ORDER = ["embedding", "norm", "bias", "1-D", "buffer", "other", "excluded", "not included"]


@dataclass(frozen=True)
class NotSelected:
    """A tensor the layer selection left out (not an error): its state-dict name, a kind and why."""

    name: str
    kind: str       # "norm", "bias", "embedding", "1-D", "buffer", "other", "excluded", "not included"
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "reason": self.reason}


@dataclass
class Model:
    """Imported layers, the faults, the tensors not selected, and where they came from.

    ``skipped``: (layer, reason) for selected layers that cannot be used (a
    fault: the CLI exits 2). ``not_selected``: :class:`NotSelected` for tensors the
    selection leaves out (norms, biases, embeddings, excluded; not errors).
    ``keys``: layer name (without group suffix) -> the state-dict name of its
    weight, e.g. ``encoder.layer.0.attention.self.query.weight`` (``weight``, not
    ``weight_orig``, for ``torch.nn.utils.prune`` re-parametrisations).
    """

    layers: list[Layer]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    not_selected: list[NotSelected] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)

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


def selection_summary(not_selected) -> str:
    """One line counting the NotSelected tensors by kind, or '' when there are none."""
    counts = Counter(n.kind for n in not_selected)
    if not counts:
        return ""
    parts = ", ".join(f"{counts[kind]} {kind}" for kind in sorted(counts, key=_KIND_ORDER.index))
    return f"not arranged (selection, not errors): {parts} tensors; --include/--exclude change the set"


@dataclass(frozen=True)
class _Entry:
    """One candidate layer: its name, the array key, the kind (None = by ndim) and the groups.

    ``role``: None when arranged by default, else (kind, reason) of the default
    skip (an embedding), which an ``include`` pattern overrides.
    """

    name: str
    key: str
    kind: str | None = None
    groups: int = 1
    problem: str | None = None
    role: tuple[str, str] | None = None

    @property
    def state_name(self) -> str:
        """The weight's state-dict name as ``custom_from_mask`` users see it (``weight``, not ``weight_orig``)."""
        return self.key[: -len("_orig")] if self.key.endswith("weight_orig") else self.key


def load_model(source, masks: Mapping | None = None, groups: Mapping | None = None,
               include=None, exclude=None) -> Model:
    """Import the conv and linear layers of ``source`` that the selection picks.

    Parameters
    ----------
    source : a torch ``nn.Module``; a state dict (name -> tensor or ndarray); a
        2-D/4-D numpy array (one layer called ``matrix``); or a path to a
        ``.pt``/``.pth``, ``.safetensors``, ``.npy`` or ``.npz`` file.
    masks : optional layer name -> bool or 0/1 array of the full weight's shape;
        ANDed with any mask found in the source.
    groups : optional layer name -> conv groups, for sources that cannot tell
        (state dicts and files); an ``nn.Module``'s own ``groups`` are used otherwise.
    include, exclude : glob pattern or list of patterns on state-dict names
        (``encoder.*``, ``*.attention.*``, ``lm_head.weight``); a pattern may also
        match the layer name (``lm_head``). With ``include``, exactly the 2-D and
        4-D weights it matches are arranged (embeddings too); ``exclude`` leaves
        out what it matches, faulty weights included. 1-D tensors are never layers.

    Returns
    -------
    Model
        ``.layers`` in source order (a grouped conv as ``name[g0]``, ``name[g1]``, ...),
        ``.skipped`` as (name, reason) for selected weights that cannot be used
        (NaN/inf, wrong number of dimensions, mask shape mismatch): faults,
        ``.not_selected`` for the tensors the selection left out (not errors),
        ``.keys`` (layer name -> state-dict weight name), ``.source``.

    Raises
    ------
    ArrangeError
        One line, for an unreadable, corrupt or unsafe file (e.g. a pickled
        ``nn.Module``), an unknown source type, no weights at all,
        ``masks``/``groups`` naming layers the source does not have, or an
        include/exclude pattern that matches no tensor.

    Examples
    --------
    >>> import numpy as np
    >>> m = load_model({"fc.weight": np.eye(3), "fc.bias": np.zeros(3)})
    >>> [(l.name, l.kind, l.shape2d) for l in m.layers]
    [('fc', 'linear', (3, 3))]
    >>> [(n.name, n.kind) for n in m.not_selected]
    [('fc.bias', 'bias')]
    """
    label, tensors, entries, others = _read(source)
    if not entries:
        raise ArrangeError(f"no conv or linear weights found in {label}")
    _check_names("masks", masks, entries, label)
    _check_names("groups", groups, entries, label)
    bad = {k: g for k, g in (groups or {}).items() if not (is_int(g) and g >= 1)}
    if bad:
        raise ArrangeError(f"groups must be integers >= 1, got {bad}")
    include, exclude = _patterns("include", include), _patterns("exclude", exclude)
    _check_patterns(include + exclude, include, entries, others, label)
    model = Model([], [], label)
    dropped = list(others)
    for entry in entries:
        why = _unselected(entry, include, exclude)
        if why is not None:
            dropped.append((entry.key, NotSelected(entry.state_name, *why)))
            continue
        model.keys[entry.name] = entry.state_name
        try:
            model.layers.extend(_layers(entry, tensors, masks or {}, groups or {}))
        except LayerError as e:
            model.skipped.append((entry.name, e.problem))
    order = {k: i for i, k in enumerate(tensors)}
    model.not_selected = [n for _, n in sorted(dropped, key=lambda kn: order.get(kn[0], -1))]
    return model


def _patterns(what: str, given) -> list[str]:
    if given is None:
        return []
    patterns = [given] if isinstance(given, str) else list(given)
    if not all(isinstance(p, str) and p for p in patterns):
        raise ArrangeError(f"{what} patterns must be non-empty strings, got {given!r}")
    return patterns


def _matches(entry_or_name, pattern: str) -> bool:
    if isinstance(entry_or_name, _Entry):
        names = (entry_or_name.state_name, entry_or_name.key, entry_or_name.name)
    else:
        names = (entry_or_name,)
    return any(fnmatchcase(n, pattern) for n in names)


def _check_patterns(patterns, include, entries, others, label: str) -> None:
    """A pattern that matches nothing is a typo far more often than intent: say so."""
    for p in patterns:
        if not (any(_matches(e, p) for e in entries) or any(_matches(o.name, p) for _, o in others)):
            kind = "include" if p in include else "exclude"
            raise ArrangeError(f"{kind} pattern {p!r} matches no tensor of {label}; names look like "
                               f"{_names([e.state_name for e in entries], limit=4)}")


def _unselected(entry: _Entry, include: list, exclude: list) -> tuple[str, str] | None:
    """(kind, reason) when the selection leaves ``entry`` out, None when it is arranged."""
    hit = next((p for p in exclude if _matches(entry, p)), None)
    if hit is not None:
        return "excluded", f"excluded by pattern {hit!r}"
    if include:
        if any(_matches(entry, p) for p in include):
            return None
        return "not included", "matches no include pattern"
    return entry.role


def _read(source):
    """(label, tensors, candidate entries, [(key, NotSelected)] for tensors that are never layers)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        tensors = _read_file(path)
        return (str(path), tensors, *_dict_entries(tensors))
    if _is_module(source):
        return _module_source(source)
    if isinstance(source, Mapping):
        tensors = as_arrays(source)
        return ("state dict", tensors, *_dict_entries(tensors))
    if isinstance(source, np.ndarray):
        return "array", {"matrix": source}, [_Entry("matrix", "matrix")], []
    raise ArrangeError(f"cannot import a {type(source).__name__}; allowed: an nn.Module, a state dict, "
                       f"a numpy array or a path to a {'/'.join(FORMATS)} file")


def _is_module(obj) -> bool:
    torch = sys.modules.get("torch")  # an nn.Module exists only if torch is already imported
    return torch is not None and isinstance(obj, torch.nn.Module)


# --- what a tensor is --------------------------------------------------------

#: the last part of a module name that marks a 2-D weight as an embedding table:
#: BERT word/position/token_type_embeddings, GPT-2 wte/wpe, LLaMA embed_tokens and
#: tok_embeddings, T5 shared and relative_attention_bias, OPT embed_positions,
#: GPT-NeoX embed_in (its embed_out is the output layer, a linear one)
_EMBEDDING = re.compile(r"(wte|wpe|shared|emb|embed|embeds|embedding|embeddings|embed_(in|tokens|positions)"
                        r"|.*_(emb|embed|embeds|embedding|embeddings)|.*relative_attention_bias)", re.I)
#: the last part of a module name that marks a norm: LayerNorm, layer_norm, ln_1, ln_f,
#: input_layernorm, model.norm, bn1, gn, final_layer_norm, RMSNorm, ...
_NORM = re.compile(r".*norm.*|(ln|bn|gn)(_?[a-z0-9]*)|.*_(ln|bn|gn)", re.I)
_EMBEDDING_ROLE = ("embedding", "2-D embedding table (a lookup, not a matrix product); "
                                "an include pattern arranges it as a linear layer")


def _last(prefix: str) -> str:
    return prefix.rstrip("._").rsplit(".", 1)[-1]


def _never_a_layer(key: str, a: np.ndarray, norm: bool) -> NotSelected:
    """Why a tensor that is not a 2-D/4-D candidate is left out."""
    last = key.rsplit(".", 1)[-1]
    what = "bias" if last.startswith("bias") else "weight" if _weight_suffix(key) else "tensor"
    if norm:
        return NotSelected(key, "norm", f"{a.ndim}-D norm {what}, not a layer")
    if what == "bias":
        return NotSelected(key, "bias", f"{a.ndim}-D bias, not a layer")
    if what == "weight" and a.ndim <= 1:
        return NotSelected(key, "1-D", f"{a.ndim}-D weight: a scale, never a layer")
    return NotSelected(key, "buffer", f"{a.ndim}-D {a.dtype} tensor that is not a weight (a buffer or "
                                      f"running statistic)")


def _module_source(module):
    """Entries from module types: Conv2d (with groups) and Linear; Embedding and norms by type."""
    from torch import nn

    tensors = as_arrays(module.state_dict())
    modules = dict(module.named_modules())
    entries = []
    for name, m in modules.items():
        prefix = f"{name}." if name else ""
        key = prefix + ("weight_orig" if prefix + "weight_orig" in tensors else "weight")
        label = name or type(module).__name__
        if isinstance(m, nn.Conv2d):
            entries.append(_Entry(label, key, "conv", m.groups))
        elif isinstance(m, nn.Linear):
            entries.append(_Entry(label, key, "linear"))
        elif isinstance(m, nn.modules.conv._ConvNd):
            entries.append(_Entry(label, key, problem=f"{type(m).__name__} is not supported; "
                                                      f"allowed: Conv2d, Linear"))
        elif isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and key in tensors:
            entries.append(_Entry(label, key, "linear", role=_EMBEDDING_ROLE))
    used = {k for e in entries for k in (e.key, *_mask_keys(e))}
    others = []
    for k, a in tensors.items():
        if k in used:
            continue
        m = modules.get(k.rsplit(".", 1)[0] if "." in k else "")
        if _is_norm_module(m):
            item = NotSelected(k, "norm", f"{a.ndim}-D tensor of a {type(m).__name__}, not a layer")
        elif a.ndim in (2, 4) and _weight_suffix(k):
            item = NotSelected(k, "other", f"{a.ndim}-D weight of a {type(m).__name__} module; only "
                                           f"Conv2d, Linear and Embedding weights are arranged from a module")
        else:
            item = _never_a_layer(k, a, False)
        others.append((k, item))
    return f"{type(module).__name__} module", tensors, entries, others


def _is_norm_module(m) -> bool:
    from torch import nn

    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
    return m is not None and (isinstance(m, norms) or "norm" in type(m).__name__.lower())


def _weight_suffix(key: str) -> str | None:
    return next((s for s in WEIGHT_SUFFIXES if key.endswith(s)), None)


def _dict_entries(tensors: Mapping[str, np.ndarray]):
    """Candidate entries (keys ending in weight/weight_orig; without any, every non-mask array)
    and [(key, NotSelected)] for the tensors that are never layers."""
    weight_keys = [k for k in tensors if _weight_suffix(k)]
    plain = not weight_keys
    if plain:
        weight_keys = [k for k in tensors if not k.endswith("_mask")]
    stats = {k[: -len("running_mean")] for k in tensors if k.endswith("running_mean")}

    def is_norm(prefix: str) -> bool:
        return prefix in stats or bool(prefix.strip("._") and _NORM.fullmatch(_last(prefix)))

    entries, others, used = [], [], set()
    for key in weight_keys:
        used.add(key)
        if key + "_orig" in tensors:  # the pruned original plus its mask is the source of truth
            continue
        a = tensors[key]
        prefix = key if plain else key[: -len(_weight_suffix(key))]
        if a.ndim <= 1:
            others.append((key, _never_a_layer(key, a, is_norm(prefix))))
            continue
        role = _EMBEDDING_ROLE if a.ndim == 2 and _EMBEDDING.fullmatch(_last(prefix)) else None
        entry = _Entry(key if plain else prefix.rstrip("._") or key, key, role=role)
        entries.append(entry)
        used.update(_mask_keys(entry))
    for key, a in tensors.items():
        if key not in used and not key.endswith("_mask"):
            others.append((key, _never_a_layer(key, a, is_norm(key.rsplit(".", 1)[0] + "." if "." in key else ""))))
    return entries, others


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
        raise LayerError(entry.name, f"{w.ndim}-D array {tuple(w.shape)} is not a conv (4-D) or linear (2-D) "
                                     f"weight; exclude {entry.state_name!r} to leave it out")
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


def weight_masks(layers, keep: Mapping, keys: Mapping | None = None) -> dict[str, np.ndarray]:
    """State-dict weight name -> bool mask of the full weight, grouped convs merged back.

    ``keep``: layer name -> bool (R, N) keep-mask (e.g. ``CombineResult.keep_mask``);
    a module is included only when every one of its groups is in ``keep``.
    ``keys``: layer name -> state-dict weight name (:attr:`Model.keys`);
    ``<name>.weight`` where it has none. The masks are what
    ``torch.nn.utils.prune.custom_from_mask(module, "weight", mask)`` takes.
    """
    layers = list(layers)
    missing = {l.base_name for l in layers if l.name not in keep}
    chosen = [l for l in layers if l.base_name not in missing]
    arrays = []
    for l in chosen:
        m = np.asarray(keep[l.name], dtype=bool)
        if m.size != l.weight.size:
            raise ArrangeError(f"layer {l.name}: keep-mask of shape {m.shape} does not fit its weight "
                               f"{tuple(l.weight.shape)}")
        arrays.append(m.reshape(l.weight.shape))
    keys = keys or {}
    return {keys.get(b, f"{b}.weight"): m for b, m in _merge(chosen, arrays).items()}


def layer_weight(state: Mapping, layer: Layer) -> np.ndarray:
    """The layer's slice of its module's weight in a state dict (its group's output channels), float64.

    The inverse of :func:`to_state_dict` for one layer: shaped like ``layer.weight``.
    """
    full = np.asarray(state[f"{layer.base_name}.weight"], dtype=np.float64)
    rows = layer.weight.shape[0]
    return full[layer.group * rows:(layer.group + 1) * rows]
