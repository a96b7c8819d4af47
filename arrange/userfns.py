"""A user's own Python functions, named on the command line as ``file.py:function`` or ``module:function``.

Problem: ``--eval``, ``--finetune`` and ``--model-builder`` let a user's data
loader, metric and training loop drive the pipeline; each names a function in
the user's file or importable module, and a wrong name, an import that fails
or a function that raises must come out as one line naming the option, not a
traceback.

Method: :func:`solvers.registry.load_attribute` imports the file or module
(the loader ``--solver`` uses, so both accept the same forms); the function is
wrapped so that whatever it raises becomes an :class:`ArrangeError` naming the
option and the spec, and its result is checked against the documented signature:

- ``--eval``: ``evaluate(module: torch.nn.Module) -> float``, higher is better
  (accuracy, negative loss, ...). The module is in eval mode, called under
  ``torch.no_grad()``, and holds the
  weights of the stage being measured (dense, pruned, arranged, fine-tuned).
- ``--finetune``: ``finetune(module: torch.nn.Module) -> None``: train in
  place with your own loader, optimiser and loop. Every arranged weight
  carries its keep-mask registered through ``torch.nn.utils.prune``
  (``weight_orig`` / ``weight_mask``, ``weight`` recomputed before each
  forward), so weights outside the arrangement stay zero whatever the
  optimiser does; build the optimiser inside the function (the parameters are
  ``*.weight_orig``) and leave the masks in place (arrange removes them after).
- ``--model-builder``: ``build() -> torch.nn.Module`` whose ``state_dict()``
  has the checkpoint's names and shapes (a checkpoint saved from a module
  pruned with ``torch.nn.utils.prune`` may hold ``weight_orig`` /
  ``weight_mask``; the plain module fits it and its masks are kept). It is
  needed whenever ``--eval`` or ``--finetune`` is given for a model other
  than the embedded ``digits``.

:func:`build_module` calls the builder and loads the checkpoint into it.
"""

from __future__ import annotations

import functools
import math
import numbers
from pathlib import Path
from typing import Callable

from solvers import ProblemError
from solvers.registry import load_attribute

from .errors import ArrangeError

__all__ = ["load_function", "evaluator", "finetuner", "model_builder", "build_module"]


def load_function(spec: str, option: str) -> Callable:
    """The callable ``spec`` names (``file.py:function`` or ``module:function``); ArrangeError otherwise."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ArrangeError(f"{option} expects file.py:function or module:function, got {spec!r}")
    try:
        fn = load_attribute(spec, option.lstrip("-"))
    except ProblemError as exc:
        raise ArrangeError(f"{option} {spec}: {exc}") from None
    if not callable(fn):
        raise ArrangeError(f"{option} {spec}: is a {type(fn).__name__}, not a function")
    return fn


def _guarded(fn: Callable, option: str, spec: str) -> Callable:
    """``fn`` with any exception it raises turned into one ArrangeError line naming the option."""
    @functools.wraps(fn)
    def call(*args):
        try:
            return fn(*args)
        except ArrangeError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user's function may raise anything
            detail = " ".join(str(exc).split()) or "no message"
            raise ArrangeError(f"{option} {spec} raised {type(exc).__name__}: {detail}") from exc

    return call


def evaluator(spec: str) -> Callable:
    """``--eval``: evaluate(module) -> float, checked to return a finite real number."""
    fn = _guarded(load_function(spec, "--eval"), "--eval", spec)

    def evaluate(module):
        value = fn(module)
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()  # a 0-d tensor or numpy scalar
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ArrangeError(f"--eval {spec} must return a finite number (higher is better), got {value!r}")
        return float(value)

    return evaluate


def finetuner(spec: str) -> Callable:
    """``--finetune``: finetune(module) -> None, training the module in place under its prune masks."""
    fn = _guarded(load_function(spec, "--finetune"), "--finetune", spec)

    def finetune(module):
        out = fn(module)
        if out is not None and out is not module:
            raise ArrangeError(f"--finetune {spec} must train the module it is given in place and return "
                               f"None, got a {type(out).__name__}")
        return module

    return finetune


def model_builder(spec: str) -> Callable:
    """``--model-builder``: build() -> torch.nn.Module."""
    return _guarded(load_function(spec, "--model-builder"), "--model-builder", spec)


def build_module(build: Callable, checkpoint):
    """(``build()``'s module holding ``checkpoint``, in eval mode; module name -> mask of its weight).

    ``checkpoint``: a path or a name -> tensor/array dict. Entries
    ``<m>.weight_orig`` / ``<m>.weight_mask`` (a module saved after
    ``torch.nn.utils.prune``) load into the plain module as ``<m>.weight =
    weight_orig * weight_mask``, and the masks come back separately, for
    :func:`arrange.io.load_model`'s ``masks``: the pipeline holds them (pruned
    weights stay zero in fine-tuning) while the module stays plain, so any
    flow can re-parametrise it (PENNI's shared kernels, the arrangement's own
    prune masks). Raises ArrangeError when names or shapes differ.
    """
    import torch

    from .io import as_arrays, read_arrays

    module = build()
    if not isinstance(module, torch.nn.Module):
        raise ArrangeError(f"--model-builder must return a torch.nn.Module, got a {type(module).__name__}")
    state = read_arrays(checkpoint) if isinstance(checkpoint, (str, Path)) else as_arrays(checkpoint)
    own = module.state_dict()
    masks = {}
    for key in [k for k in state if k.endswith(".weight_orig") and k not in own]:
        base = key[: -len("_orig")]
        mask = state.get(base + "_mask")
        if base in own and mask is not None and mask.shape == state[key].shape:
            masks[base[: -len(".weight")]] = mask != 0
            state[base] = state.pop(key) * masks[base[: -len(".weight")]]
            del state[base + "_mask"]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {what}, e.g. {v[0]!r}" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if v]
        where = checkpoint if isinstance(checkpoint, (str, Path)) else "the checkpoint"
        raise ArrangeError(f"the --model-builder module does not fit {where}: " + "; ".join(parts)
                           + " (state-dict entries)")
    module.load_state_dict({k: torch.as_tensor(state[k], dtype=v.dtype) for k, v in own.items()})
    return module.eval(), masks
