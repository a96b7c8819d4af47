"""arrange.torch_flow and arrange.hooks on torch modules, with and without prune re-parametrisations."""

import numpy as np
import pytest

from arrange.errors import ArrangeError

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

import checkpoints  # noqa: E402
from arrange.compress import CompressConfig  # noqa: E402
from arrange.hooks import torch_hooks  # noqa: E402
from arrange.io import load_model  # noqa: E402
from arrange.joint import compress_model  # noqa: E402
from arrange.torch_flow import arrange_module, install_masks, load_arrays, numpy_state  # noqa: E402

FAST = dict(solver="ffd", time_limit=2.0)


def _images(n=16, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3, 8, 8)).astype(np.float32))


def _energy(module) -> float:
    """A continuous metric: any change of any weight moves it."""
    with torch.no_grad():
        return float(module(_images()).double().pow(2).sum())


def _plain_copy(state: dict) -> nn.Module:
    """An independent TinyResNet (no prune hooks) holding ``state``'s weights: the reference evaluation."""
    net = checkpoints.TinyResNet().eval()
    net.load_state_dict({k: torch.as_tensor(np.asarray(state[k]), dtype=v.dtype)
                         for k, v in net.state_dict().items()})
    return net


def test_torch_hooks_evaluate_the_arranged_weights_of_a_pruned_module():
    """Issue 12 finding 2: on a prune-re-parametrised module the arranged metric is the arranged weights' metric."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.5)
    cfg = CompressConfig(sparsity=0.5, subword=None, gamma=0.25, baseline=False, **FAST)
    report = compress_model(load_model(net).layers, cfg, hooks=torch_hooks(net, _energy))
    metric = {s.step: s.metric for s in report.stages}
    assert any(o.pruned_pct > 0 for o in report.layers)  # the arrangement pruned weights the pruning kept
    assert metric["arranged"] != metric["pruned"]
    assert metric["arranged"] == pytest.approx(_energy(_plain_copy(report.state)), rel=1e-12)
    # ... and the module itself now computes with them
    for o in report.layers:
        sub = net.get_submodule(o.name.split("[")[0])
        assert not torch.any((sub.weight != 0) & (sub.weight_mask == 0))


def test_torch_hooks_finetune_a_pruned_module_under_the_arrangement():
    """Fine-tuning through torch_hooks on weight_orig/weight_mask keeps every weight outside the packing at zero."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.5)
    x, y = _images(64, seed=1), torch.from_numpy(np.random.default_rng(2).integers(0, 10, 64))
    hooks = torch_hooks(net, _energy, batches=lambda: [(x[:32], y[:32]), (x[32:], y[32:])], epochs=2, lr=1e-2)
    cfg = CompressConfig(sparsity=0.6, subword=None, gamma=0.1, baseline=False, **FAST)
    report = compress_model(load_model(net).layers, cfg, hooks=hooks)
    assert [s.step for s in report.stages] == ["dense", "pruned", "arranged", "finetuned"]
    arranged = {s.step: s for s in report.stages}["arranged"]
    moved = 0
    for o in report.layers:
        w = report.state[f"{o.name.split('[')[0]}.weight"]
        assert np.count_nonzero(w) <= 0.4 * w.size + 1
        assert not np.any((o.weights != 0) & ~o.allowed)
        moved += int(np.any(o.weights != 0))
    assert moved and report.stages[-1].metric != arranged.metric


def test_load_arrays_weight_entry_wins_over_stale_reparametrisation():
    """A `<m>.weight` entry is what forward sees; weight_orig keeps its old values where the weight is zero."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.5)
    state = numpy_state(net)
    old_orig = state["fc.weight_orig"].copy()
    w = state["fc.weight"].copy()
    w[:, :4] = 0.0
    w[0, 5] = 7.0
    load_arrays(net, {**state, "fc.weight": w})
    np.testing.assert_array_equal(net.fc.weight.detach().numpy(), w)  # before any forward pass
    np.testing.assert_array_equal(net.fc.weight_mask.numpy() != 0, w != 0)
    np.testing.assert_array_equal(net.fc.weight_orig.detach().numpy()[:, :4], old_orig[:, :4])
    assert _energy(net) == _energy(_plain_copy(numpy_state(net)))


@pytest.mark.parametrize("pruned", [False, True])
def test_arrange_module_installs_the_keep_masks(pruned):
    """The module comes back carrying the packing as prune masks: its weights are the decoded packing, exactly."""
    net = checkpoints.convnet()
    if pruned:
        checkpoints.prune_global(net, 0.6)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    done = arrange_module(net, gamma=0.2, sparsity=None if pruned else 0.6, scope="global", **FAST)
    assert done.module is net and done.report.skipped == []
    assert {n.kind for n in done.report.not_selected} == {"norm", "bias"}
    assert set(done.masks) == {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "fc.weight"}
    expected = checkpoints.decoded_weights(done.report.layers, done.packed)
    extra = 0
    for key, mask in done.masks.items():
        sub = net.get_submodule(key.rsplit(".", 1)[0])
        np.testing.assert_array_equal(sub.weight_mask.numpy() != 0, mask)
        assert torch.equal(sub.weight.detach(), torch.from_numpy(expected[key].reshape(sub.weight.shape)))
        if pruned:
            old = before[key + "_mask"].numpy() != 0
            assert not np.any(mask & ~old)
            extra += int((old & ~mask).sum())
    assert extra > 0 or not pruned  # gamma = 0.2 prunes conflicts: the new masks are in force, not the old
    assert np.array_equal(done.results["layer1.0.conv1[g1]"].keep_mask.reshape(8, -1),
                          done.masks["layer1.0.conv1.weight"][8:].reshape(8, -1))
    assert _energy(net) == pytest.approx(_energy(_plain_copy(numpy_state(net))), rel=1e-12)


def test_fine_tuning_continues_under_the_masks():
    """After arrange_module, a plain optimiser loop trains the kept weights and leaves the others at zero."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.6)
    done = arrange_module(net, gamma=0.1, **FAST)
    start = {k: net.get_submodule(k.rsplit(".", 1)[0]).weight.detach().clone() for k in done.masks}
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = _images(32), torch.arange(32) % 10
    net.train()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net(x)  # the prune hook recomputes weight
    for key, mask in done.masks.items():
        w = net.get_submodule(key.rsplit(".", 1)[0]).weight.detach()
        assert not torch.any(w[torch.from_numpy(~mask)] != 0)
        assert not torch.equal(w, start[key])


def test_arrange_module_on_bert_skips_embeddings_and_norms():
    """A BERT-style module: Linear weights get masks; embeddings and LayerNorms keep no mask and stay untouched."""
    net = checkpoints.bert()
    words = net.embeddings.word_embeddings.weight.detach().clone()
    done = arrange_module(net, sparsity=0.6, gamma=0.1, **FAST)
    assert all(k.endswith(".weight") and "embeddings" not in k and "LayerNorm" not in k for k in done.masks)
    assert len(done.masks) == 13
    assert not hasattr(net.embeddings.word_embeddings, "weight_mask")
    assert torch.equal(net.embeddings.word_embeddings.weight, words)
    assert net(torch.zeros((2, 5), dtype=torch.long)).shape == (2, checkpoints.HIDDEN)


def test_apply_false_and_bad_masks():
    """apply=False leaves the module alone; a mask keeping weights the module's mask removed is refused whole."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.6)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    done = arrange_module(net, apply=False, **FAST)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    masks = dict(done.masks)
    masks["fc.weight"] = np.ones_like(masks["fc.weight"])
    with pytest.raises(ArrangeError, match="fc.weight: the module's prune mask removes weights"):
        install_masks(net, masks)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with pytest.raises(ArrangeError, match="no tensor 'nope.weight'"):
        install_masks(net, {"nope.weight": np.ones((2, 2), bool)})
    with pytest.raises(ArrangeError, match="takes a torch.nn.Module"):
        arrange_module({"fc.weight": np.eye(2)})
