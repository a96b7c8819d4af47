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
pickled Python objects. ``.safetensors`` files are parsed here (the 8-byte
header length, the JSON header, each tensor's byte range checked against the
file size) and every tensor is a read-only memory map of its bytes (BF16
widened to float32), so neither torch nor the safetensors package is needed
and, with ``stream=True``, each layer is read only when it is used
(:class:`LazyLayers`). Size guards run before anything is decompressed: a
``.npz`` or ``.pt`` whose zip directory (and, for ``.npz``, whose ``.npy``
headers) says it expands beyond MemAvailable is refused with both figures,
as is a member whose header claims more bytes than it holds; ``.npz`` members
that are not arrays are listed as not selected. Two weights that would get
one layer name (``fc.weight`` and ``fc_weight``) keep their full keys as names.

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

import json
import os
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from .errors import ArrangeError, LayerError, is_int
from .layer import KINDS, Layer, as_mask, group_name

__all__ = ["FORMATS", "LazyLayers", "Model", "OnDemand", "NotSelected", "as_arrays", "layer_masks", "layer_weight", "load_model", "read_arrays",
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


@dataclass(frozen=True)
class LayerShape:
    """What is known of a layer without reading its weights: its name, group and the weight's shape.

    ``weight`` is a :class:`ShapeOnly`, so :func:`weight_masks` takes these in place of layers.
    """

    name: str
    weight: "ShapeOnly"
    group: int = 0
    groups: int = 1

    @property
    def base_name(self) -> str:
        return Layer.base_name.fget(self)


@dataclass(frozen=True)
class ShapeOnly:
    """A weight's shape and dtype, standing in for the array."""

    shape: tuple
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


class LazyLayers(Sequence):
    """A model's layers read from a memory-mapped file one at a time, when asked for.

    ``layers[i]`` reads and checks layer i (LayerError on a fault) and keeps
    no reference to it, so at most the layers a caller holds are in memory;
    ``shapes[i]`` is its :class:`LayerShape`, known without reading.
    """

    def __init__(self, entries, tensors, masks: Mapping, groups: Mapping):
        self._tensors, self._masks, self._groups = tensors, masks, groups
        self._items, self.shapes = [], []
        for entry in entries:
            count = groups.get(entry.name, entry.groups)
            shape = tensors.shape(entry.key)
            for g in range(count):
                self._items.append((entry, g))
                self.shapes.append(LayerShape(group_name(entry.name, g, count),
                                              ShapeOnly((shape[0] // count, *shape[1:]), tensors.dtype(entry.key)),
                                              g, count))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        entry, g = self._items[i]
        return _layers(entry, self._tensors, self._masks, self._groups)[g]


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


def _unique_names(entries: list[_Entry]) -> list[_Entry]:
    """Entries whose layer names collide (``fc.weight`` and ``fc_weight`` both give ``fc``) take their
    full array keys as names instead, so no output loses one of them."""
    counts = Counter(e.name for e in entries)
    return [replace(e, name=e.key) if counts[e.name] > 1 and e.key != e.name else e for e in entries]


def load_model(source, masks: Mapping | None = None, groups: Mapping | None = None,
               include=None, exclude=None, stream: bool = False) -> Model:
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
    stream : for a ``.safetensors`` file, read each layer from the
        memory-mapped file only when it is asked for (``Model.layers`` is then
        a :class:`LazyLayers`): the model is never in memory at once, and a
        faulty weight (NaN, a bad mask) raises its LayerError when that layer
        is read instead of being listed in ``skipped``. Other sources ignore it.

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
    entries = _unique_names(entries)
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
    lazy = stream and isinstance(tensors, _SafetensorsFile)
    chosen = []
    for entry in entries:
        why = _unselected(entry, include, exclude)
        if why is not None:
            dropped.append((entry.key, NotSelected(entry.state_name, *why)))
            continue
        model.keys[entry.name] = entry.state_name
        if lazy:
            chosen.append(entry)
            continue
        try:
            model.layers.extend(_layers(entry, tensors, masks or {}, groups or {}))
        except LayerError as e:
            model.skipped.append((entry.name, e.problem))
    if lazy:
        model.layers = LazyLayers(chosen, tensors, masks or {}, groups or {})
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
        tensors, ignored = _read_file(path)
        entries, others = _dict_entries(tensors)
        return str(path), tensors, entries, ignored + others
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


def read_arrays(path) -> dict[str, np.ndarray]:
    """Every array member of a .pt/.pth/.safetensors/.npy/.npz file, name -> numpy array, in memory.

    The same guarded readers as :func:`load_model` (``weights_only`` torch
    loading, size checks before decompressing); members that are not arrays
    are left out. For checkpoints a caller edits (a user's model) and per-layer
    side files (scores); :func:`load_model` streams instead.
    """
    tensors, _ = _read_file(Path(path))
    return {name: np.array(tensors[name]) for name in tensors}


def _read_file(path: Path):
    """(name -> array, [(key, NotSelected)] for members that are not arrays)."""
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
        out = reader(path)
    except ArrangeError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file can fail anywhere inside the reader
        raise ArrangeError(f"cannot read {path.name}: {_first_line(e)}") from e
    return out if isinstance(out, tuple) else (out, [])


def _first_line(e: Exception) -> str:
    """The exception's first sentence: library messages run to paragraphs."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0].split('. ')[0]}" if text else type(e).__name__


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def _check_fits(path: Path, need: int, what: str) -> None:
    """ArrangeError before reading ``need`` bytes into memory that MemAvailable says is not there."""
    from .executor import available_memory

    free = available_memory()
    if free is not None and need > free:
        raise ArrangeError(f"cannot read {path.name}: {what} need {_gib(need)} in memory, "
                           f"{_gib(free)} available; refused before decompressing")


def _zip_sizes(path: Path, zf: zipfile.ZipFile) -> None:
    """Refuse a zip whose members expand (by its directory) beyond the memory available."""
    total = sum(i.file_size for i in zf.infolist())
    _check_fits(path, total, f"its {len(zf.infolist())} members (uncompressed, from the zip directory)")


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ArrangeError(f"cannot read {path.name}: {_TORCH_HINT}") from None
    import pickle

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            _zip_sizes(path, zf)
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


#: safetensors dtype -> numpy dtype of the stored bytes (BF16 is read as uint16 and widened to float32)
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
#: the largest JSON header a safetensors file may have (the format's own limit is 100 MB)
_ST_HEADER_MAX = 100_000_000


class _SafetensorsFile(Mapping):
    """The tensors of a ``.safetensors`` file, each a read-only memory map of its bytes, made when asked for.

    The header (8-byte little-endian length, then JSON: name -> dtype, shape,
    data_offsets) is checked against the file size when opened; no tensor
    data is read then. Needs neither torch nor the safetensors package.
    """

    def __init__(self, path: Path):
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ArrangeError(f"cannot read {path.name}: not a safetensors file (too short)")
            n = int.from_bytes(head, "little")
            if not 2 <= n <= min(_ST_HEADER_MAX, size - 8):
                raise ArrangeError(f"cannot read {path.name}: not a safetensors file (header length {n})")
            try:
                header = json.loads(f.read(n))
            except ValueError:
                raise ArrangeError(f"cannot read {path.name}: not a safetensors file (corrupt header)") from None
        if not isinstance(header, dict):
            raise ArrangeError(f"cannot read {path.name}: not a safetensors file (corrupt header)")
        header.pop("__metadata__", None)
        self._start = 8 + n
        self._info = {}
        for name, info in header.items():
            try:
                dtype, shape, (begin, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise ArrangeError(f"cannot read {path.name}: bad header entry for {name!r}") from None
            if dtype not in _ST_DTYPES:
                raise ArrangeError(f"cannot read {path.name}: tensor {name!r} has dtype {dtype}, which is not "
                                   f"supported; allowed: {', '.join(_ST_DTYPES)}")
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if (min(shape, default=0) < 0 or not 0 <= begin <= end <= size - self._start
                    or end - begin != count * np.dtype(_ST_DTYPES[dtype]).itemsize):
                raise ArrangeError(f"cannot read {path.name}: tensor {name!r} ({dtype} {shape}) does not fit "
                                   f"its byte range {begin}-{end} of a {size}-byte file (corrupt or truncated?)")
            self._info[name] = (dtype, shape, begin)

    def __iter__(self):
        return iter(self._info)

    def __len__(self) -> int:
        return len(self._info)

    def __contains__(self, key) -> bool:
        return key in self._info

    def shape(self, key: str) -> tuple:
        return self._info[key][1]

    def dtype(self, key: str) -> np.dtype:
        kind = self._info[key][0]
        return np.dtype(np.float32 if kind == "BF16" else _ST_DTYPES[kind])

    def __getitem__(self, key: str) -> np.ndarray:
        kind, shape, begin = self._info[key]
        raw = np.dtype(_ST_DTYPES[kind])
        if 0 in shape:
            a = np.zeros(shape, dtype=raw)
        else:
            a = np.memmap(self.path, dtype=raw, mode="r", offset=self._start + begin, shape=shape)
        if kind == "BF16":   # the top half of a float32
            return (np.asarray(a).astype(np.uint32) << 16).view(np.float32)
        return a


def _read_safetensors(path: Path) -> _SafetensorsFile:
    return _SafetensorsFile(path)


def _npy_bytes(f) -> tuple[int, tuple]:
    """(bytes the array needs, shape) from a .npy header, without reading the data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, shape


def _read_npy(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ArrangeError(f"cannot read {path.name}: not a .npy file (corrupt or truncated?)")
        f.seek(0)
        need, shape = _npy_bytes(f)
        if need > path.stat().st_size - f.tell():
            raise ArrangeError(f"cannot read {path.name}: its header says {shape}, more than the file holds "
                               f"(corrupt or truncated?)")
    return {path.stem: _no_pickle(path, lambda: np.load(path, allow_pickle=False, mmap_mode="r"))}


def _read_npz(path: Path):
    if not zipfile.is_zipfile(path):
        raise ArrangeError(f"cannot read {path.name}: not a .npz file (corrupt or truncated?)")
    ignored, need = [], 0
    with zipfile.ZipFile(path) as zf:
        _zip_sizes(path, zf)
        members = []
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if not info.filename.endswith(".npy") or info.is_dir():
                ignored.append((key, NotSelected(key, "other", "not a .npy array member of the .npz")))
                continue
            with zf.open(info) as f:
                try:
                    size, shape = _npy_bytes(f)
                except ValueError:
                    ignored.append((key, NotSelected(key, "other", "not a .npy array member of the .npz")))
                    continue
            if size > info.file_size:
                raise ArrangeError(f"cannot read {path.name}: member {key!r} says {shape}, more than its "
                                   f"{info.file_size} bytes (corrupt or truncated?)")
            need += size
            members.append(key)
    _check_fits(path, need, f"its {len(members)} arrays (from their .npy headers)")
    with np.load(path, allow_pickle=False) as z:
        return {k: _no_pickle(path, lambda: z[k]) for k in members}, ignored


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


def weight_masks(layers, keep: Mapping, keys: Mapping | None = None, lazy: bool = False):
    """State-dict weight name -> bool mask of the full weight, grouped convs merged back.

    ``keep``: layer name -> bool (R, N) keep-mask (e.g. ``CombineResult.keep_mask``);
    a module is included only when every one of its groups is in ``keep``.
    ``keys``: layer name -> state-dict weight name (:attr:`Model.keys`);
    ``<name>.weight`` where it has none. The masks are what
    ``torch.nn.utils.prune.custom_from_mask(module, "weight", mask)`` takes.
    ``layers`` may be :attr:`LazyLayers.shapes` (only names and shapes are used).
    ``lazy``: a mapping that merges each module's mask when asked for (reading
    ``keep`` then), instead of a dict holding them all.
    """
    layers = list(layers)
    missing = {l.base_name for l in layers if l.name not in keep}
    modules: dict[str, list] = {}
    for l in layers:
        if l.base_name not in missing:
            modules.setdefault(l.base_name, []).append(l)
    keys = keys or {}
    names = {keys.get(b, f"{b}.weight"): b for b in modules}

    def merged(key: str) -> np.ndarray:
        chosen = modules[names[key]]
        arrays = []
        for l in chosen:
            m = np.asarray(keep[l.name], dtype=bool)
            if m.size != l.weight.size:
                raise ArrangeError(f"layer {l.name}: keep-mask of shape {m.shape} does not fit its weight "
                                   f"{tuple(l.weight.shape)}")
            arrays.append(m.reshape(l.weight.shape))
        return _merge(chosen, arrays)[names[key]]

    out = OnDemand(list(names), merged)
    return out if lazy else dict(out.items())


class OnDemand(Mapping):
    """A read-only mapping whose values are made when asked for."""

    def __init__(self, names: list, make):
        self._names, self._make = names, make

    def __getitem__(self, key):
        if key not in self._names:
            raise KeyError(key)
        return self._make(key)

    def __contains__(self, key) -> bool:
        return key in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def layer_weight(state: Mapping, layer: Layer) -> np.ndarray:
    """The layer's slice of its module's weight in a state dict (its group's output channels), float64.

    The inverse of :func:`to_state_dict` for one layer: shaped like ``layer.weight``.
    """
    full = np.asarray(state[f"{layer.base_name}.weight"], dtype=np.float64)
    rows = layer.weight.shape[0]
    return full[layer.group * rows:(layer.group + 1) * rows]
