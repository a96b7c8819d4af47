"""Ready-made :class:`~arrange.joint.Hooks`: the embedded digits CNN, and any torch model.

The hook API keeps torch out of the pipeline: the pipeline hands over and gets
back plain ``name -> ndarray`` states; these adapters load them into a torch
module, evaluate or fine-tune it with masks held fixed, and hand arrays back.
A module pruned with ``torch.nn.utils.prune`` computes ``weight`` as
``weight_orig * weight_mask``; the states' ``<m>.weight`` entries are loaded so
that this product is exactly the pipeline's weight
(:func:`arrange.torch_flow.load_arrays`), and fine-tuning holds masks by
narrowing ``weight_mask`` there (the product's gradient is zero where the mask is).
A user's own training loop (``torch_hooks(..., finetune=fn)``, the CLI's
``--finetune``) runs with every masked weight re-parametrised the same way
(``prune.custom_from_mask``), so it needs no knowledge of the masks.

:func:`pack_metrics` measures a packed model with any hooks (dense, pruned,
packed, and fine-tuned under the keep-masks then re-encoded in the same groups):
``arrange pack``'s metric line, for the digits CNN and for ``--eval``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .errors import ArrangeError
from .joint import Hooks

__all__ = ["digits_hooks", "torch_hooks", "pack_metrics"]


def _state_finetune(module: Callable, train: Callable) -> Callable:
    """The state-level fine-tuning hook of a module builder and a module trainer."""
    def finetune(state, masks, seed):
        from .torch_flow import numpy_state

        return numpy_state(train(module(state), masks, seed))

    return finetune


def _hooks(evaluate: Callable, base_state: dict, module: Callable, train: Callable | None) -> Hooks:
    return Hooks(evaluate=evaluate, base_state=base_state,
                 finetune=None if train is None else _state_finetune(module, train),
                 module=module, train=train)


def digits_hooks(epochs: int = 3, lr: float = 1e-3) -> Hooks:
    """Test-split accuracy (numpy) and masked fine-tuning (torch) of the embedded digits CNN."""
    from .models.digits import digits_state, evaluate_digits

    def module(state):
        from .models.digits_torch import build_digits_model

        return build_digits_model(state)

    def train(model, masks, seed):
        from .models.digits_torch import finetune

        return finetune(model, masks, epochs=epochs, seed=seed, lr=lr)

    return _hooks(evaluate_digits, digits_state(), module, train if epochs > 0 else None)


def torch_hooks(module, evaluate: Callable, batches: Callable[[], Iterable] | None = None,
                loss: Callable | None = None, epochs: int = 1, lr: float = 1e-3,
                finetune: Callable | None = None) -> Hooks:
    """Hooks for a user's torch module.

    evaluate(module) -> metric (higher is better), called in eval mode under
    ``torch.no_grad()``. Fine-tuning, either the
    built-in loop or the user's own:

    - ``batches() -> iterable of (inputs, targets)``, ``loss(outputs, targets)``
      (default cross-entropy), ``epochs``, ``lr``: Adam here; masked weights get
      zero gradients and are re-zeroed after every step; on prune-re-parametrised
      tensors the mask narrows ``weight_mask`` instead;
    - ``finetune(module) -> None``: the user's loop, training in place. Every
      masked weight carries its mask registered with
      ``torch.nn.utils.prune.custom_from_mask`` while it runs (the product of
      ``weight_orig`` and ``weight_mask`` is what forward sees, so no optimiser
      can move a masked weight); arrange removes the masks it added afterwards
      (``prune.remove``), and narrows ``weight_mask`` on tensors the module
      already had re-parametrised.
    """
    import torch

    from .torch_flow import load_arrays, numpy_state

    if batches is not None and finetune is not None:
        raise ArrangeError("give batches (the built-in loop) or finetune (your own), not both")
    if batches is not None and epochs < 1:
        raise ArrangeError(f"epochs must be >= 1 when batches are given, got {epochs}")
    loss = loss or torch.nn.functional.cross_entropy

    def run_eval(state):
        with torch.no_grad():  # measuring needs no gradients; the user's function need not say so
            return float(evaluate(load_arrays(module, state).eval()))

    def holding(state):
        return load_arrays(module, state)

    def narrow(model, masks):
        """Mask the re-parametrised tensors in place; (weight, mask) of the plain ones."""
        plain = []
        for name, m in masks.items():
            sub = model.get_submodule(name)
            m = torch.as_tensor(np.asarray(m, dtype=np.float32))
            if hasattr(sub, "weight_orig"):
                with torch.no_grad():
                    sub.weight_mask.mul_(m.to(sub.weight_mask))
            else:
                plain.append((sub, m.to(sub.weight)))
        return plain

    def train(model, masks, seed):
        torch.manual_seed(seed)
        plain = [(sub.weight, m) for sub, m in narrow(model, masks)]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for x, y in batches():
                opt.zero_grad()
                loss(model(x), y).backward()
                for w, m in plain:
                    w.grad.mul_(m)
                opt.step()
                with torch.no_grad():
                    for w, m in plain:
                        w.mul_(m)
        return model.eval()

    def train_user(model, masks, seed):
        from torch.nn.utils import prune

        torch.manual_seed(seed)
        added = narrow(model, masks)
        for sub, m in added:
            prune.custom_from_mask(sub, "weight", m != 0)
        model.train()
        try:
            finetune(model)
        finally:
            for sub, _ in added:
                prune.remove(sub, "weight")
        return model.eval()

    chosen = train if batches is not None else train_user if finetune is not None else None
    # a plain state (``<m>.weight``, no weight_orig / weight_mask): what the pipeline, its reports and
    # exports hold, and what a plain copy of the module loads
    return _hooks(run_eval, numpy_state(module, plain=True), holding, chosen)


def pack_metrics(hooks: Hooks, dense, pruned, packed: dict, finetune: bool = False, seed: int = 0):
    """The metric of a packed model at each step, and optionally fine-tuned under the keep-masks.

    ``dense`` and ``pruned`` are the model's layers before and after pruning,
    ``packed`` layer name -> ``ColumnCombined`` (from
    :func:`arrange.pipeline.pack_layers`). Returns (metrics, state, packed):
    metrics ``{"dense", "pruned", "packed"[, "finetuned"]}``; with ``finetune``
    (and hooks that fine-tune), ``state`` is the fine-tuned model (name ->
    array) and ``packed`` the same groups re-encoded from its weights (the
    keep-masks hold, so the packing stays valid); otherwise None and ``packed``.
    """
    from .formats import column_combine
    from .io import layer_masks, layer_weight, to_state_dict

    def state(layers):
        return {**hooks.base_state, **to_state_dict(layers)}

    pruned = list(pruned)
    decoded = [l.with_matrix(column_combine.decode(packed[l.name])) if l.name in packed else l for l in pruned]
    metrics = {"dense": hooks.evaluate(state(dense)), "pruned": hooks.evaluate(state(pruned)),
               "packed": hooks.evaluate(state(decoded))}
    if not finetune or hooks.finetune is None:
        return metrics, None, packed
    tuned = hooks.finetune(state(decoded), layer_masks(decoded), seed)
    repacked = {}
    for l in decoded:
        if l.name in packed:
            p = packed[l.name]
            W = np.where(l.matrix != 0, layer_weight(tuned, l).reshape(l.shape2d), 0.0)
            repacked[l.name] = column_combine.encode_groups(W, [row[row >= 0] for row in p.table], p.alpha)
    metrics["finetuned"] = hooks.evaluate(tuned)
    return metrics, tuned, repacked
