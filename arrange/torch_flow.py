"""A user's ``nn.Module`` in, the arrangement back as ``torch.nn.utils.prune`` masks.

Problem: a user with a torch model (pruned by their own flow or not) wants
every conv and linear weight packed (P1, DESIGN.md section 3) and then wants
to go on fine-tuning with the packing's keep-mask held fixed, with the
module's own optimiser and training loop. Modules that already carry a
``torch.nn.utils.prune`` re-parametrisation (``weight_orig`` / ``weight_mask``,
with a forward pre-hook computing ``weight``) must come out with the
arrangement, not the old mask, in force.

Method: :func:`arrange.io.load_model` imports the module by module type
(``Conv2d`` with its groups, ``Linear``; embeddings and norms left out), taking
``weight_orig * weight_mask`` where a re-parametrisation exists; optional
magnitude pruning (:func:`arrange.prune.prune_layers`); every layer packed by
:func:`arrange.pipeline.pack_layers`; the keep-masks merged back to full
weights (grouped convs too) and installed with
``prune.custom_from_mask(module, "weight", mask)``. On a module already
pruned, torch multiplies the new mask into the old one (a
``PruningContainer``); the packing keeps a subset of the nonzeros of
``weight_orig * weight_mask``, so the product is exactly the keep-mask (checked
before installing). The module's ``weight`` is then the
decoded packing: conflict pruning removes entries and never changes a value.

:func:`compress_module` runs the Tight Compression flow
(:func:`arrange.joint.compress_model`) the same way, with the user's
``evaluate(module)`` and ``finetune(module)`` as its hooks
(:func:`arrange.hooks.torch_hooks`), and leaves the module holding the
compressed weights under their masks; :func:`arrange_module` takes the same
two functions. :func:`import_module` imports a module's layers as copies
(the importer's arrays share the parameters' memory, and every evaluation
loads a state into them). :func:`output_positions` counts each conv and
linear layer's output positions M on one forward pass (forward hooks), for
the hardware figures.

:func:`load_arrays` / :func:`numpy_state` move ``name -> ndarray`` states in and
out of a module for :mod:`arrange.hooks`; for a re-parametrised tensor a
``<m>.weight`` entry is what the forward pass must see, so it sets
``weight_orig`` and ``weight_mask`` to give exactly that.

The module is named ``torch_flow``, not ``torch``: ``arrange/torch.py`` would
be importable as plain ``torch`` from any script run inside ``arrange/`` (the
script's folder comes first on ``sys.path``) and reads like the package itself.

Reference: PyTorch, "Pruning tutorial" and ``torch.nn.utils.prune``
(custom_from_mask, PruningContainer),
https://pytorch.org/tutorials/intermediate/pruning_tutorial.html .
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import prune

from . import defaults as D
from .errors import ArrangeError
from .io import as_arrays, load_model, weight_masks
from .pipeline import PackReport, pack_layers
from .prune import prune_layers

__all__ = ["ArrangedModule", "arrange_module", "compress_module", "import_module", "install_masks", "load_arrays",
           "numpy_state", "output_positions", "pruned_tensors"]


@dataclass
class ArrangedModule:
    """What :func:`arrange_module` hands back.

    ``module``: the same module, now carrying the keep-masks as prune masks;
    ``report``: the :class:`~arrange.pipeline.PackReport` of
    :func:`arrange_module` (per-layer rows, faults in ``skipped``,
    ``not_selected``, ``results`` with each layer's ``CombineResult``, the
    metric by step in ``accuracy`` when an evaluator was given) or the
    :class:`~arrange.joint.CompressReport` of :func:`compress_module` (stages
    with the metric, ``layers`` of ``LayerOutcome``); ``masks``: state-dict
    weight name -> bool keep-mask of the full weight; ``packed``: layer name ->
    ``ColumnCombined`` (P1; None for a P2 layer of compress_module).
    """

    module: torch.nn.Module
    report: PackReport
    masks: dict
    packed: dict

    @property
    def results(self) -> dict:
        """Layer name -> the checked ``solvers.CombineResult`` (``.keep_mask``, ``.groups``, ...) of a pack,
        or the ``LayerOutcome`` (``.allowed``, ``.weights``, ...) of a compression."""
        results = getattr(self.report, "results", None)
        return results if results is not None else {o.name: o for o in self.report.layers}


def import_module(module: torch.nn.Module, include=None, exclude=None, masks=None):
    """:func:`arrange.io.load_model` on ``module`` (``masks``: its argument), the layers holding copies.

    The importer's arrays may share memory with the module's parameters, and
    every later :func:`load_arrays` (evaluating a stage) writes into those, so
    the layers would silently change under the pipeline; copies keep them the
    weights the module had when imported.
    """
    from dataclasses import replace

    model = load_model(module, masks=masks, include=include, exclude=exclude)
    model.layers = [replace(l, weight=l.weight.copy(), mask=None if l.mask is None else l.mask.copy())
                    for l in model.layers]
    return model


def arrange_module(module: torch.nn.Module, alpha: int = D.ALPHA, gamma: float = D.GAMMA, solver=D.SOLVER,
                   time_limit: float = D.TIME_LIMIT, seed: int = D.SEED, sparsity: float | None = None,
                   scope: str = "layer", include=None, exclude=None, apply: bool = True,
                   advise: bool = True, evaluate=None, finetune=None) -> ArrangedModule:
    """Pack every selected conv/linear weight of ``module`` and install the keep-masks as prune masks.

    Parameters
    ----------
    module : the user's model, pruned with ``torch.nn.utils.prune`` or not.
    alpha, gamma, solver, time_limit, seed : as :func:`arrange.pack` (time limit per layer).
    sparsity, scope : magnitude-prune the selected weights to this sparsity first
        (``scope="global"``: one threshold over them all); None keeps the module's zeros.
    include, exclude : glob patterns on state-dict names (see :func:`arrange.io.load_model`).
    apply : install the masks with ``prune.custom_from_mask`` (in place); False
        leaves the module untouched and only returns them.
    advise : measure a gamma ladder on layers whose packing is larger than dense.
    evaluate : optional ``evaluate(module) -> float`` (higher is better); the
        metric of the dense, pruned and packed module goes in ``report.accuracy``.
    finetune : optional ``finetune(module) -> None``, your training loop, run on
        the packed module with the keep-masks registered through
        ``torch.nn.utils.prune`` (see :func:`arrange.hooks.torch_hooks`); the
        packing is re-encoded from the trained weights (same groups) and, with
        ``evaluate``, ``report.accuracy["finetuned"]`` measured.

    Returns
    -------
    ArrangedModule
        A layer that fails (all zero, NaN) is listed in ``report.skipped`` and
        gets no mask; the others are arranged.

    Raises
    ------
    ArrangeError : bad parameters, a pattern matching nothing, or no layers at all.
    """
    if not isinstance(module, torch.nn.Module):
        raise ArrangeError(f"arrange_module takes a torch.nn.Module, got a {type(module).__name__}")
    if finetune is not None and not apply:
        raise ArrangeError("finetune trains the module in place, so it needs apply=True")
    model = import_module(module, include=include, exclude=exclude)
    layers = model.layers
    if sparsity:
        layers = prune_layers(layers, sparsity, scope=scope)
    if not layers:
        raise ArrangeError(f"{model.source}: no conv or linear layers to arrange")
    report, packed = pack_layers(layers, alpha=alpha, gamma=gamma, solver=solver, time_limit=time_limit,
                                 seed=seed, skipped=model.skipped, not_selected=model.not_selected,
                                 advise=advise, keys=model.keys)
    masks = weight_masks(layers, report.keep_masks, model.keys)
    if evaluate is not None or finetune is not None:
        from .hooks import pack_metrics, torch_hooks

        hooks = torch_hooks(module, evaluate or (lambda m: 0.0), finetune=finetune)
        metrics, tuned, packed = pack_metrics(hooks, model.layers, layers, packed, finetune=finetune is not None,
                                              seed=seed)
        if evaluate is not None:
            report.accuracy = metrics
        if tuned is not None:
            load_arrays(module, tuned)
    if apply:
        install_masks(module, masks)
    return ArrangedModule(module, report, masks, packed)


def compress_module(module: torch.nn.Module, cfg=None, evaluate=None, finetune=None, schedule=None,
                    include=None, exclude=None, jobs: int = 1, finetune_rounds: int = 1,
                    apply: bool = True) -> ArrangedModule:
    """The Tight Compression flow (:func:`arrange.joint.compress_model`) on ``module``, masks back.

    ``cfg``: a :class:`~arrange.compress.CompressConfig` (default: its
    defaults); ``evaluate(module) -> float`` and ``finetune(module) -> None``
    as for :func:`arrange_module` (the metric goes in each stage, fine-tuning
    runs after every stage's arrangement; it needs ``evaluate``); ``schedule``, ``jobs``,
    ``finetune_rounds`` as compress_model. With ``apply`` the module ends up
    holding the compressed (quantised, arranged, fine-tuned) weights, with
    ``masks`` (where they are nonzero) installed by ``prune.custom_from_mask``.
    A fault in a user function raises :class:`~arrange.joint.CompressError`,
    whose ``report`` holds what finished.
    """
    from .compress import CompressConfig
    from .hooks import torch_hooks
    from .joint import compress_model

    if not isinstance(module, torch.nn.Module):
        raise ArrangeError(f"compress_module takes a torch.nn.Module, got a {type(module).__name__}")
    cfg = CompressConfig() if cfg is None else cfg
    model = import_module(module, include=include, exclude=exclude)
    if finetune is not None and evaluate is None:
        raise ArrangeError("fine-tuning in the compress flow needs an evaluator too: every stage reports the metric")
    hooks = None if evaluate is None else torch_hooks(module, evaluate, finetune=finetune)
    base = numpy_state(module, plain=True)
    report = compress_model(model.layers, cfg, hooks=hooks, schedule=schedule, jobs=jobs,
                            finetune_rounds=finetune_rounds)
    report.skipped = list(model.skipped) + report.skipped
    masks = weight_masks(model.layers, {o.name: o.weights != 0 for o in report.layers}, model.keys)
    if apply:
        load_arrays(module, {**base, **report.state})
        install_masks(module, masks)
    return ArrangedModule(module, report, masks, {o.name: o.packed for o in report.layers})


def install_masks(module: torch.nn.Module, masks: Mapping) -> None:
    """``prune.custom_from_mask`` for each state-dict weight name -> mask, so that mask is in force.

    On a tensor already pruned torch installs the product of the old and the new
    mask; a new mask that keeps weights the old one removed would not be in
    force, so that raises, before anything is installed.
    """
    todo = []
    for key, mask in masks.items():
        path, _, name = key.rpartition(".")
        try:
            sub = module.get_submodule(path)
            device = getattr(sub, name).device
        except AttributeError:
            raise ArrangeError(f"the module has no tensor {key!r} to mask") from None
        new = torch.as_tensor(np.asarray(mask, dtype=bool), device=device)
        old = getattr(sub, name + "_mask", None)
        if old is not None and bool((new & (old == 0)).any()):
            raise ArrangeError(f"{key}: the module's prune mask removes weights this mask keeps, so "
                               f"custom_from_mask would install their product instead")
        todo.append((sub, name, new))
    for sub, name, new in todo:
        prune.custom_from_mask(sub, name, new)


def pruned_tensors(module: torch.nn.Module) -> list:
    """(submodule, state-dict prefix, tensor name, pruning hook) for every re-parametrised tensor."""
    out = []
    for path, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                out.append((sub, f"{path}." if path else "", hook._tensor_name, hook))
    return out


def numpy_state(module: torch.nn.Module, plain: bool = False) -> dict:
    """``name -> ndarray`` copies of the state dict, plus ``<m>.weight`` (what forward sees) for
    re-parametrised tensors, whose state dict holds only ``weight_orig`` and ``weight_mask``.

    ``plain``: leave those two out, giving the state dict of the same module
    without re-parametrisations (what an export or a plain copy of it loads).
    """
    state = {k: np.array(v) for k, v in as_arrays(module.state_dict()).items()}
    for sub, prefix, name, hook in pruned_tensors(module):
        key = prefix + name
        state[key] = np.array(as_arrays({"w": hook.apply_mask(sub)})["w"])
        if plain:
            del state[key + "_orig"], state[key + "_mask"]
    return state


def load_arrays(module: torch.nn.Module, state: Mapping) -> torch.nn.Module:
    """Load ``name -> array`` into ``module`` (in place) and return it.

    For a tensor under prune re-parametrisation, a ``<m>.weight`` entry wins over
    stale ``weight_orig`` / ``weight_mask`` entries, or stands in for them (a
    plain state, :func:`numpy_state` with ``plain=True``): the mask becomes its
    nonzeros, and ``weight_orig`` takes its values there (keeping the old ones
    elsewhere), so the forward pass computes with exactly that weight.
    """
    own = module.state_dict()
    given = {prefix + name for _, prefix, name, _ in pruned_tensors(module)} & set(state)
    implied = {k + suffix for k in given for suffix in ("_orig", "_mask")}  # a plain state's weight sets both
    missing = [k for k in own if k not in state and k not in implied]
    if missing:
        raise ArrangeError(f"state lacks {len(missing)} of the module's entries, e.g. {missing[0]!r}")
    new = {k: torch.as_tensor(np.asarray(state[k]), dtype=p.dtype, device=p.device) if k in state else p.clone()
           for k, p in own.items()}
    for _, prefix, name, _ in pruned_tensors(module):
        key = prefix + name
        if key in state:
            orig, mask = new[key + "_orig"], new[key + "_mask"]
            w = torch.as_tensor(np.asarray(state[key]), dtype=orig.dtype, device=orig.device)
            keep = w != 0
            new[key + "_orig"] = torch.where(keep, w, orig)
            new[key + "_mask"] = keep.to(mask.dtype)
    module.load_state_dict(new)
    for sub, _, name, hook in pruned_tensors(module):
        # what torch's forward pre-hook does, now, so code reading module.weight before a forward sees it
        setattr(sub, name, hook.apply_mask(sub))
    return module


def output_positions(module: torch.nn.Module, example) -> dict:
    """Output positions M of every Conv2d and Linear submodule on one forward pass of ``example``.

    ``example``: the input tensor (or a tuple of positional inputs). A conv's
    M is batch x output height x width (its stride, padding, dilation and the
    pooling before it all show), a linear layer's the number of vectors it
    multiplies (tokens x batch for a transformer); a module called twice counts
    both calls. Returns module name -> M; modules the pass never reached are
    absent. Raises ArrangeError (one line) when the forward pass fails.
    """
    counts: dict = {}
    handles = []

    def record(name):
        def hook(m, inputs, out):
            channels = out.shape[1] if isinstance(m, torch.nn.Conv2d) else out.shape[-1]
            counts[name] = counts.get(name, 0) + out.numel() // max(int(channels), 1)

        return hook

    for name, m in module.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            handles.append(m.register_forward_hook(record(name)))
    args = example if isinstance(example, tuple) else (example,)
    training = module.training
    try:
        with torch.no_grad():
            module.eval()(*args)
    except Exception as exc:  # noqa: BLE001 - a user's forward can fail in any way on a wrong shape
        shapes = ", ".join(f"{tuple(a.shape)} {str(a.dtype).replace('torch.', '')}" for a in args
                           if isinstance(a, torch.Tensor))
        raise ArrangeError(f"the forward pass on an input of shape {shapes} failed ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}); check --input-shape / --tokens") from None
    finally:
        module.train(training)
        for h in handles:
            h.remove()
    return counts
