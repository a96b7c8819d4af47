"""The digits CNN as a torch module, and reproducible (masked) training for it.

Problem: train the embedded CNN once, and fine-tune it after pruning or
arranging with the pruned weights held at zero, with the same answer every run.

Method: :class:`DigitsCNN` is built from :data:`arrange.models.digits.ARCH`.
:func:`finetune` runs Adam on the fixed train split with a seeded generator,
one thread and torch's deterministic algorithms; masked weights get zero
gradients and are re-zeroed after every step, so a mask is never violated
(the masked retraining of column combining, section 4 of the reference).

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing Sparse Convolutional
Neural Networks for Efficient Systolic Array Implementations: Column Combining
Under Joint Optimization", ASPLOS 2019, doi:10.1145/3297858.3304028.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..errors import ArrangeError
from .digits import ARCH, KERNEL, digits_data, digits_state

__all__ = ["DigitsCNN", "build_digits_model", "finetune", "train_step"]


class DigitsCNN(nn.Module):
    """The network of :data:`ARCH`; submodules are named as in the shipped state dict."""

    def __init__(self):
        super().__init__()
        for name, kind, n_in, n_out, groups, _ in ARCH:
            layer = (nn.Conv2d(n_in, n_out, KERNEL, padding=KERNEL // 2, groups=groups) if kind == "conv"
                     else nn.Linear(n_in, n_out))
            self.add_module(name, layer)

    def forward(self, x):
        for i, (name, kind, _, _, _, pool) in enumerate(ARCH):
            if kind == "linear":
                x = x.flatten(1)
            x = getattr(self, name)(x)
            if i < len(ARCH) - 1:
                x = torch.relu(x)
            if pool:
                x = nn.functional.max_pool2d(x, 2)
        return x


def build_digits_model(state: Mapping | None = None) -> DigitsCNN:
    """A DigitsCNN holding the shipped weights, overridden by ``state`` (arrays or tensors) if given."""
    full = digits_state()
    if state is not None:
        unknown = sorted(set(state) - set(full))
        if unknown:
            raise ArrangeError(f"not digits CNN weights: {', '.join(unknown)}; expected {', '.join(sorted(full))}")
        full.update(state)
    model = DigitsCNN()
    model.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in full.items()})
    return model.eval()


def _mask_tensors(model: nn.Module, masks: Mapping | None) -> dict[str, torch.Tensor]:
    """Module name -> float 0/1 tensor shaped like its weight."""
    out = {}
    for name, m in (masks or {}).items():
        weight = getattr(model.get_submodule(name), "weight", None)
        mask = torch.as_tensor(np.asarray(m) != 0, dtype=torch.float32)
        if weight is None or mask.shape != weight.shape:
            raise ArrangeError(f"layer {name}: mask shape {tuple(mask.shape)} does not match the weight's "
                               f"{None if weight is None else tuple(weight.shape)}")
        out[name] = mask
    return out


@torch.no_grad()
def _apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        model.get_submodule(name).weight.mul_(mask)


def train_step(model: nn.Module, masks: Mapping[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer) -> float:
    """One masked optimiser step on a batch; returns the batch's cross-entropy loss."""
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    for name, mask in masks.items():
        model.get_submodule(name).weight.grad.mul_(mask)
    optimizer.step()
    _apply_masks(model, masks)
    return float(loss.detach())


def finetune(model: nn.Module, masks: Mapping | None = None, epochs: int = 5, seed: int = 0,
             lr: float = 1e-3, batch_size: int = 64) -> nn.Module:
    """Train ``model`` in place on the digits train split with ``masks`` (name -> 0/1 array) held fixed.

    Deterministic for a given seed: shuffling uses a seeded generator, and
    training runs on one thread with torch's deterministic algorithms.
    Returns the model, in eval mode.
    """
    if epochs < 0 or batch_size < 1:
        raise ArrangeError(f"expected epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    masks_t = _mask_tensors(model, masks)
    X, y = (torch.from_numpy(a) for a in digits_data("train"))
    gen = torch.Generator().manual_seed(seed)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # float sums in other thread counts round differently
    torch.use_deterministic_algorithms(True)
    try:
        _apply_masks(model, masks_t)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(y), generator=gen).split(batch_size):
                train_step(model, masks_t, X[batch], y[batch], optimizer)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return model.eval()
