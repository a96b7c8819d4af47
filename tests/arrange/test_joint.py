"""Joint optimisation: prune -> arrange -> fine-tune -> refit, on the embedded digits CNN."""

from dataclasses import replace

import numpy as np
import pytest

from arrange.compress import CompressConfig
from arrange.compress_report import report_dict
from arrange.errors import ArrangeError
from arrange.formats import column_combine
from arrange.hooks import digits_hooks
from arrange.joint import CompressError, Hooks, compress_model
from arrange.quant import to_subwords
from arrange.verify import verify_packing

@pytest.fixture(scope="module")
def tuned(p1_config, digits_layers):
    """A two-stage schedule with one fine-tuning epoch per stage."""
    return compress_model(digits_layers, p1_config, hooks=digits_hooks(epochs=1), schedule=[0.5, 0.7])


def test_stages_recorded(tuned):
    """Every stage of the schedule records its metric, after the dense one."""
    steps = [(s.step, s.sparsity) for s in tuned.stages]
    assert steps == [("dense", 0.0), ("pruned", 0.5), ("arranged", 0.5), ("finetuned", 0.5),
                     ("pruned", 0.7), ("arranged", 0.7), ("finetuned", 0.7)]
    assert all(0 <= s.metric <= 1 for s in tuned.stages)
    assert tuned.stages[0].metric == pytest.approx(0.9861, abs=1e-4)
    assert tuned.stages[-1].compression == pytest.approx(tuned.total["matrix_compression"])
    assert not tuned.skipped and tuned.error is None


def test_refit_keeps_packings_valid(p1_config, tuned):
    """After fine-tuning and refit each packing verifies and decodes to the effective weights."""
    for o in tuned.layers:
        q = np.rint(o.weights / o.scale[:, None]).astype(np.int32)
        M = to_subwords(q, 8, 4).values
        assert not np.any((M != 0) & ~o.allowed)
        assert np.array_equal(verify_packing(M, o.packed, p1_config.gamma), M)
        assert o.packed_cols == o.packed.num_groups


def test_final_state_is_the_compressed_model(tuned, digits_layers):
    """report.state holds the effective weights of every compressed layer and the tuned biases."""
    from arrange.models.digits import evaluate_digits

    assert evaluate_digits(tuned.state) == pytest.approx(tuned.stages[-1].metric)
    w = tuned.state["fc1.weight"]
    fc1 = next(o for o in tuned.layers if o.name == "fc1")
    assert np.array_equal(w, fc1.weights)
    assert np.count_nonzero(w) <= 0.3 * w.size + 1


def _strip_times(d):
    if isinstance(d, dict):
        return {k: _strip_times(v) for k, v in d.items() if "seconds" not in k}
    if isinstance(d, list):
        return [_strip_times(v) for v in d]
    return d


def test_same_seed_same_report(digits_layers):
    """Two runs with the same seed give the same report (timings aside)."""
    cfg = CompressConfig(sparsity=0.6, subword=None, solver="ffd", alpha=8, gamma=0.1, time_limit=0.5)
    a, b = (report_dict(compress_model(digits_layers, cfg, hooks=digits_hooks(epochs=1)), rows=8, cols=8)
            for _ in range(2))
    assert _strip_times(a) == _strip_times(b)


def test_failing_layer_is_skipped(p1_config, digits_layers):
    """A layer that cannot be compressed is skipped; the others complete."""
    zero = digits_layers[0].with_matrix(np.zeros(digits_layers[0].shape2d))
    report = compress_model([zero] + list(digits_layers[1:]), p1_config)
    assert [n for n, _ in report.skipped] == [zero.name]
    assert "all weights are zero" in report.skipped[0][1]
    assert [o.name for o in report.layers] == [l.name for l in digits_layers[1:]]


def test_raising_evaluation_hook(p1_config, digits_layers):
    """An evaluation hook that raises gives one clear line and a report of what finished."""
    calls = []

    def evaluate(state):
        calls.append(1)
        if len(calls) == 3:   # dense, pruned, then the arranged model
            raise RuntimeError("GPU on fire\nsecond line")
        return 0.5

    hooks = Hooks(evaluate=evaluate, base_state={})
    with pytest.raises(CompressError) as info:
        compress_model(digits_layers, p1_config, hooks=hooks)
    msg = str(info.value)
    assert "\n" not in msg and "evaluation hook failed" in msg and "RuntimeError: GPU on fire" in msg
    report = info.value.report
    assert report.error == msg
    assert [o.name for o in report.layers] == [l.name for l in digits_layers]
    assert [s.step for s in report.stages] == ["dense", "pruned"]
    assert report.total["matrix_compression"] > 1


def test_no_prunable_layers(p1_config):
    """A model without conv or linear layers is refused in one line."""
    with pytest.raises(ArrangeError, match="no prunable"):
        compress_model([], p1_config)


@pytest.mark.parametrize("schedule", [[0.5, 1.0], [-0.1]])
def test_bad_schedule(p1_config, digits_layers, schedule):
    """Schedule sparsities outside [0, 1) are refused."""
    with pytest.raises(ArrangeError, match=r"\[0, 1\)"):
        compress_model(digits_layers, p1_config, schedule=schedule)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (dict(sparsity=-0.2), r"sparsity must be in \[0, 1\)"),
    (dict(bits=8, subword=3), "bit width 8 is not divisible by subword width 3"),
    (dict(bits=6, subword=4), "bit width 6 is not divisible by subword width 4"),
])
def test_bad_config_messages(kwargs, message):
    """Sparsity outside [0, 1) and indivisible bit widths are one-line errors."""
    with pytest.raises(ArrangeError, match=message) as info:
        CompressConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_jobs_match_serial(digits_layers):
    """Layers compressed in two processes give the same outcome as in one."""
    cfg = CompressConfig(sparsity=0.7, subword=4, solver="ffd", alpha=8, time_limit=0.5, baseline=False)
    a = compress_model(digits_layers, cfg, jobs=1)
    b = compress_model(digits_layers, cfg, jobs=2)
    for x, y in zip(a.layers, b.layers):
        assert np.array_equal(x.weights, y.weights) and x.packed_cols == y.packed_cols


def test_arrangement_aware_stage_meets_budget(digits_layers):
    """With arrangement-aware pruning every layer still reaches the stage's sparsity, and packs validly."""
    cfg = CompressConfig(sparsity=0.7, subword=None, solver="ffd", alpha=8, gamma=0.25, time_limit=0.5,
                         arrangement_aware=True, baseline=False)
    plain = compress_model(digits_layers, replace(cfg, arrangement_aware=False))
    aware = compress_model(digits_layers, cfg)
    for a, p in zip(aware.layers, plain.layers):
        assert np.count_nonzero(a.weights) <= 0.3 * a.weights.size + 1
        assert np.array_equal(column_combine.decode(a.packed), np.rint(a.weights / a.scale[:, None]))
    assert sum(np.count_nonzero(o.weights) for o in aware.layers) >= \
        sum(np.count_nonzero(o.weights) for o in plain.layers)


def test_finetune_rounds_project_each_round(p1_config, digits_layers):
    """Each fine-tuning round is followed by a projection; packings stay valid after several rounds."""
    calls = []
    base = digits_hooks(epochs=1)

    def finetune(state, masks, seed):
        calls.append(seed)
        return base.finetune(state, masks, seed)

    hooks = Hooks(evaluate=base.evaluate, base_state=base.base_state, finetune=finetune)
    report = compress_model(digits_layers, p1_config, hooks=hooks, schedule=[0.5, 0.7], finetune_rounds=2)
    assert calls == [0, 1, 2, 3]
    for o in report.layers:
        q = np.rint(o.weights / o.scale[:, None]).astype(np.int32)
        verify_packing(to_subwords(q, 8, 4).values, o.packed, p1_config.gamma)


def test_torch_hooks_keep_masks():
    """torch_hooks fine-tunes a user's module with pruned weights held at zero, end to end."""
    torch = pytest.importorskip("torch")
    from arrange.hooks import torch_hooks
    from arrange.io import load_model
    from arrange.models.digits import digits_data

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    X, y = (torch.from_numpy(a) for a in digits_data("train"))
    Xt, yt = (torch.from_numpy(a) for a in digits_data("test"))

    def accuracy(module):
        with torch.no_grad():
            return float((module(Xt).argmax(1) == yt).float().mean())

    hooks = torch_hooks(net, accuracy, batches=lambda: zip(X.split(128), y.split(128)), epochs=2, lr=1e-2)
    cfg = CompressConfig(sparsity=0.5, subword=None, solver="ffd", alpha=8, time_limit=0.5, baseline=False)
    report = compress_model(load_model(net).layers, cfg, hooks=hooks)
    assert [s.step for s in report.stages] == ["dense", "pruned", "arranged", "finetuned"]
    for o in report.layers:
        w = report.state[f"{o.name}.weight"]
        assert np.count_nonzero(w) <= 0.5 * w.size
        assert not np.any((w != 0) & ~o.allowed)
    assert report.stages[-1].metric > report.stages[2].metric - 0.05
