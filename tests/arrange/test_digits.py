"""Tests for the embedded digits CNN: shipped weights, numpy forward, training and masked fine-tuning."""

import subprocess
import sys

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.io import layer_masks
from arrange.models.digits import (DIGITS_TEST_ACCURACY, DIGITS_WEIGHTS, digits_data, digits_forward,
                                   digits_state, evaluate_digits, load_digits_layers)
from arrange.prune import prune_layers

LAYERS = [("conv1", (8, 9)), ("conv2[g0]", (8, 36)), ("conv2[g1]", (8, 36)), ("conv3", (32, 144)),
          ("fc1", (64, 128)), ("fc2", (10, 64))]

NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError(name)

sys.meta_path.insert(0, NoTorch())
from arrange.models.digits import load_digits_layers, evaluate_digits
m = load_digits_layers()
print([(l.name, l.shape2d) for l in m.layers], m.skipped, repr(evaluate_digits(m)))
assert "torch" not in sys.modules
"""


def test_shipped_weights_load_and_evaluate_without_torch():
    """With torch unimportable, the shipped layers load and evaluate to the recorded accuracy."""
    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{LAYERS} [] {DIGITS_TEST_ACCURACY!r}"


def test_shipped_weights_are_small_and_accurate():
    """The shipped file is under 200 KB and its test accuracy is the recorded one, at least 95%."""
    assert DIGITS_WEIGHTS.stat().st_size < 200_000
    assert evaluate_digits() == pytest.approx(DIGITS_TEST_ACCURACY, abs=1e-12)
    assert DIGITS_TEST_ACCURACY >= 0.95
    assert [(l.name, l.shape2d) for l in load_digits_layers().layers] == LAYERS


def test_split_is_fixed_and_disjoint():
    """Train and test splits are reproducible, disjoint and cover the 1797 images."""
    Xtr, ytr = digits_data("train")
    Xte, yte = digits_data("test")
    assert (len(ytr), len(yte)) == (1438, 359)
    assert Xtr.shape[1:] == (1, 8, 8) and Xtr.dtype == np.float32 and 0 <= Xtr.min() <= Xtr.max() <= 1
    np.testing.assert_array_equal(digits_data("test")[0], Xte)
    flat = {x.tobytes() for x in Xte} & {x.tobytes() for x in Xtr}
    assert len(flat) < 5, "near-duplicate images aside, the splits must not share samples"
    with pytest.raises(ArrangeError, match="allowed: train, test"):
        digits_data("val")


def test_pruned_layers_evaluate_through_the_matrix_view():
    """Evaluating pruned layers equals the forward pass with the masked weights put in by hand."""
    pruned = prune_layers(load_digits_layers().layers, 0.5)
    state = digits_state()
    for layer in pruned:
        if layer.groups == 1:
            state[f"{layer.name}.weight"] = layer.matrix.reshape(layer.weight.shape)
    c2 = [l for l in pruned if l.base_name == "conv2"]
    state["conv2.weight"] = np.concatenate([l.matrix.reshape(l.weight.shape) for l in c2])
    X, y = digits_data("test")
    expected = np.mean(digits_forward(state, X).argmax(1) == y)
    assert evaluate_digits(pruned) == expected < DIGITS_TEST_ACCURACY


def test_torch_module_matches_numpy_forward():
    """The torch module with the shipped weights gives the numpy logits."""
    torch = pytest.importorskip("torch")
    from arrange.models.digits_torch import build_digits_model

    X, _ = digits_data("test")
    with torch.no_grad():
        logits = build_digits_model()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(logits, digits_forward(digits_state(), X), atol=1e-4)
    assert evaluate_digits(build_digits_model()) == pytest.approx(DIGITS_TEST_ACCURACY, abs=1e-12)


def test_torch_prune_mask_on_the_module_is_honoured():
    """evaluate_digits on a torch-pruned module uses weight_orig * weight_mask."""
    pytest.importorskip("torch")
    from torch.nn.utils import prune

    from arrange.models.digits_torch import build_digits_model

    model = build_digits_model()
    prune.l1_unstructured(model.fc1, "weight", amount=0.95)
    state = digits_state()
    state["fc1.weight"] = model.fc1.weight.detach().numpy()
    X, y = digits_data("test")
    assert evaluate_digits(model) == np.mean(digits_forward(state, X).argmax(1) == y)


def test_finetune_holds_masks_and_is_deterministic():
    """Masked fine-tuning keeps pruned weights at zero, recovers accuracy, and repeats exactly."""
    pytest.importorskip("torch")
    from arrange.models.digits_torch import build_digits_model, finetune

    pruned = prune_layers(load_digits_layers().layers, 0.7)
    masks = layer_masks(pruned)
    runs = [finetune(build_digits_model(), masks, epochs=1, seed=3) for _ in range(2)]
    for name, mask in masks.items():
        w = [r.get_submodule(name).weight.detach().numpy() for r in runs]
        np.testing.assert_array_equal(w[0], w[1])
        assert np.all(w[0][~mask] == 0)
    assert evaluate_digits(runs[0]) > evaluate_digits(pruned)


def test_training_is_reproducible(load_benchmark):
    """Two short training runs with one seed give identical weights."""
    pytest.importorskip("torch")
    train_digits = load_benchmark("models/train_digits.py").train_digits

    a, b = train_digits(epochs=1, seed=1), train_digits(epochs=1, seed=1)
    assert sorted(a) == sorted(digits_state())
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
