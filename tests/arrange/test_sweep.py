"""The sparsity sweep: one point per level for the engine and for column combining."""

import functools
import json

import pytest

from arrange.compress import CompressConfig
from arrange.errors import ArrangeError
from arrange.hooks import digits_hooks
from arrange.sweep import (SweepPoint, column_combining_config, compression_at_metric, parse_sweep, sweep,
                           sweep_levels, write_sweep)

@pytest.fixture(scope="module")
def result(p1_config, digits_layers):
    """A two-level sweep of the digits CNN with one fine-tuning epoch per level."""
    hooks = functools.partial(digits_hooks, epochs=1)
    return sweep(digits_layers, p1_config, hooks=hooks, levels=[0.5, 0.7])


def test_points_per_level(result):
    """Both curves have one point per level, compression growing with sparsity."""
    assert [p.sparsity for p in result.engine] == [0.5, 0.7] == [p.sparsity for p in result.baseline]
    assert result.engine[0].matrix_compression < result.engine[1].matrix_compression
    assert all(0 <= p.metric <= 1 for p in result.engine + result.baseline)
    assert result.dense_metric == pytest.approx(0.9861, abs=1e-4)
    assert all(p.baseline_compression for p in result.engine)
    assert all(p.baseline_compression is None for p in result.baseline)


def test_parallel_flows_match(p1_config, digits_layers, result):
    """Running the two flows in two processes gives the same points."""
    hooks = functools.partial(digits_hooks, epochs=1)
    again = sweep(digits_layers, p1_config, hooks=hooks, levels=[0.5, 0.7], jobs=2)
    assert again.engine == result.engine and again.baseline == result.baseline


def test_write_sweep(result, tmp_path):
    """sweep.json, sweep.md and the accuracy-vs-compression plot are written."""
    paths = write_sweep(result, str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == ["sweep.json", "sweep.md", "accuracy_vs_compression.png"]
    d = json.loads((tmp_path / "sweep.json").read_text())
    assert len(d["engine"]) == len(d["baseline"]) == 2
    assert (tmp_path / "accuracy_vs_compression.png").read_bytes()[:4] == b"\x89PNG"


def test_column_combining_config():
    """The baseline flow is P1 greedy-cc on whole weights with the same alpha, gamma and seed."""
    cc = column_combining_config(CompressConfig(alpha=16, gamma=0.2, subword=2, subword_sparsity=0.3,
                                                problem="p2", seed=3))
    assert (cc.problem, cc.solver, cc.subword, cc.subword_sparsity, cc.alpha, cc.gamma, cc.seed) == \
        ("p1", "greedy-cc", None, 0.0, 16, 0.2, 3)


def test_compression_at_metric():
    """The most compressed point at least as accurate, or None."""
    pts = [SweepPoint(0.5, 2.0, 1.0, None, 0.97), SweepPoint(0.7, 3.0, 1.5, None, 0.95),
           SweepPoint(0.9, 6.0, 2.0, None, 0.60)]
    assert compression_at_metric(pts, 0.95).matrix_compression == 3.0
    assert compression_at_metric(pts, 0.99) is None


def test_levels_and_parsing(p1_config):
    """Ten default levels from 0.5 to 0.95; a count or a list parses; bad input is refused."""
    assert sweep_levels() == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert parse_sweep("3") == [0.5, 0.725, 0.95]
    assert parse_sweep("0.2,0.4") == [0.2, 0.4]
    for bad in ("x", "0"):
        with pytest.raises(ArrangeError):
            parse_sweep(bad)
    with pytest.raises(ArrangeError, match="increasing"):
        sweep([], p1_config, levels=[0.7, 0.5])
