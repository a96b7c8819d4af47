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


def digits_hooks(epochs: int = 3, lr: float = 1e-3) -> Hooks:
    """Test-split accuracy (numpy) and masked fine-tuning (torch) of the embedded digits CNN."""
    from .models.digits import digits_state, evaluate_digits

    def finetune(state, masks, seed):
        from .models.digits_torch import build_digits_model, finetune as train

        from .torch_flow import numpy_state

        model = train(build_digits_model(state), masks, epochs=epochs, seed=seed, lr=lr)
        return numpy_state(model)

    return Hooks(evaluate=evaluate_digits, base_state=digits_state(),
                 finetune=finetune if epochs > 0 else None)


def torch_hooks(module, evaluate: Callable, batches: Callable[[], Iterable] | None = None,
                loss: Callable | None = None, epochs: int = 1, lr: float = 1e-3) -> Hooks:
    """Hooks for a user's torch module.

    evaluate(module) -> metric; batches() -> iterable of (inputs, targets) for
    fine-tuning; loss(outputs, targets) -> scalar tensor (default cross-entropy).
    Masked weights get zero gradients and are re-zeroed after every step.
    """
    import torch

    from .torch_flow import load_arrays, numpy_state

    if batches is not None and epochs < 1:
        raise ArrangeError(f"epochs must be >= 1 when batches are given, got {epochs}")
    loss = loss or torch.nn.functional.cross_entropy

    def run_eval(state):
        return float(evaluate(load_arrays(module, state).eval()))

    def finetune(state, masks, seed):
        torch.manual_seed(seed)
        load_arrays(module, state)
        plain = []
        for name, m in masks.items():
            sub = module.get_submodule(name)
            m = torch.as_tensor(np.asarray(m, dtype=np.float32))
            if hasattr(sub, "weight_orig"):
                with torch.no_grad():
                    sub.weight_mask.mul_(m.to(sub.weight_mask))
            else:
                plain.append((sub.weight, m.to(sub.weight)))
        opt = torch.optim.Adam(module.parameters(), lr=lr)
        module.train()
        for _ in range(epochs):
            for x, y in batches():
                opt.zero_grad()
                loss(module(x), y).backward()
                for w, m in plain:
                    w.grad.mul_(m)
                opt.step()
                with torch.no_grad():
                    for w, m in plain:
                        w.mul_(m)
        return numpy_state(module.eval())

    return Hooks(evaluate=run_eval, base_state=numpy_state(module),
                 finetune=finetune if batches is not None else None)
