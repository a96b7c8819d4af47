"""The `arrange` command line: tables, JSON, output folder, exit codes on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from arrange.cli import main


@pytest.fixture
def model_npz(tmp_path):
    """A two-layer model file: a 4-D conv weight and a 2-D linear weight, 60% zeros."""
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(8, 4, 3, 3)) * (rng.random((8, 4, 3, 3)) > 0.6)
    fc = rng.normal(size=(10, 32)) * (rng.random((10, 32)) > 0.6)
    path = tmp_path / "model.npz"
    np.savez(path, **{"conv.weight": conv, "fc.weight": fc})
    return path


def test_pack_json(model_npz, capsys):
    """--json prints per-layer rows and a model total consistent with them."""
    assert main(["pack", str(model_npz), "--solver", "ffd", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in out["layers"]]
    assert names == ["conv", "fc"]
    for r in out["layers"]:
        assert r["groups"] >= r["lower_bound"] >= 1
        assert r["matrix_compression"] == pytest.approx(r["cols"] / r["groups"])
    total = out["total"]
    assert total["groups"] == sum(r["groups"] for r in out["layers"])
    slots = sum(r["rows"] * r["cols"] for r in out["layers"])
    packed = sum(r["rows"] * r["groups"] for r in out["layers"])
    assert total["matrix_compression"] == pytest.approx(slots / packed)


def test_pack_table_and_out_dir(model_npz, tmp_path, capsys):
    """The table has a total row and --out writes the report and packed arrays."""
    out_dir = tmp_path / "out"
    assert main(["pack", str(model_npz), "--solver", "ffd", "--sparsity", "0.7",
                 "--out", str(out_dir)]) == 0
    text = capsys.readouterr().out
    assert "**total**" in text and "storage x" in text
    report = json.loads((out_dir / "report.json").read_text())
    assert report["params"]["sparsity"] == 0.7
    with np.load(out_dir / "packed.npz") as z:
        assert z["fc/values"].shape == (10, report["layers"][1]["groups"])


@pytest.mark.parametrize("args, message", [
    (["--alpha", "0"], "--alpha"),
    (["--gamma", "-1"], "--gamma"),
    (["--sparsity", "1.5"], "--sparsity"),
    (["--time-limit", "0"], "--time-limit"),
])
def test_bad_options_exit_2(model_npz, args, message, capsys):
    """Meaningless options exit with code 2 and name the option."""
    with pytest.raises(SystemExit) as info:
        main(["pack", str(model_npz), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_unreadable_file_exit_2(tmp_path, capsys):
    """A corrupt model file gives one line on stderr and exit code 2."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["pack", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arrange:") and "bad.pt" in err and "\n" not in err


def test_bad_layer_skipped_others_complete(tmp_path, capsys):
    """An all-zero and a NaN layer are reported and skipped; the good layer is still packed and written."""
    path = tmp_path / "m.npz"
    good = np.eye(6)
    nan = np.ones((3, 3)); nan[0, 0] = np.nan
    np.savez(path, **{"a.weight": good, "b.weight": np.zeros((4, 4)), "c.weight": nan})
    assert main(["pack", str(path), "--solver", "ffd", "--json", "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [r["name"] for r in out["layers"]] == ["a"]
    skipped = {s["layer"] for s in out["skipped"]}
    assert skipped == {"b", "c"}
    assert "layer b" in captured.err and "zero" in captured.err
    assert (tmp_path / "o" / "report.json").exists()


def test_unknown_solver_exit_2(model_npz, capsys):
    """An unknown solver name lists the allowed ones."""
    assert main(["pack", str(model_npz), "--solver", "magic"]) == 2
    assert "allowed" in capsys.readouterr().err


def test_solvers_lists_registered(capsys):
    """`arrange solvers` lists P1 and P2 solvers with a summary each."""
    assert main(["solvers"]) == 0
    out = capsys.readouterr().out
    assert "P1" in out and "P2" in out and "ffd" in out


def test_console_script_help():
    """The installed entry point answers --help listing the subcommands."""
    out = subprocess.run([sys.executable, "-m", "arrange.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("pack", "demo", "solvers", "bench"):
        assert cmd in out.stdout
