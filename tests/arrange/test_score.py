"""User scores for P2 in compress and the CLI: `--score FILE` ranks entries instead of |W|."""

from __future__ import annotations

import json

import numpy as np
import pytest

import arrange
from arrange.cli import main
from arrange.compress import CompressConfig, compress_matrix
from arrange.errors import ArrangeError
from arrange.quant import quantize

FAST = ["--problem", "p2", "--k", "4", "--n", "2", "--subword", "0", "--sparsity", "0", "--solver", "ria",
        "--time-limit", "1", "--json"]


@pytest.fixture
def model_and_scores(tmp_path):
    """A two-layer .npz model and a score file: activation norms for fc1, a score matrix for fc2."""
    rng = np.random.default_rng(0)
    model, scores = tmp_path / "m.npz", tmp_path / "s.npz"
    np.savez(model, **{"fc1.weight": rng.standard_normal((16, 32)), "fc2.weight": rng.standard_normal((8, 16))})
    norms = np.ones(32)
    norms[:4] = 50.0
    np.savez(scores, fc1=norms, **{"fc2.weight": np.abs(rng.standard_normal((8, 16)))})
    return model, scores


def test_compress_keeps_what_the_score_ranks_highest():
    """compress_matrix with a score: the allowed entries are permute(score=...)'s keep mask, objective in score units."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((12, 32))
    norms = rng.uniform(0.1, 5.0, size=32)
    cfg = CompressConfig(sparsity=0.0, subword=None, problem="p2", k=4, n=2, solver="ria", time_limit=1.0,
                         baseline=False, scores={"fc": norms})
    out = compress_matrix("fc", W, cfg)
    q = quantize(W, 8).q
    expected = arrange.permute(q, k=4, n=2, solver="ria", time_limit=1.0, score=np.abs(W) * norms)
    assert np.array_equal(out.allowed, expected.keep_mask)
    assert out.objective == pytest.approx(expected.kept)
    plain = compress_matrix("fc", W, CompressConfig(sparsity=0.0, subword=None, problem="p2", k=4, n=2,
                                                    solver="ria", time_limit=1.0, baseline=False))
    assert not np.array_equal(plain.allowed, out.allowed)


def test_subword_scores_split_a_weights_score_by_contribution():
    """With subwords the score reaches every subword column; the answer is checked and differs from |C|."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((8, 16))
    norms = np.ones(16)
    norms[:2] = 40.0
    base = dict(sparsity=0.0, subword=4, problem="p2", k=4, n=2, solver="ria", time_limit=1.0, baseline=False)
    out = compress_matrix("fc", W, CompressConfig(**base, scores={"fc": norms}))
    plain = compress_matrix("fc", W, CompressConfig(**base))
    assert out.allowed.shape == (8, 32) and not np.array_equal(out.allowed, plain.allowed)


def test_cli_score_file_changes_the_objective(model_and_scores, capsys):
    """`--score` runs, lists the scored layers in the config, and reports the kept score."""
    model, scores = model_and_scores
    assert main(["compress", str(model), *FAST, "--score", str(scores)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert main(["compress", str(model), *FAST]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert scored["config"]["scores"] == ["fc1", "fc2.weight"] and plain["config"]["scores"] == []
    for a, b in zip(scored["layers"], plain["layers"]):
        assert a["objective"] <= a["bound"] + 1e-9 and a["objective"] != b["objective"]


def test_cli_score_errors(model_and_scores, tmp_path, capsys):
    """Unknown layer names and p1 are one-line errors (exit 2); a misfit score skips only its layer."""
    model, _ = model_and_scores
    bad = tmp_path / "bad.npz"
    np.savez(bad, nope=np.ones(32))
    assert main(["compress", str(model), *FAST, "--score", str(bad)]) == 2
    assert "no layer named nope" in capsys.readouterr().err
    assert main(["compress", str(model), "--problem", "p1", "--score", str(bad)]) == 2
    assert "use --problem p2" in capsys.readouterr().err
    misfit = tmp_path / "misfit.npz"
    np.savez(misfit, fc1=np.ones(5))
    assert main(["compress", str(model), *FAST, "--score", str(misfit)]) == 2
    out = capsys.readouterr()
    assert "layer fc1: score of shape (5,)" in out.err
    assert [layer["name"] for layer in json.loads(out.out)["layers"]] == ["fc2"]


def test_config_refuses_scores_for_p1():
    """CompressConfig(scores=..., problem="p1") is an ArrangeError."""
    with pytest.raises(ArrangeError, match="p2"):
        CompressConfig(problem="p1", scores={"fc": np.ones(3)})
