"""The compression report folder and the hardware export's round trip through torch."""

import json

import numpy as np
import pytest

from arrange.compress import CompressConfig
from arrange.compress_report import format_compress, hardware, write_compress_report
from arrange.export import load_export, rebuild_torch_model
from arrange.hooks import digits_hooks
from arrange.joint import CompressError, Hooks, compress_model
from arrange.models.digits import digits_data, digits_forward, digits_pixels

torch = pytest.importorskip("torch")

P1 = CompressConfig(sparsity=0.7, subword=4, solver="ffd", alpha=8, gamma=0.1, time_limit=0.5)
P2 = CompressConfig(sparsity=0.6, subword=4, problem="p2", k=4, n=2, solver="identity", time_limit=0.3)


@pytest.fixture(scope="module", params=[P1, P2], ids=["p1-subword", "p2-subword-2of4"])
def written(request, digits_model, tmp_path_factory):
    """A one-epoch compression of the digits CNN and its report folder."""
    report = compress_model(digits_model.layers, request.param, hooks=digits_hooks(epochs=1))
    out = tmp_path_factory.mktemp("report")
    paths = write_compress_report(report, str(out), model_layers=digits_model.layers, rows=8, cols=8,
                                  pixels=digits_pixels())
    return report, out, paths


def test_folder_contents(written):
    """report.json, report.md, the PNG plots and the export are written."""
    report, out, paths = written
    names = {p.split("/")[-1] for p in paths}
    assert {"report.json", "report.md", "packed_matrix.png", "compression_per_layer.png", "hardware.png",
            "manifest.json"} <= names
    d = json.loads((out / "report.json").read_text())
    assert [l["name"] for l in d["layers"]] == [o.name for o in report.layers]
    assert d["total"]["matrix_compression"] == pytest.approx(report.total["matrix_compression"])
    assert d["hardware"]["array"] == {"rows": 8, "cols": 8, "dataflow": "ws", "subword_lanes": 2}
    assert d["hardware"]["pixels_assumed_1"] == []
    assert (out / "report.md").read_text().startswith("# Compression report")
    for png in ("packed_matrix.png", "hardware.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_export_rebuilds_the_compressed_weights(written):
    """load_export gives back exactly the effective weights and the tuned biases."""
    report, out, _ = written
    state = load_export(str(out / "export"))
    assert set(state) == set(report.state)
    for key, value in report.state.items():
        assert np.allclose(state[key], value, rtol=0, atol=1e-12), key


def test_torch_round_trip_same_logits(written):
    """The torch model rebuilt from the export computes the numpy forward pass of the compressed weights."""
    from arrange.models.digits_torch import DigitsCNN

    report, out, _ = written
    net = rebuild_torch_model(str(out / "export"), DigitsCNN())
    X, _ = digits_data("test")
    with torch.no_grad():
        logits = net(torch.from_numpy(X)).numpy()
    expected = digits_forward(report.state, X)
    assert np.allclose(logits, expected, atol=1e-4)
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


def test_hardware_totals_consistent(written):
    """Model hardware totals are sums of the per-layer figures; speedups are cycle ratios."""
    report, _, _ = written
    hw = hardware(report, rows=8, cols=8, pixels=digits_pixels())
    for form in ("dense", "engine", "baseline"):
        assert hw["total"][form]["cycles"] == sum(l[form]["cycles"] for l in hw["layers"])
    t = hw["total"]
    assert t["engine"]["speedup_vs_dense"] == pytest.approx(t["dense"]["cycles"] / t["engine"]["cycles"])


def test_subword_lanes_in_hardware(written):
    """Subword packings run two 4-bit lanes per 8-bit PE by default: fewer cycles than one
    subword per PE, the same dense and baseline figures."""
    report, _, _ = written
    two = hardware(report, rows=8, cols=8, pixels=digits_pixels())
    one = hardware(report, rows=8, cols=8, pixels=digits_pixels(), subword_lanes=1)
    assert (two["array"]["subword_lanes"], one["array"]["subword_lanes"]) == (2, 1)
    assert two["total"]["engine"]["cycles"] < one["total"]["engine"]["cycles"]
    for form in ("dense", "baseline"):
        assert two["total"][form] == one["total"][form]


def test_unknown_pixels_are_named(digits_model):
    """Layers without a known output size are counted as one pixel, and the report says so."""
    report = compress_model(digits_model.layers, P1)
    text = format_compress(report, rows=8, cols=8)
    assert "counted as M = 1: conv1, conv2[g0]" in text


def test_partial_report_written_after_hook_error(digits_model, tmp_path):
    """When fine-tuning raises, the report of the layers that finished is still written, with the error."""
    def finetune(state, masks, seed):
        raise ValueError("out of data")

    hooks = Hooks(evaluate=lambda state: 0.5, base_state={}, finetune=finetune)
    with pytest.raises(CompressError, match="fine-tuning hook failed at sparsity 0.7: ValueError: out of data"):
        compress_model(digits_model.layers, P1, hooks=hooks)
    try:
        compress_model(digits_model.layers, P1, hooks=hooks)
    except CompressError as exc:
        write_compress_report(exc.report, str(tmp_path), model_layers=digits_model.layers)
    d = json.loads((tmp_path / "report.json").read_text())
    assert "out of data" in d["error"] and len(d["layers"]) == 6
    assert "Stopped early" in (tmp_path / "report.md").read_text()


def test_cli_compress_and_sweep(tmp_path, capsys):
    """`arrange compress digits` writes the report folder; `--sweep` writes the sweep folder."""
    from arrange.cli import main

    common = ["compress", "digits", "--epochs", "0", "--solver", "ffd", "--time-limit", "0.5", "--rows", "8",
              "--cols", "8"]
    assert main(common + ["--sparsity", "0.6", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "export" / "manifest.json").is_file()
    assert main(common + ["--sweep", "0.5,0.7", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "accuracy_vs_compression.png").is_file()
    assert "column combining" in capsys.readouterr().out
    assert main(common + ["--sweep", "0.7,0.5"]) == 2
    assert "increasing" in capsys.readouterr().err
    assert main(common + ["--subword-lanes", "3"]) == 2
    assert "--subword-lanes must be <= bits / subword = 2" in capsys.readouterr().err
