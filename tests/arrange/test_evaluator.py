"""Issue 12 item 3: your own evaluator, fine-tuner and model builder (CLI and Python), and each layer's M."""

import json
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

import checkpoints  # noqa: E402
from arrange.cli import main  # noqa: E402
from arrange.compress import CompressConfig  # noqa: E402
from arrange.errors import ArrangeError  # noqa: E402
from arrange.formats import column_combine  # noqa: E402
from arrange.hooks import torch_hooks  # noqa: E402
from arrange.report import read_packed  # noqa: E402
from arrange.torch_flow import arrange_module, compress_module, output_positions  # noqa: E402
from arrange.usermodel import positions_from_shapes  # noqa: E402

FAST = ["--solver", "ffd", "--time-limit", "0.5"]

#: the user's file: a builder per checkpoint, an evaluator (agreement with fixed reference outputs on fixed
#: inputs, higher is better) and a fine-tuning loop of their own; `calls` records what the loop was handed
USER = textwrap.dedent('''
    import torch
    import checkpoints

    X = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    IDS = torch.randint(0, 60, (4, 12), generator=torch.Generator().manual_seed(0))
    calls = []

    def build():
        return checkpoints.TinyResNet()

    def build_bert():
        return checkpoints.TinyBert()

    def evaluate(module):
        with torch.no_grad():
            return -float((module(X) - checkpoints.convnet()(X)).pow(2).mean())

    def eval_bert(module):
        with torch.no_grad():
            return -float((module(IDS) - checkpoints.bert()(IDS)).pow(2).mean())

    def finetune(module):
        calls.append(sorted(n for n, _ in module.named_buffers() if n.endswith("weight_mask")))
        module.eval()  # keep batch-norm statistics fixed: only the weights learn
        target = checkpoints.convnet()(X).detach()
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)
        for _ in range(5):
            opt.zero_grad()
            (module(X) - target).pow(2).mean().backward()
            opt.step()

    def not_a_number(module):
        return "good"

    def broken(module):
        raise RuntimeError("my data loader is missing")
''')


@pytest.fixture
def user(tmp_path):
    """(user file path, checkpoint paths): the pruned conv net, the plain conv net, a BERT-style encoder."""
    path = tmp_path / "mine.py"
    path.write_text(USER)
    ckpt = {"pruned": tmp_path / "pruned.pth", "conv": tmp_path / "conv.pth", "bert": tmp_path / "bert.safetensors"}
    checkpoints.save_pruned_convnet(ckpt["pruned"], amount=0.6)
    checkpoints.save_convnet(ckpt["conv"])
    checkpoints.save_bert(ckpt["bert"])
    return path, ckpt


def _load_plain(state) -> nn.Module:
    net = checkpoints.TinyResNet().eval()
    net.load_state_dict({k: torch.as_tensor(np.asarray(state[k]), dtype=v.dtype) for k, v in net.state_dict().items()})
    return net


def test_pack_with_your_evaluator_and_finetuner(user, tmp_path, capsys):
    """pack --eval/--finetune/--model-builder on a torch-pruned checkpoint: your metric by step, masks that hold."""
    fn, ckpt = user
    out = tmp_path / "out"
    code = main(["pack", str(ckpt["pruned"]), "--gamma", "0.1", *FAST, "--eval", f"{fn}:evaluate",
                 "--finetune", f"{fn}:finetune", "--model-builder", f"{fn}:build", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "metric (--eval " in text
    report = json.loads((out / "report.json").read_text())
    metric = report["accuracy"]
    assert set(metric) == {"dense", "pruned", "packed", "finetuned"}
    assert metric["dense"] < 0 and metric["finetuned"] > metric["packed"]  # the loop helped
    # the fine-tuned model: zero outside the masks, its weights exactly what packed.npz decodes to
    state = torch.load(out / "finetuned.pt", weights_only=True)
    masks = torch.load(out / "masks.pt", weights_only=True)
    decoded = checkpoints.decoded_weights(report["layers"], read_packed(out / "packed.npz"))
    for key, mask in masks.items():
        w = state[key]
        assert not w[~mask].any() and w[mask].count_nonzero() > 0
        np.testing.assert_array_equal(decoded[key].reshape(w.shape), w.double().numpy())
    # ... and it is the model the metric was measured on
    with torch.no_grad():
        net = _load_plain(state)
        expected = -float((net(_inputs()) - checkpoints.convnet()(_inputs())).pow(2).mean())
    assert metric["finetuned"] == pytest.approx(expected, rel=1e-6)


def _inputs():
    return torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_compress_with_your_evaluator_on_a_transformer(user, tmp_path, capsys):
    """compress --eval on a BERT-style safetensors checkpoint: the metric column is yours, M = tokens per layer."""
    fn, ckpt = user
    code = main(["compress", str(ckpt["bert"]), "--subword", "0", "--sparsity", "0.5", "--gamma", "0.2", *FAST,
                 "--eval", f"{fn}:eval_bert", "--model-builder", f"{fn}:build_bert", "--tokens", "12", "--json"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    metrics = {s["step"]: s["metric"] for s in d["stages"]}
    assert metrics["dense"] == 0.0 and metrics["arranged"] < 0  # measured on the user's data, not "-"
    pixels = {r["name"]: r["pixels"] for r in d["hardware"]["layers"]}
    assert pixels["pooler.dense"] == 1  # the pooler sees one token: the forward pass knows
    assert {m for n, m in pixels.items() if n.startswith("encoder.")} == {12}
    assert d["hardware"]["pixels_assumed_1"] == [] and "forward pass" in d["hardware"]["pixels_note"]


def test_formats_takes_any_model_with_your_evaluator(user, capsys):
    """formats --eval on a conv checkpoint: rows measured by the user's metric, M from --input-shape."""
    fn, ckpt = user
    code = main(["formats", str(ckpt["conv"]), "--formats", "column_combine", "--time-limit", "0.5",
                 "--eval", f"{fn}:evaluate", "--model-builder", f"{fn}:build", "--input-shape", "3,8,8", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["format"] for r in rows] == ["dense", "column_combine"]
    assert rows[0]["accuracy"] == 0.0 and rows[1]["accuracy"] < 0
    assert rows[1]["layers"] == ["conv1", "layer1.0.conv1[g0]", "layer1.0.conv1[g1]", "layer1.0.conv2", "fc"]


@pytest.mark.parametrize("args, message", [
    (["--eval", "{fn}:evaluate"], "--model-builder"),
    (["--eval", "{fn}:nothing", "--model-builder", "{fn}:build"], "no attribute 'nothing'"),
    (["--eval", "missing.py:evaluate", "--model-builder", "{fn}:build"], "does not exist"),
    (["--eval", "{fn}:not_a_number", "--model-builder", "{fn}:build"], "must return a finite number"),
    (["--eval", "{fn}:broken", "--model-builder", "{fn}:build"], "RuntimeError: my data loader is missing"),
    (["--eval", "{fn}:evaluate", "--model-builder", "{fn}:build_bert"], "does not fit"),
    (["--finetune", "{fn}:finetune", "--model-builder", "{fn}:build"], "needs --eval"),
])
def test_bad_user_functions_exit_2_with_one_line(user, args, message, capsys):
    """Every fault in the user's file or functions is one line naming the option, exit 2."""
    fn, ckpt = user
    argv = ["pack", str(ckpt["conv"]), "--sparsity", "0.5", "--quiet", *FAST, *[a.format(fn=fn) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_your_finetune_runs_under_prune_masks():
    """torch_hooks(finetune=...) hands the loop a module carrying the keep-masks as prune masks, then removes them."""
    net = checkpoints.convnet()
    x = _inputs()
    seen = []

    def finetune(module):
        seen.append({n for n, _ in module.named_buffers() if n.endswith("weight_mask")})
        opt = torch.optim.SGD(module.parameters(), lr=0.5)
        for _ in range(3):
            opt.zero_grad()
            module(x).pow(2).sum().neg().backward()  # pushes every weight, masked ones included
            opt.step()

    cfg = CompressConfig(sparsity=0.7, subword=None, gamma=0.1, solver="ffd", time_limit=0.5, baseline=False)
    done = compress_module(net, cfg, evaluate=lambda m: float(m(x).sum()), finetune=finetune)
    assert seen == [{"conv1.weight_mask", "layer1.0.conv1.weight_mask", "layer1.0.conv2.weight_mask",
                     "fc.weight_mask"}]
    assert [s.step for s in done.report.stages] == ["dense", "pruned", "arranged", "finetuned"]
    for key, mask in done.masks.items():
        sub = net.get_submodule(key.rsplit(".", 1)[0])
        np.testing.assert_array_equal(sub.weight_mask.numpy() != 0, mask)  # installed, in force
        assert not sub.weight.detach()[torch.from_numpy(~mask)].any()
        np.testing.assert_array_equal(sub.weight.detach().numpy(), done.report.state[key].astype(np.float32))
    assert np.mean([m.mean() for m in done.masks.values()]) < 0.35


def test_compress_module_on_a_module_already_pruned():
    """A module carrying weight_orig/weight_mask comes out with the compression's masks, a subset of its own."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.5)
    old = {n: b.clone() for n, b in net.named_buffers() if n.endswith("weight_mask")}
    x = _inputs()
    cfg = CompressConfig(sparsity=0.6, subword=None, gamma=0.2, solver="ffd", time_limit=0.5, baseline=False)
    done = compress_module(net, cfg, evaluate=lambda m: float(m(x).pow(2).mean()))
    for key, mask in done.masks.items():
        sub = net.get_submodule(key.rsplit(".", 1)[0])
        assert not np.any(mask & (old[key + "_mask"].numpy() == 0))
        np.testing.assert_array_equal(sub.weight.detach().numpy() != 0, mask)
    metric = {s.step: s.metric for s in done.report.stages}
    with torch.no_grad():
        assert metric["arranged"] == pytest.approx(float(net(x).pow(2).mean()), rel=1e-6)


def test_arrange_module_reports_your_metric_and_keeps_layers_intact():
    """arrange_module(evaluate=...) measures dense, pruned, packed; evaluating does not rewrite the imported layers."""
    net = checkpoints.convnet()
    x = _inputs()
    dense = float(net(x).pow(2).mean())
    done = arrange_module(net, gamma=0.1, solver="ffd", time_limit=0.5, sparsity=0.7,
                          evaluate=lambda m: float(m(x).pow(2).mean()))
    acc = done.report.accuracy
    assert acc["dense"] == pytest.approx(dense, rel=1e-6) and acc["pruned"] != acc["dense"]
    with torch.no_grad():
        assert acc["packed"] == pytest.approx(float(net(x).pow(2).mean()), rel=1e-6)


class _Strided(nn.Module):
    """A conv net whose M differs from layer to layer: stride 2, valid padding, pooling, a linear head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)     # 16x16 -> 8x8
        self.b = nn.Conv2d(8, 8, 3, padding=0, groups=2)     # 8x8 -> 6x6
        self.fc = nn.Linear(8 * 3 * 3, 5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.b(torch.relu(self.a(x)))), 2)
        return self.fc(x.flatten(1))


def test_output_positions_from_a_forward_pass():
    """M is each layer's output height x width (stride, padding, pooling included), batch x vectors for linear."""
    net = _Strided()
    assert output_positions(net, torch.zeros(1, 3, 16, 16)) == {"a": 64, "b": 36, "fc": 1}
    assert output_positions(net, torch.zeros(2, 3, 16, 16)) == {"a": 128, "b": 72, "fc": 2}
    with pytest.raises(ArrangeError, match="forward pass on an input of shape"):
        output_positions(net, torch.zeros(1, 3, 9, 9))


def test_compress_input_shape_with_and_without_the_module(tmp_path, capsys):
    """--input-shape with --model-builder counts exact M; without it the same-padding assumption is stated."""
    net = _Strided()
    torch.save(net.state_dict(), tmp_path / "s.pth")
    (tmp_path / "b.py").write_text("import test_evaluator\ndef build():\n    return test_evaluator._Strided()\n")
    base = ["compress", str(tmp_path / "s.pth"), "--subword", "0", "--sparsity", "0.5", *FAST, "--json",
            "--input-shape", "3,16,16"]
    assert main(base + ["--model-builder", f"{tmp_path / 'b.py'}:build"]) == 0
    exact = json.loads(capsys.readouterr().out)["hardware"]
    assert {r["name"]: r["pixels"] for r in exact["layers"]} == {"a": 64, "b[g0]": 36, "b[g1]": 36, "fc": 1}
    assert main(base) == 0
    assumed = json.loads(capsys.readouterr().out)["hardware"]
    assert {r["name"]: r["pixels"] for r in assumed["layers"]} == {"a": 256, "b": 256, "fc": 1}
    assert "same padding" in assumed["pixels_note"]
    # and the exact M changes the cycles the report gives: more work for the first layer, less for the second
    assert exact["total"]["dense"]["cycles"] != assumed["total"]["dense"]["cycles"]


def test_positions_from_shapes_tokens():
    """--tokens without a module: every linear layer multiplies T vectors, and the note says so."""
    from arrange.io import load_model

    layers = load_model(checkpoints.bert().state_dict()).layers
    pixels, note = positions_from_shapes(layers, tokens=7)
    assert set(pixels.values()) == {7} and len(pixels) == len(layers) and "every token" in note


def test_readme_example_runs(repo_root, tmp_path, monkeypatch, capsys):
    """README 'Your evaluator, your fine-tuning, your input shape': mine.py and its commands run as written."""
    import re
    import shlex
    import sys

    text = (repo_root / "README.md").read_text()
    section = text[text.index("### Your evaluator, your fine-tuning, your input shape"):]
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if b.startswith("# mine.py")]
    commands = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0].strip().splitlines()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mine.py").write_text(example)
    make, *runs = [shlex.split(c) for c in commands]
    assert make[:3] == ["./run", "python", "-c"]
    exec(make[3], {})
    sys.modules.pop("mine", None)
    for argv in runs:
        assert argv[:2] == ["./run", "arrange"]
        # as written, with a faster solver (and formats on one of its two formats) for the test's time
        fast = ["--formats", "nm"] if argv[2] == "formats" else ["--solver", "ffd"]
        code = main(argv[2:] + fast + ["--time-limit", "0.5"])
        out = capsys.readouterr().out
        assert code == 0, argv
        if argv[2] == "compress":
            assert "M (output positions per layer) from one forward pass on an input of shape 1x3x8x8" in out
            d = json.loads((tmp_path / "out/mine/report.json").read_text())
            assert {r["name"]: r["pixels"] for r in d["hardware"]["layers"]} == {"0": 64, "4": 1}
        if argv[2] == "pack":
            assert "metric (--eval mine.py:evaluate): dense" in out
            assert (tmp_path / "out/mine-pack/finetuned.pt").is_file()


def test_compress_export_of_a_pruned_checkpoint_rebuilds_the_plain_module(user, tmp_path, capsys):
    """compress --out on a torch-pruned checkpoint: the state and export hold plain weights, no stale
    weight_orig / weight_mask, and rebuild the user's (plain) module to the compressed weights."""
    from arrange.export import load_export, rebuild_torch_model

    fn, ckpt = user
    out = tmp_path / "c"
    assert main(["compress", str(ckpt["pruned"]), "--subword", "0", "--sparsity", "0.7", "--gamma", "0.1", *FAST,
                 "--eval", f"{fn}:evaluate", "--model-builder", f"{fn}:build", "--out", str(out)]) == 0
    capsys.readouterr()
    state = load_export(str(out / "export"))
    assert not [k for k in state if k.endswith(("_orig", "_mask"))]
    net = rebuild_torch_model(str(out / "export"), checkpoints.TinyResNet())
    masks = torch.load(out / "masks.pt", weights_only=True)
    for key, mask in masks.items():
        w = net.state_dict()[key]
        assert not w[~mask].any() and bool(w[mask].ne(0).all())


def test_formats_penni_on_a_torch_pruned_checkpoint(user, capsys):
    """formats --finetune with PENNI (a parametrized weight) on a checkpoint saved with weight_orig/weight_mask:
    the module is plain, the checkpoint's masks are the layers' masks, and PENNI trains its kernels."""
    fn, ckpt = user
    code = main(["formats", str(ckpt["pruned"]), "--formats", "penni", "--eval", f"{fn}:evaluate",
                 "--finetune", f"{fn}:finetune", "--model-builder", f"{fn}:build", "--input-shape", "3,8,8",
                 "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1]["format"] == "penni" and rows[1]["layers"][0] == "conv1"
    assert any(t["accuracy"] != t["accuracy_projected"] for t in rows[1]["tried"])  # fine-tuning ran


def test_builder_keeps_the_checkpoint_masks(user):
    """build_module on a torch-pruned checkpoint: a plain module holding weight_orig * weight_mask, and the masks."""
    from arrange.userfns import build_module

    _, ckpt = user
    saved = torch.load(ckpt["pruned"], weights_only=True)
    module, masks = build_module(checkpoints.TinyResNet, ckpt["pruned"])
    assert set(masks) == {"conv1", "layer1.0.conv1", "layer1.0.conv2", "fc"}
    assert not any(n.endswith("_orig") for n in module.state_dict())
    for name, mask in masks.items():
        np.testing.assert_array_equal(mask, saved[f"{name}.weight_mask"].numpy() != 0)
        expected = saved[f"{name}.weight_orig"] * saved[f"{name}.weight_mask"]
        assert torch.equal(module.get_submodule(name).weight, expected)
