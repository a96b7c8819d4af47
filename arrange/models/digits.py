"""The embedded default model: a small CNN for scikit-learn's bundled 8x8 digits, in numpy.

Problem: the demo and the tests need a real pruned-and-packed model whose
accuracy can be checked on any machine, without a download and without torch.

Method: the architecture is one spec, :data:`ARCH`, shared by this numpy
forward pass and the torch module in :mod:`arrange.models.digits_torch` that
trains it. Convolutions run as the matrix view of DESIGN.md section 2 (im2col
with column index (i * kh + y) * kw + x times ``weight.reshape(O, -1)``), so an
arranged matrix evaluates exactly as the engine sees it. The weights ship as
``arrange/data/digits_cnn.npz`` with state-dict keys, written by
``benchmarks/models/train_digits.py`` in the source repository. The data split
is a fixed numpy permutation (PCG64, seed 0) of ``sklearn.datasets.load_digits``.

Reference: UCI Optical Recognition of Handwritten Digits (Alpaydin, Kaynak 1998),
as bundled by scikit-learn, https://scikit-learn.org/stable/datasets/toy_dataset.html
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ArrangeError
from ..io import Model, as_arrays, load_model, to_state_dict
from ..layer import group_name

__all__ = ["ARCH", "DIGITS_GROUPS", "DIGITS_TEST_ACCURACY", "DIGITS_WEIGHTS", "digits_data", "digits_forward",
           "digits_pixels", "digits_state", "evaluate_digits", "load_digits_layers"]

#: (name, kind, in features/channels, out, groups, 2x2 max-pool after); 3x3 convs with padding 1,
#: ReLU after every layer but the last, flatten (C, H, W order) before the first linear layer
ARCH = (
    ("conv1", "conv", 1, 8, 1, False),
    ("conv2", "conv", 8, 16, 2, True),
    ("conv3", "conv", 16, 32, 1, True),
    ("fc1", "linear", 128, 64, 1, False),
    ("fc2", "linear", 64, 10, 1, False),
)
KERNEL = 3
DIGITS_GROUPS = {name: g for name, _, _, _, g, _ in ARCH if g > 1}
DIGITS_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "digits_cnn.npz"
#: test-split accuracy of the shipped weights, as printed by ``benchmarks/models/train_digits.py``
DIGITS_TEST_ACCURACY = 354 / 359  # 0.9861: 354 of the 359 test images
SPLIT_SEED = 0
TEST_FRACTION = 0.2
SPLITS = ("train", "test")


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ArrangeError("the digits data needs scikit-learn (pip install 'arrange[torch]')") from None
    d = load_digits()
    return d.images, d.target


def digits_data(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(X float32 (n, 1, 8, 8) scaled to [0, 1], y int64) of the fixed train or test split (fresh arrays)."""
    if split not in SPLITS:
        raise ArrangeError(f"unknown digits split {split!r}; allowed: {', '.join(SPLITS)}")
    images, target = _digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(target))
    n_test = int(round(TEST_FRACTION * len(order)))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return (images[idx] / 16.0).astype(np.float32)[:, None], target[idx].astype(np.int64)


def digits_state() -> dict[str, np.ndarray]:
    """The shipped weights and biases, name -> float32 array (state-dict keys)."""
    if not DIGITS_WEIGHTS.is_file():
        raise ArrangeError(f"shipped digits weights missing: {DIGITS_WEIGHTS}; "
                           f"rebuild them with benchmarks/models/train_digits.py in the source repository")
    with np.load(DIGITS_WEIGHTS, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_digits_layers(masks: Mapping | None = None) -> Model:
    """The shipped CNN's conv and linear layers (``conv2`` as two groups); no torch needed."""
    return load_model(DIGITS_WEIGHTS, masks=masks, groups=DIGITS_GROUPS)


def digits_pixels() -> dict[str, int]:
    """Output pixels M of each layer (one image: 8x8 input, same-padded convs, 2x2 pools), by layer name."""
    side, out = 8, {}
    for name, kind, _, _, groups, pool in ARCH:
        m = side * side if kind == "conv" else 1
        for g in range(groups):
            out[group_name(name, g, groups)] = m
        if pool:
            side //= 2
    return out


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray, groups: int) -> np.ndarray:
    """Same-padded 3x3 conv as per-group matrix products on im2col columns ordered (i, y, x)."""
    B, C, H, Wd = x.shape
    p = KERNEL // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.stack([np.stack([xp[:, :, y:y + H, s:s + Wd] for s in range(KERNEL)], axis=2)
                     for y in range(KERNEL)], axis=2)  # (B, C, kh, kw, H, W)
    cg, og = C // groups, w.shape[0] // groups
    outs = [np.matmul(w[g * og:(g + 1) * og].reshape(og, -1),
                      cols[:, g * cg:(g + 1) * cg].reshape(B, cg * KERNEL * KERNEL, H * Wd))
            for g in range(groups)]
    return np.concatenate(outs, axis=1).reshape(B, -1, H, Wd) + b[None, :, None, None]


def _pool2(x: np.ndarray) -> np.ndarray:
    B, C, H, W = x.shape
    return x.reshape(B, C, H // 2, 2, W // 2, 2).max(axis=(3, 5))


def digits_forward(state: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Logits (n, 10) of the CNN with weights ``state`` (``<name>.weight``/``.bias``) on images X."""
    h = np.asarray(X, dtype=np.float64)
    for i, (name, kind, _, _, groups, pool) in enumerate(ARCH):
        w = np.asarray(state[f"{name}.weight"], np.float64)
        b = np.asarray(state[f"{name}.bias"], np.float64)
        if kind == "conv":
            h = _conv3x3(h, w, b, groups)
        else:
            h = h.reshape(len(h), -1) @ w.T + b
        if i < len(ARCH) - 1:
            h = np.maximum(h, 0.0)
        if pool:
            h = _pool2(h)
    return h


def _state_of(source) -> dict[str, np.ndarray]:
    """Shipped weights overridden by ``source``'s (masked) weights and, where given, its biases."""
    state = digits_state()
    if source is None:
        return state
    if isinstance(source, Model) or (isinstance(source, (list, tuple)) and source):
        layers, skipped = list(source), getattr(source, "skipped", [])
    else:
        model = load_model(source, groups=None if hasattr(source, "named_modules") else DIGITS_GROUPS)
        layers, skipped = model.layers, model.skipped
        extra = as_arrays(source.state_dict() if hasattr(source, "state_dict") else source)
        state.update({k: v for k, v in extra.items() if k.endswith(".bias") and k in state})
    if skipped:
        name, reason = skipped[0]
        raise ArrangeError(f"cannot evaluate the digits CNN: layer {name}: {reason}")
    new = to_state_dict(layers)
    unknown = sorted(set(new) - set(state))
    if unknown:
        raise ArrangeError(f"not digits CNN weights: {', '.join(unknown)}; expected {', '.join(sorted(state))}")
    state.update(new)
    return state


def evaluate_digits(model_or_state=None, split: str = "test") -> float:
    """Accuracy on the digits split, computed in numpy.

    ``model_or_state``: None (the shipped weights), a torch module, a state dict
    (tensors or arrays; pruning masks honoured), or a :class:`Model` / list of
    :class:`Layer` (e.g. pruned or arranged layers; biases are the shipped ones).
    """
    state = _state_of(model_or_state)
    X, y = digits_data(split)
    return float(np.mean(digits_forward(state, X).argmax(axis=1) == y))
