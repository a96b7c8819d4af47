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


def _state_finetune(module: Callable, train: Callable) -> Callable:
    """The state-level fine-tuning hook of a module builder and a module trainer."""
    def finetune(state, masks, seed):
        return _numpy_state(train(module(state), masks, seed))

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
    Masked weights get zero gradients and are re-zeroed after every step.
    """
    import torch

    if batches is not None and epochs < 1:
        raise ArrangeError(f"epochs must be >= 1 when batches are given, got {epochs}")
    loss = loss or torch.nn.functional.cross_entropy

    def run_eval(state):
        return float(evaluate(_load(module, state).eval()))

    def holding(state):
        return _load(module, state)

    def train(model, masks, seed):
        torch.manual_seed(seed)
        ms = {name: torch.as_tensor(np.asarray(m, dtype=np.float32)) for name, m in masks.items()}
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for x, y in batches():
                opt.zero_grad()
                loss(model(x), y).backward()
                for name, m in ms.items():
                    model.get_submodule(name).weight.grad.mul_(m)
                opt.step()
                with torch.no_grad():
                    for name, m in ms.items():
                        model.get_submodule(name).weight.mul_(m)
        return model.eval()

    return _hooks(run_eval, _numpy_state(module), holding, train if batches is not None else None)
