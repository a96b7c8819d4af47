"""Train the embedded digits CNN reproducibly and write ``arrange/data/digits_cnn.npz``.

Problem: ship small trained weights for the default model, and let anyone
rebuild exactly the same file.

Method: seed torch, build :class:`~arrange.models.digits_torch.DigitsCNN`, train
it with :func:`~arrange.models.digits_torch.finetune` (Adam, fixed split,
deterministic one-thread kernels), store the state dict as float32 npz and
print the test accuracy of the numpy forward pass (the number recorded in
:data:`~arrange.models.digits.DIGITS_TEST_ACCURACY`).

A maintainer's script, not part of the package: the shipped weights are data.

Usage: ``python benchmarks/models/train_digits.py [--epochs 30] [--seed 0] [--out PATH]``

Reference: D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization",
ICLR 2015, arXiv:1412.6980.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from arrange.models.digits import DIGITS_WEIGHTS, evaluate_digits

__all__ = ["main", "train_digits"]

EPOCHS = 30
LR = 3e-3


def train_digits(epochs: int = EPOCHS, seed: int = 0) -> dict[str, np.ndarray]:
    """The trained state dict (name -> float32 array) for ``seed``."""
    import torch

    from arrange.models.digits_torch import DigitsCNN, finetune

    torch.manual_seed(seed)
    model = finetune(DigitsCNN(), None, epochs=epochs, seed=seed, lr=LR)
    return {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DIGITS_WEIGHTS))
    args = p.parse_args(argv)
    start = time.perf_counter()
    state = train_digits(args.epochs, args.seed)
    np.savez_compressed(args.out, **state)
    print(f"wrote {args.out}: {sum(v.size for v in state.values())} parameters, "
          f"{time.perf_counter() - start:.1f} s, test accuracy {evaluate_digits(state):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
