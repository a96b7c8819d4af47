"""The model options shared by ``pack``, ``compress`` and ``formats``: whose evaluator, which module, what input.

Problem: on the command line a model is a file (or ``digits``); to measure it
with the user's metric, fine-tune it with the user's loop and count the work of
each layer for the hardware figures, the pipeline needs a torch module holding
that file, the user's functions as :class:`~arrange.joint.Hooks`, and each
layer's output positions M (the GEMM's M: output pixels of a conv, tokens of a
linear layer).

Method: :func:`add_model_options` adds ``--eval``, ``--finetune``,
``--model-builder`` (:mod:`arrange.userfns` for their signatures) and, for the
subcommands with hardware figures, ``--input-shape`` / ``--tokens``.
:func:`resolve` builds the module (the embedded digits CNN for ``digits``, the
user's builder with the checkpoint loaded otherwise), selects its layers by
module type (:func:`arrange.io.load_model`), wraps the functions with
:func:`arrange.hooks.torch_hooks`, and finds M: with a module, one forward pass
on zeros of the given shape (:func:`arrange.torch_flow.output_positions`:
stride, padding, pooling all count); without one, from the weight shapes
alone, assuming stride 1, same padding and no pooling for convs (M = H * W)
and one vector per linear layer (M = 1, or T with ``--tokens``), and the
report says which it used.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from .errors import ArrangeError
from .joint import Hooks

__all__ = ["UserModel", "add_model_options", "input_shape", "resolve", "positions_from_shapes"]


def input_shape(text: str) -> tuple:
    """``C,H,W`` (or ``B,C,H,W``, or any other input shape) -> tuple of ints >= 1."""
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,224,224, got {text!r}") \
            from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"dimensions must be integers >= 1, got {text!r}")
    return dims


def add_model_options(p: argparse.ArgumentParser, shapes: bool = True) -> None:
    """--eval, --finetune, --model-builder, and with ``shapes`` --input-shape / --tokens."""
    g = p.add_argument_group("your model (signatures: README 'Your own model', arrange/userfns.py)")
    g.add_argument("--eval", metavar="FILE.py:FN", default=None,
                   help="your evaluator, evaluate(module: torch.nn.Module) -> float, higher is better")
    g.add_argument("--finetune", metavar="FILE.py:FN", default=None,
                   help="your fine-tuning loop, finetune(module) -> None, run with the arrangement's masks "
                        "registered through torch.nn.utils.prune")
    g.add_argument("--model-builder", metavar="FILE.py:FN", default=None,
                   help="build() -> torch.nn.Module whose state_dict fits the checkpoint; needed with "
                        "--eval/--finetune for a model other than digits, and gives exact M")
    if shapes:
        x = g.add_mutually_exclusive_group()
        x.add_argument("--input-shape", type=input_shape, metavar="C,H,W", default=None,
                       help="one input's shape (B,C,H,W also read): each layer's M (output positions) for "
                            "the hardware figures, from a forward pass with --model-builder, else from "
                            "shapes (stride 1, same padding, no pooling)")
        x.add_argument("--tokens", type=int, metavar="T", default=None,
                       help="sequence length of a transformer: linear layers multiply T vectors (M = T)")


@dataclass
class UserModel:
    """What :func:`resolve` gives a subcommand.

    ``model``: the selected layers (:class:`arrange.io.Model`); ``hooks``: the
    user's evaluator/fine-tuner as Hooks, or None; ``module``: the torch module
    or None; ``pixels``: layer name -> M for the layers whose M is known;
    ``pixels_note``: one line saying where M came from ('' when nowhere).
    """

    model: object
    hooks: Hooks | None = None
    module: object = None
    pixels: dict = field(default_factory=dict)
    pixels_note: str = ""


def _opt(args, name: str):
    """An option of ``args``, None for a subcommand without it (``demo``)."""
    return getattr(args, name, None)


def _module(args):
    """(the torch module behind the model argument, or None when no option needs one; its checkpoint's
    prune masks by module name)."""
    wanted = _opt(args, "eval") or _opt(args, "finetune") or _opt(args, "model_builder") or (
        (_opt(args, "input_shape") or _opt(args, "tokens")) and args.model == "digits")
    if not wanted:
        return None, {}
    from .userfns import build_module, model_builder

    if _opt(args, "model_builder"):
        from .models.digits import DIGITS_WEIGHTS

        source = DIGITS_WEIGHTS if args.model == "digits" else args.model
        return build_module(model_builder(args.model_builder), source)
    if args.model == "digits":
        from .models.digits_torch import build_digits_model

        return build_digits_model(), {}
    raise ArrangeError(f"--eval/--finetune need a torch module holding {args.model}: give --model-builder "
                       f"file.py:function returning an nn.Module whose state_dict fits it")


def positions_from_shapes(layers, shape: tuple | None = None, tokens: int | None = None) -> tuple[dict, str]:
    """M per layer from the weight shapes alone, and the assumption stated.

    Convs: M = H * W of ``shape`` (C,H,W or B,C,H,W: B * H * W), i.e. stride 1,
    same padding and no pooling anywhere; linear layers: M = B (one vector per
    input), or ``tokens`` with a sequence length. A layer left out is counted as
    M = 1 by the reports, which name it.
    """
    pixels = {}
    if tokens is not None:
        pixels = {l.name: tokens for l in layers if l.kind == "linear"}
        return pixels, f"M = {tokens} tokens for every linear layer (--tokens, no module: every linear layer " \
                       f"assumed to see every token)"
    batch = shape[0] if len(shape) == 4 else 1
    hw = batch * shape[-1] * shape[-2] if len(shape) >= 3 else None
    for l in layers:
        if l.kind == "linear":
            pixels[l.name] = batch
        elif hw is not None:
            pixels[l.name] = hw
    return pixels, (f"M from --input-shape {'x'.join(map(str, shape))} without the module: convs assumed stride 1, "
                    f"same padding, no pooling (M = {hw}), linear layers M = {batch}; --model-builder gives "
                    f"exact M from a forward pass")


def _positions(module, layers, args) -> tuple[dict, str]:
    shape, tokens = _opt(args, "input_shape"), _opt(args, "tokens")
    if tokens is not None and tokens < 1:
        raise ArrangeError(f"--tokens must be >= 1, got {tokens}")
    if module is not None and (shape or tokens):
        import torch

        from .torch_flow import output_positions

        if tokens is not None:
            example = torch.zeros((1, tokens), dtype=torch.long)
            what = f"token ids of shape 1x{tokens}"
        else:
            dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
            example = torch.zeros(shape if len(shape) == 4 else (1, *shape), dtype=dtype)
            what = f"an input of shape {'x'.join(map(str, example.shape))}"
        counts = output_positions(module, example)
        pixels = {l.name: counts[l.base_name] for l in layers if l.base_name in counts}
        return pixels, f"M (output positions per layer) from one forward pass on {what}"
    if shape or tokens:
        return positions_from_shapes(layers, shape, tokens)
    if args.model == "digits":
        from .models.digits import digits_pixels

        return digits_pixels(), "M (output pixels per layer) of the digits CNN on one 8x8 image"
    return {}, ""


def resolve(args, select: dict, **load_options) -> UserModel:
    """The model, hooks, module and M for parsed ``args`` (model, eval, finetune, model_builder, shapes).

    ``select``: include/exclude patterns for :func:`arrange.io.load_model`;
    ``load_options``: more of its keyword arguments, for a model read from its
    file (a module is in memory already). Without a module the layers come
    from the file (``digits``: the shipped weights with conv2's groups); with
    one, from the module's types.
    """
    from .io import load_model

    module, masks = _module(args)
    if module is not None:
        from .torch_flow import import_module

        model = import_module(module, masks=masks or None, **select)
    elif args.model == "digits":
        from .models.digits import DIGITS_GROUPS, DIGITS_WEIGHTS

        model = load_model(DIGITS_WEIGHTS, groups=DIGITS_GROUPS, **select)
    else:
        model = load_model(args.model, **select, **load_options)
    hooks = None
    if _opt(args, "eval") or _opt(args, "finetune"):
        from .hooks import torch_hooks
        from .userfns import evaluator, finetuner

        if not _opt(args, "eval"):
            raise ArrangeError("--finetune needs --eval too: the report measures the model before and after it")
        hooks = torch_hooks(module, evaluator(args.eval),
                            finetune=finetuner(args.finetune) if args.finetune else None)
    pixels, note = _positions(module, model.layers, args)
    return UserModel(model, hooks, module, pixels, note)
