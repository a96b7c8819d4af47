"""Ready-made :class:`~arrange.joint.Hooks`: the embedded digits CNN, and any torch model.

The hook API keeps torch out of the pipeline: the pipeline hands over and gets
back plain ``name -> ndarray`` states; these adapters load them into a torch
module, evaluate or fine-tune it with masks held fixed, and hand arrays back.
A module pruned with ``torch.nn.utils.prune`` computes ``weight`` as
``weight_orig * weight_mask``; the states' ``<m>.weight`` entries are loaded so
that this product is exactly the pipeline's weight
(:func:`arrange.torch_flow.load_arrays`), and fine-tuning holds masks by
narrowing ``weight_mask`` there (the product's gradient is zero where the mask is).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .errors import ArrangeError
from .joint import Hooks

__all__ = ["digits_hooks", "torch_hooks"]


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
                loss: Callable | None = None, epochs: int = 1, lr: float = 1e-3) -> Hooks:
    """Hooks for a user's torch module.

    evaluate(module) -> metric; batches() -> iterable of (inputs, targets) for
    fine-tuning; loss(outputs, targets) -> scalar tensor (default cross-entropy).
    Masked weights get zero gradients and are re-zeroed after every step; on
    prune-re-parametrised tensors the mask narrows ``weight_mask`` instead.
    """
    import torch

    from .torch_flow import load_arrays, numpy_state

    if batches is not None and epochs < 1:
        raise ArrangeError(f"epochs must be >= 1 when batches are given, got {epochs}")
    loss = loss or torch.nn.functional.cross_entropy

    def run_eval(state):
        return float(evaluate(load_arrays(module, state).eval()))

    def holding(state):
        return load_arrays(module, state)

    def train(model, masks, seed):
        torch.manual_seed(seed)
        plain = []
        for name, m in masks.items():
            sub = model.get_submodule(name)
            m = torch.as_tensor(np.asarray(m, dtype=np.float32))
            if hasattr(sub, "weight_orig"):
                with torch.no_grad():
                    sub.weight_mask.mul_(m.to(sub.weight_mask))
            else:
                plain.append((sub.weight, m.to(sub.weight)))
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

    return _hooks(run_eval, numpy_state(module), holding, train if batches is not None else None)
