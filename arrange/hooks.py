"""Ready-made :class:`~arrange.joint.Hooks`: the embedded digits CNN, and any torch model.

The hook API keeps torch out of the pipeline: the pipeline hands over and gets
back plain ``name -> ndarray`` states; these adapters load them into a torch
module, evaluate or fine-tune it with masks held fixed, and hand arrays back.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .errors import ArrangeError
from .joint import Hooks

__all__ = ["digits_hooks", "torch_hooks"]


def _numpy_state(module) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _load(module, state: dict):
    import torch

    module.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=p.dtype)
                            for (k, p), v in ((kv, state[kv[0]]) for kv in module.state_dict().items())})
    return module


def digits_hooks(epochs: int = 3, lr: float = 1e-3) -> Hooks:
    """Test-split accuracy (numpy) and masked fine-tuning (torch) of the embedded digits CNN."""
    from .models.digits import digits_state, evaluate_digits

    def finetune(state, masks, seed):
        from .models.digits_torch import build_digits_model, finetune as train

        model = train(build_digits_model(state), masks, epochs=epochs, seed=seed, lr=lr)
        return _numpy_state(model)

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

    if batches is not None and epochs < 1:
        raise ArrangeError(f"epochs must be >= 1 when batches are given, got {epochs}")
    loss = loss or torch.nn.functional.cross_entropy

    def run_eval(state):
        return float(evaluate(_load(module, state).eval()))

    def finetune(state, masks, seed):
        torch.manual_seed(seed)
        _load(module, state)
        ms = {name: torch.as_tensor(np.asarray(m, dtype=np.float32)) for name, m in masks.items()}
        opt = torch.optim.Adam(module.parameters(), lr=lr)
        module.train()
        for _ in range(epochs):
            for x, y in batches():
                opt.zero_grad()
                loss(module(x), y).backward()
                for name, m in ms.items():
                    module.get_submodule(name).weight.grad.mul_(m)
                opt.step()
                with torch.no_grad():
                    for name, m in ms.items():
                        module.get_submodule(name).weight.mul_(m)
        return _numpy_state(module.eval())

    return Hooks(evaluate=run_eval, base_state=_numpy_state(module),
                 finetune=finetune if batches is not None else None)
