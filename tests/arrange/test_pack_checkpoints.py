"""`arrange pack` on real checkpoint layouts, end to end: exit 0, norms and embeddings left out, masks back into torch."""

import json

import numpy as np
import pytest

from arrange.cli import main
from arrange.report import read_packed

torch = pytest.importorskip("torch")
from torch.nn.utils import prune  # noqa: E402

import checkpoints  # noqa: E402

FAST = ["--solver", "ffd", "--time-limit", "2", "--gamma", "0.1"]


def _pack(capsys, path, out, *extra):
    code = main(["pack", str(path), *FAST, "--json", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _fresh(which: str):
    """A module of the checkpoint's architecture, ready to take its state dict."""
    if which == "bert":
        return checkpoints.TinyBert().eval()
    net = checkpoints.TinyResNet().eval()
    return checkpoints.prune_global(net, 0.5) if which == "pruned" else net


def _masks_into_torch(which, path, out, report):
    """Load the checkpoint into a fresh module, install masks.npz with custom_from_mask, compare to the decoding."""
    module = _fresh(which)
    sd = checkpoints_state(path)
    module.load_state_dict(sd)
    expected = checkpoints.decoded_weights(report["layers"], read_packed(out / "packed.npz"))
    with np.load(out / "masks.npz") as z:
        masks = {k: z[k] for k in z.files}
    assert set(masks) == set(expected) == {r["weight"] for r in report["layers"]}
    for key, mask in masks.items():
        path_, _, name = key.rpartition(".")
        sub = module.get_submodule(path_)
        assert mask.dtype == bool and mask.shape == tuple(getattr(sub, name).shape)
        prune.custom_from_mask(sub, name, torch.from_numpy(mask))
        got = getattr(sub, name).detach()
        want = torch.from_numpy(expected[key].reshape(got.shape))
        assert got.dtype == want.dtype == torch.float32
        assert torch.equal(got, want), key
    pt = torch.load(out / "masks.pt", weights_only=True)
    assert set(pt) == set(masks) and all(np.array_equal(pt[k].numpy(), m) for k, m in masks.items())


def checkpoints_state(path):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("which", ["bert", "convnet", "pruned"])
def test_checkpoint_packs_and_masks_come_back(which, bert_checkpoint, convnet_checkpoint, pruned_checkpoint,
                                             tmp_path, capsys):
    """Each checkpoint packs with exit 0; masks.npz/.pt installed by custom_from_mask reproduce the decoding."""
    path, _ = {"bert": bert_checkpoint, "convnet": convnet_checkpoint, "pruned": pruned_checkpoint}[which]
    out = tmp_path / "out"
    extra = [] if which == "pruned" else ["--sparsity", "0.6"]
    code, report, err = _pack(capsys, path, out, *extra)
    assert code == 0, err
    assert report["skipped"] == [] and not any("failed" in l or l.startswith("arrange: layer ")
                                               for l in err.splitlines())
    kinds = {n["kind"] for n in report["not_selected"]}
    assert "norm" in kinds
    if which == "bert":
        assert {n["name"] for n in report["not_selected"] if n["kind"] == "embedding"} == {
            f"embeddings.{e}_embeddings.weight" for e in ("word", "position", "token_type")}
        assert not any("embeddings" in r["name"] for r in report["layers"])
    if which == "pruned":  # the torch masks were honoured: no kept weight outside them
        assert {r["weight"] for r in report["layers"]} == {"conv1.weight", "layer1.0.conv1.weight",
                                                           "layer1.0.conv2.weight", "fc.weight"}
    for r in report["layers"]:
        assert r["dtype"] == "float32" and r["kept"] <= r["nnz"]
    with np.load(out / "packed.npz") as z:
        assert all(z[k].dtype == np.float32 for k in z.files if k.endswith("/values"))
    _masks_into_torch(which, path, out, report)


def test_table_says_what_was_left_out_and_exits_0(bert_checkpoint, tmp_path, capsys):
    """The terminal table ends with one summary line for the selection, and no failure lines."""
    path, _ = bert_checkpoint
    assert main(["pack", str(path), *FAST, "--sparsity", "0.6"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    summary = [l for l in lines if l.startswith("not arranged")]
    assert summary == ["not arranged (selection, not errors): 3 embedding, 10 norm, 13 bias, 1 buffer tensors; "
                       "--include/--exclude change the set"]
    assert not any(l.startswith("failed") for l in lines)
    err = captured.err.splitlines()   # progress lines only: no failure, no per-layer fault line
    assert err and not any("failed" in l or l.startswith("arrange: layer ") for l in err)


def test_cli_include_exclude(bert_checkpoint, tmp_path, capsys):
    """--include/--exclude select on state-dict names; an include can arrange an embedding as a linear layer."""
    path, _ = bert_checkpoint
    code, report, _ = _pack(capsys, path, tmp_path / "o", "--include", "encoder.layer.0.*",
                            "--include", "*word_embeddings*", "--exclude", "*.intermediate.*")
    assert code == 0
    names = [r["name"] for r in report["layers"]]
    assert set(names) == {"embeddings.word_embeddings"} | {
        f"encoder.layer.0.{m}" for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                                         "attention.output.dense", "output.dense")}
    left = {n["name"]: n["kind"] for n in report["not_selected"]}
    assert left["encoder.layer.0.intermediate.dense.weight"] == "excluded"
    assert left["encoder.layer.1.attention.self.query.weight"] == "not included"
    with np.load(tmp_path / "o" / "masks.npz") as z:
        assert z["embeddings.word_embeddings.weight"].shape == (checkpoints.VOCAB, checkpoints.HIDDEN)


def test_cli_bad_pattern_exit_2(bert_checkpoint, capsys):
    """A pattern matching nothing exits 2 with one line naming it."""
    path, _ = bert_checkpoint
    assert main(["pack", str(path), "--exclude", "decoder.*", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arrange: exclude pattern 'decoder.*'") and "\n" not in err


def test_faults_still_exit_2_apart_from_selection(tmp_path, capsys):
    """A NaN layer is a failure (exit 2, JSON skipped); a LayerNorm beside it is only not selected."""
    bad = np.ones((4, 4), np.float32)
    bad[1, 1] = np.nan
    path = tmp_path / "m.npz"
    np.savez(path, **{"a.weight": np.eye(6, dtype=np.float32), "b.weight": bad,
                      "a.LayerNorm.weight": np.ones(6, np.float32)})
    code, report, err = _pack(capsys, path, tmp_path / "o")
    assert code == 2
    assert [s["layer"] for s in report["skipped"]] == ["b"]
    assert report["not_selected"] == [{"name": "a.LayerNorm.weight", "kind": "norm",
                                       "reason": "1-D norm weight, not a layer"}]
    assert "layer b" in err and "LayerNorm" not in err
    main(["pack", str(path), *FAST])
    out = capsys.readouterr().out
    assert "failed b: " in out and "not arranged (selection, not errors): 1 norm tensors" in out


def test_compress_writes_masks(pruned_checkpoint, tmp_path, capsys):
    """`arrange compress --out` writes masks.npz keyed by state-dict name: the nonzeros of the exported weights."""
    path, _ = pruned_checkpoint
    out = tmp_path / "c"
    assert main(["compress", str(path), "--subword", "0", "--sparsity", "0.7", "--solver", "ffd",
                 "--time-limit", "1", "--json", "--out", str(out)]) == 0
    capsys.readouterr()
    with np.load(out / "masks.npz") as z:
        masks = {k: z[k] for k in z.files}
    original = torch.load(path, weights_only=True)
    assert set(masks) == {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "fc.weight"}
    for key, mask in masks.items():
        old = original[key + "_mask"].numpy() != 0
        assert mask.shape == old.shape and not np.any(mask & ~old)  # arranged inside the torch mask
        assert mask.sum() <= 0.3 * mask.size + 1
