"""Tests for arrange.io: every import format, masks, grouped convs and bad input."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.io import layer_masks, load_model, to_state_dict

torch = pytest.importorskip("torch")
nn = torch.nn
prune = pytest.importorskip("torch.nn.utils.prune")
safetensors_torch = pytest.importorskip("safetensors.torch")

GROUPS = {"0": 2}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.BatchNorm2d(6), nn.Conv2d(6, 5, 2),
                         nn.Flatten(), nn.Linear(20, 3))


def _expected(net):
    """name -> matrix, computed straight from the module's weights."""
    w0 = net[0].weight.detach().numpy().astype(np.float64)
    return {"0[g0]": w0[:3].reshape(3, -1), "0[g1]": w0[3:].reshape(3, -1),
            "2": net[2].weight.detach().numpy().reshape(5, -1), "4": net[4].weight.detach().numpy()}


def _state(net):
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def _source(fmt, net, tmp_path):
    sd = net.state_dict()
    if fmt == "module":
        return net, {}
    if fmt == "state dict":
        return sd, GROUPS
    if fmt == "numpy state dict":
        return _state(net), GROUPS
    path = tmp_path / f"model.{fmt}"
    if fmt == "pt":
        torch.save(sd, path)
    elif fmt == "pth":
        torch.save({"epoch": 3, "state_dict": sd}, path)
    elif fmt == "safetensors":
        safetensors_torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "npz":
        np.savez(path, **_state(net))
    return path, GROUPS


@pytest.mark.parametrize("fmt", ["module", "state dict", "numpy state dict", "pt", "pth", "safetensors", "npz"])
def test_every_format_gives_the_same_matrices(fmt, tmp_path):
    """Module, state dicts, .pt/.pth, .safetensors and .npz import to identical layers."""
    net = _net()
    source, groups = _source(fmt, net, tmp_path)
    model = load_model(source, groups=groups)
    expected = _expected(net)
    assert [l.name for l in model.layers] == list(expected)
    assert model.skipped == []
    for layer in model.layers:
        np.testing.assert_array_equal(layer.matrix, expected[layer.name])
    assert [l.kind for l in model.layers] == ["conv", "conv", "conv", "linear"]


@pytest.mark.parametrize("shape, kind", [((4, 6), "linear"), ((4, 2, 3, 3), "conv")])
def test_npy_is_one_layer_named_after_the_file(shape, kind, tmp_path):
    """A .npy of a 2-D or 4-D array is one layer named after the file stem."""
    w = np.random.default_rng(0).normal(size=shape)
    np.save(tmp_path / "blk.npy", w)
    model = load_model(tmp_path / "blk.npy")
    (layer,) = model.layers
    assert (layer.name, layer.kind) == ("blk", kind)
    np.testing.assert_array_equal(layer.matrix, w.reshape(shape[0], -1))


def test_pickled_module_is_refused(tmp_path):
    """A .pt holding a whole pickled nn.Module is refused, never unpickled."""
    torch.save(_net(), tmp_path / "full.pt")
    with pytest.raises(ArrangeError, match="cannot read full.pt: .*pickled .*refused") as err:
        load_model(tmp_path / "full.pt")
    assert "\n" not in str(err.value)


def _torch_pruned():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 5))
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.l1_unstructured(net[2], "weight", amount=0.6)
    return net


@pytest.mark.parametrize("fmt", ["module", "state dict", "pt"])
def test_torch_prune_masks_are_honoured(fmt, tmp_path):
    """weight_orig * weight_mask from torch.nn.utils.prune: zeros exactly where the mask is 0."""
    net = _torch_pruned()
    source = {"module": net, "state dict": net.state_dict(), "pt": tmp_path / "p.pt"}[fmt]
    torch.save(net.state_dict(), tmp_path / "p.pt")
    model = load_model(source)
    assert [l.name for l in model.layers] == ["0", "2"]
    for layer, m in zip(model.layers, (net[0], net[2])):
        mask = m.weight_mask.numpy().reshape(layer.shape2d) != 0
        np.testing.assert_array_equal(layer.matrix != 0, mask)
        np.testing.assert_array_equal(layer.matrix, m.weight.detach().numpy().reshape(layer.shape2d))


@pytest.mark.parametrize("mask_key", ["fc.weight_mask", "fc_mask"])
def test_mask_keys_are_honoured(mask_key):
    """`<name>.weight_mask` and `<name>_mask` entries mask the weight."""
    w = np.arange(1.0, 13.0).reshape(3, 4)
    mask = np.random.default_rng(0).random((3, 4)) < 0.5
    model = load_model({"fc.weight": w, mask_key: mask.astype(np.float32)})
    np.testing.assert_array_equal(model.layers[0].matrix, np.where(mask, w, 0.0))


def test_plain_npz_masks_and_mask_argument(tmp_path):
    """A plain .npz has one layer per array, `<key>_mask` entries, and masks= ANDed on top."""
    w = np.arange(1.0, 13.0).reshape(3, 4)
    m1 = np.arange(12).reshape(3, 4) % 2 == 0
    m2 = np.arange(12).reshape(3, 4) % 3 == 0
    np.savez(tmp_path / "w.npz", a=w, a_mask=m1, b=w)
    model = load_model(tmp_path / "w.npz", masks={"a": m2, "b": m2.astype(int)})
    assert [l.name for l in model.layers] == ["a", "b"]
    np.testing.assert_array_equal(model.layer("a").matrix, np.where(m1 & m2, w, 0.0))
    np.testing.assert_array_equal(model.layer("b").matrix, np.where(m2, w, 0.0))


def test_masks_and_groups_for_unknown_layers_raise():
    """masks= or groups= naming a layer the source lacks is a one-line ArrangeError."""
    with pytest.raises(ArrangeError, match="masks given for unknown layer.*nope.*layers: fc"):
        load_model({"fc.weight": np.eye(2)}, masks={"nope": np.eye(2)})
    with pytest.raises(ArrangeError, match="groups given for unknown layer"):
        load_model({"fc.weight": np.eye(2)}, groups={"conv": 2})
    with pytest.raises(ArrangeError, match="groups must be integers >= 1"):
        load_model({"c.weight": np.ones((2, 1, 1, 1))}, groups={"c": 0})


def test_grouped_conv_splits_per_group():
    """A groups=3 conv becomes three layers, each the matrix of its block of filters, masks split too."""
    w = np.random.default_rng(2).normal(size=(6, 2, 3, 3))
    mask = np.random.default_rng(3).random(w.shape) < 0.7
    model = load_model({"c.weight": w, "c.weight_mask": mask}, groups={"c": 3})
    assert [(l.name, l.group, l.groups) for l in model.layers] == [(f"c[g{g}]", g, 3) for g in range(3)]
    for g, layer in enumerate(model.layers):
        np.testing.assert_array_equal(layer.matrix, np.where(mask, w, 0)[2 * g:2 * g + 2].reshape(2, -1))
    merged = to_state_dict(model.layers)
    np.testing.assert_array_equal(merged["c.weight"], np.where(mask, w, 0))
    np.testing.assert_array_equal(layer_masks(model.layers)["c"], mask)


def test_bad_layers_are_skipped_with_reasons():
    """NaN, inf, 5-D weights, mask mismatches and bad groups are faults; 1-D weights are never layers."""
    ok = np.ones((2, 3))
    sd = {"nan.weight": np.array([[1.0, np.nan]]), "inf.weight": np.array([[np.inf, 1.0]]),
          "vec.weight": np.ones(4), "five.weight": np.ones((1, 2, 1, 1, 1)),
          "mis.weight": ok, "mis.weight_mask": np.ones((3, 2)), "grp.weight": np.ones((3, 1, 1, 1)),
          "bn.weight": np.ones(3), "bn.running_mean": np.zeros(3), "ok.weight": ok, "ok.bias": np.zeros(2)}
    model = load_model(sd, groups={"grp": 2})
    assert [l.name for l in model.layers] == ["ok"]
    reasons = dict(model.skipped)
    assert list(reasons) == ["nan", "inf", "five", "mis", "grp"]
    assert "NaN" in reasons["nan"] and "inf" in reasons["inf"]
    assert "5-D" in reasons["five"]
    assert "mask shape" in reasons["mis"] and "groups=2" in reasons["grp"]
    assert all("\n" not in r for r in reasons.values())
    # issue 12, finding 1: a 1-D weight (a norm scale) is not a fault but left out by the selection
    left = {n.name: n for n in model.not_selected}
    assert left["vec.weight"].kind == "1-D" and "1-D" in left["vec.weight"].reason
    assert left["bn.weight"].kind == "norm" and left["ok.bias"].kind == "bias"


def test_unsupported_conv_module_is_skipped():
    """A Conv1d in a module is reported as skipped, not silently ignored."""
    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(3, 2))
    model = load_model(net)
    assert [l.name for l in model.layers] == ["2"]
    assert model.skipped[0][0] == "0" and "Conv1d" in model.skipped[0][1]


@pytest.mark.parametrize("name, content, message", [
    ("bad.pt", b"garbage" * 20, "not a torch weights file"),
    ("half.pt", None, "cannot read half.pt"),
    ("bad.npz", b"garbage" * 20, "not a .npz file"),
    ("bad.npy", b"garbage" * 20, "not a .npy file"),
    ("bad.safetensors", b"garbage" * 20, "cannot read bad.safetensors"),
    ("empty.pth", b"", "empty file"),
    ("model.bin", b"x", "unknown format '.bin'"),
])
def test_corrupt_files_give_one_line_errors(name, content, message, tmp_path):
    """Corrupt, truncated, empty or unknown files raise a one-line ArrangeError naming the file."""
    if content is None:
        torch.save(_net().state_dict(), tmp_path / "full.pt")
        content = (tmp_path / "full.pt").read_bytes()[:300]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ArrangeError, match=message) as err:
        load_model(tmp_path / name)
    assert "\n" not in str(err.value) and name in str(err.value)


def test_object_arrays_and_missing_files_are_refused(tmp_path):
    """Pickled object arrays are refused; a missing path says so."""
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ArrangeError, match="cannot read obj.npz"):
        load_model(tmp_path / "obj.npz")
    with pytest.raises(ArrangeError, match="no such file"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ArrangeError, match="cannot import a int"):
        load_model(3)
    with pytest.raises(ArrangeError, match="no conv or linear weights"):
        load_model({})
