"""The whole-model runner: per-layer isolation, memory guards, the layer store and --resume, Ctrl-C,
--jobs processes, Ray, progress lines. Small shapes only."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from arrange import executor, pipeline
from arrange.cli import main
from arrange.errors import ArrangeError
from arrange.io import load_model
from arrange.layer import Layer
from arrange.pipeline import pack_layers
from arrange.store import LayerStore
from solvers import Outcome

REPO = Path(__file__).resolve().parents[2]


def _singletons(problem, options):
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    return Outcome(labels)


def _raises_on_wide(problem, options):
    """A solver with a bug on one layer: any exception, not an ArrangeError."""
    if problem.shape[1] == 24:
        raise RuntimeError("solver bug on the wide layer")
    return _singletons(problem, options)


def _dies_on_wide(problem, options):
    """Kills its own process on the 24-column layer; once only when ARRANGE_TEST_MARKER names a missing file."""
    marker = os.environ.get("ARRANGE_TEST_MARKER")
    if problem.shape[1] == 24 and (marker is None or not os.path.exists(marker)):
        if marker:
            Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _singletons(problem, options)


def _layers(count=4, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(12, 16), (10, 24), (16, 20), (8, 18), (14, 22), (9, 16)][:count]
    return [Layer.from_matrix(rng.normal(size=s) * (rng.random(s) < 0.25), f"l{i}") for i, s in enumerate(shapes)]


def _rows(report):
    """The report rows without the wall seconds (the only field that differs between runs)."""
    return [{k: v for k, v in r.as_dict().items() if k != "seconds"} for r in report.layers]


def _model_file(tmp_path, count=4, name="m.npz"):
    path = tmp_path / name
    np.savez(path, **{f"{l.name}.weight": l.matrix for l in _layers(count)})
    return path


# --- per-layer isolation -------------------------------------------------------------------------


def test_any_exception_of_one_layer_is_one_line_and_the_others_finish():
    report, packed = pack_layers(_layers(), solver=_raises_on_wide, advise=False)
    assert [r.name for r in report.layers] == ["l0", "l2", "l3"]
    assert report.skipped == [("l1", "RuntimeError: solver bug on the wide layer")]
    assert set(packed) == {"l0", "l2", "l3"}


def test_colliding_names_stay_apart_in_every_output(tmp_path, capsys):
    """fc.weight and fc_weight are two layers in the report, packed.npz and masks.npz."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 8)) * (rng.random((6, 8)) < 0.3), rng.normal(size=(5, 8)) * (rng.random((5, 8)) < 0.3)
    path = tmp_path / "m.npz"
    np.savez(path, **{"fc.weight": a, "fc_weight": b})
    out = tmp_path / "out"
    assert main(["pack", str(path), "--solver", "ffd", "--out", str(out), "--quiet"]) == 0
    names = [r["name"] for r in json.loads((out / "report.json").read_text())["layers"]]
    assert sorted(names) == ["fc.weight", "fc_weight"]
    with np.load(out / "packed.npz") as z:
        assert {k.rsplit("/", 1)[0] for k in z.files} == {"fc.weight", "fc_weight"}
        assert z["fc_weight/shape"].tolist() == [5, 8]
    with np.load(out / "masks.npz") as z:
        assert sorted(z.files) == ["fc.weight", "fc_weight"]
        assert z["fc.weight"].shape == (6, 8) and z["fc_weight"].shape == (5, 8)


def test_every_layer_failing_prints_each_fault(tmp_path, capsys):
    nan = np.ones((4, 4)); nan[0, 0] = np.nan
    path = tmp_path / "m.npz"
    np.savez(path, **{"a.weight": nan, "b.weight": np.zeros((3, 3)), "c.weight": np.ones((2, 3, 4))})
    assert main(["pack", str(path), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "no conv or linear" not in captured.err
    faults = [l for l in captured.err.splitlines() if l.startswith("arrange: layer ")]
    assert len(faults) == 3
    assert "NaN" in faults[0] and "zero" in captured.err and "3-D" in captured.err


def test_npz_member_that_is_not_an_array_is_left_out(tmp_path):
    import zipfile

    path = _model_file(tmp_path, 2)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "trained on a Tuesday")
    model = load_model(path)
    assert [l.name for l in model.layers] == ["l0", "l1"]
    assert [(n.name, n.kind) for n in model.not_selected] == [("notes.txt", "other")]


# --- memory guards -------------------------------------------------------------------------------


def test_layer_that_would_not_fit_is_refused_with_the_estimate(monkeypatch):
    monkeypatch.setattr(pipeline, "available_memory", lambda: 12 * 16 * pipeline.BYTES_PER_ENTRY - 1)
    report, _ = pack_layers(_layers(2)[:1] + [Layer.from_matrix(np.eye(4), "small")], solver="ffd", advise=False)
    assert [r.name for r in report.layers] == ["small"]
    (name, error), = report.skipped
    assert name == "l0" and "needs about" in error and "12 x 16" in error and "available" in error


def test_npz_that_expands_beyond_memory_is_refused_before_decompressing(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, w=np.zeros((256, 256)))    # 512 KiB of zeros, a few hundred bytes on disk
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(executor, "available_memory", lambda: 100_000)
    with pytest.raises(ArrangeError, match="refused before decompressing"):
        load_model(path)


def test_npz_member_whose_header_lies_about_its_size_is_refused(tmp_path):
    import io as _io
    import zipfile

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(ArrangeError, match="more than its"):
        load_model(path)


# --- the layer store, --resume, Ctrl-C ------------------------------------------------------------


class _StopAfter:
    """A solver that behaves as ``_singletons`` and raises KeyboardInterrupt on its call number ``stop``."""

    def __init__(self, stop):
        self.stop, self.calls = stop, 0

    def __call__(self, problem, options):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return _singletons(problem, options)


def test_store_writes_each_layer_and_resume_gives_the_uninterrupted_report(tmp_path):
    layers = _layers()
    whole, _ = pack_layers(layers, solver=_StopAfter(0), store=LayerStore(str(tmp_path / "a"), {"run": 1}))
    index = json.loads((tmp_path / "a" / "layers" / "index.json").read_text())
    assert sorted(index["layers"]) == ["l0", "l1", "l2", "l3"]
    assert all((tmp_path / "a" / "layers" / e["file"]).is_file() for e in index["layers"].values())

    stop = _StopAfter(3)   # Ctrl-C while the third layer is being packed
    cut, _ = pack_layers(layers, solver=stop, store=LayerStore(str(tmp_path / "b"), {"run": 1}))
    assert cut.interrupted and [r.name for r in cut.layers] == ["l0", "l1"]
    assert sorted(json.loads((tmp_path / "b" / "layers" / "index.json").read_text())["layers"]) == ["l0", "l1"]

    again = _StopAfter(0)
    resumed, packed = pack_layers(layers, solver=again,
                                  store=LayerStore(str(tmp_path / "b"), {"run": 1}, resume=True))
    assert again.calls == 2 and not resumed.interrupted   # only l2 and l3 were packed again
    assert _rows(resumed) == _rows(whole)
    assert resumed.total["groups"] == whole.total["groups"]
    for layer in layers:
        assert np.array_equal(resumed.keep_masks[layer.name], whole.results[layer.name].keep_mask)
        assert np.array_equal(packed[layer.name].values, whole.results[layer.name].packed.values)


def test_resume_with_other_settings_is_refused(tmp_path):
    LayerStore(str(tmp_path), {"alpha": 8})
    with pytest.raises(ArrangeError, match="other settings.*alpha"):
        LayerStore(str(tmp_path), {"alpha": 4}, resume=True)


def test_cli_resume_repacks_only_what_is_missing(tmp_path, capsys):
    path = _model_file(tmp_path)
    out = tmp_path / "out"
    args = ["pack", str(path), "--solver", "ffd", "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads((out / "report.json").read_text())
    index_path = out / "layers" / "index.json"
    index = json.loads(index_path.read_text())
    del index["layers"]["l2"]                       # as if the run had died before l2 finished
    index_path.write_text(json.dumps(index))
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("already in the store") == 3 and "l2: 16 x 20" in err
    second = json.loads((out / "report.json").read_text())
    strip = lambda rep: [{k: v for k, v in r.items() if k != "seconds"} for r in rep["layers"]]
    assert strip(second) == strip(first)


SLOW_SOLVER = '''
import os
import time
import numpy as np
from solvers import Outcome

def solve(problem, options):
    """Every column alone, after SLOW_SECONDS of "search"; Ctrl-C during it returns that answer, marked interrupted."""
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    try:
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.4")))
    except KeyboardInterrupt:
        return Outcome(labels, interrupted=True)
    return Outcome(labels)
'''


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigint_to_a_running_pack_writes_the_finished_layers_and_exits_130(tmp_path, jobs):
    path = tmp_path / "m.npz"
    rng = np.random.default_rng(0)
    np.savez(path, **{f"l{i}.weight": rng.normal(size=(6, 8)) * (rng.random((6, 8)) < 0.3) for i in range(40)})
    (tmp_path / "slow.py").write_text(SLOW_SOLVER)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLOW_SECONDS": "1.5"}   # SIGINT lands inside a search
    proc = subprocess.Popen([sys.executable, "-m", "arrange.cli", "pack", str(path), "--solver",
                             f"{tmp_path / 'slow.py'}:solve", "--out", str(out), "--jobs", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    index = out / "layers" / "index.json"
    deadline = time.time() + 60
    while time.time() < deadline and not (index.exists() and len(json.loads(index.read_text())["layers"]) >= 2):
        time.sleep(0.1)
    time.sleep(0.5)   # the index was just written: let the next layer's 1.5 s search get under way
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("arrange: interrupted after") and "--resume" in last
    report = json.loads((out / "report.json").read_text())
    stored = json.loads(index.read_text())["layers"]
    assert 2 <= len(report["layers"]) < 40 and sorted(r["name"] for r in report["layers"]) == sorted(stored)
    # the layers in flight came back with their solver's best answer, marked for --resume to redo
    assert 1 <= sum(e["interrupted"] for e in stored.values()) <= jobs
    with np.load(out / "packed.npz") as z:
        assert {k.rsplit("/", 1)[0] for k in z.files} == set(stored)


# --- local processes and Ray ------------------------------------------------------------------------


def test_jobs_give_the_same_answers_as_one_process():
    layers = _layers(6)
    one, _ = pack_layers(layers, solver="ffd", time_limit=2)
    two, packed = pack_layers(layers, solver="ffd", time_limit=2, jobs=2)
    assert _rows(two) == _rows(one)
    for name, r in one.results.items():
        assert np.array_equal(two.results[name].keep_mask, r.keep_mask)
        assert np.array_equal(packed[name].values, r.packed.values)


def test_worker_death_is_retried_once_then_reported(tmp_path, monkeypatch):
    layers = _layers(4)
    monkeypatch.delenv("ARRANGE_TEST_MARKER", raising=False)
    report, _ = pack_layers(layers, solver=_dies_on_wide, jobs=2, advise=False)
    assert [r.name for r in report.layers] == ["l0", "l2", "l3"]
    (name, error), = report.skipped
    assert name == "l1" and "worker process died (killed by SIGKILL), 2 attempts" in error
    monkeypatch.setenv("ARRANGE_TEST_MARKER", str(tmp_path / "died-once"))
    again, _ = pack_layers(layers, solver=_dies_on_wide, jobs=2, advise=False)
    assert [r.name for r in again.layers] == ["l0", "l1", "l2", "l3"] and again.skipped == []


def test_cli_jobs_and_progress_lines(tmp_path, capsys):
    path = _model_file(tmp_path)
    assert main(["pack", str(path), "--solver", "ffd", "--json", "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0].startswith("arrange: loading") and "packing 4 layers (2 processes)" in lines[1]
    assert sorted(l.split("]")[0] for l in lines[2:]) == [f"arrange: [{i}/4" for i in range(1, 5)]
    assert [r["name"] for r in json.loads(captured.out)["layers"]] == ["l0", "l1", "l2", "l3"]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the test solvers travel by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)   # workers inherit PYTHONPATH
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_answers_and_isolates_a_dead_worker(ray_local):
    layers = _layers(4)
    one, _ = pack_layers(layers, solver="ffd", time_limit=2)
    on_ray, packed = pack_layers(layers, solver="ffd", time_limit=2, executor="ray")
    assert _rows(on_ray) == _rows(one)
    for name, r in one.results.items():
        assert np.array_equal(packed[name].values, r.packed.values)
    died, _ = pack_layers(layers, solver=_dies_on_wide, executor="ray", advise=False)
    assert [r.name for r in died.layers] == ["l0", "l2", "l3"]
    assert died.skipped[0][0] == "l1" and "Ray task failed" in died.skipped[0][1]


# --- safetensors, memory-mapped and streamed -----------------------------------------------------


def _write_safetensors(path, tensors: dict, bf16=()):
    """A minimal safetensors writer (F32, F16, or BF16 by truncating float32) for the tests."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        if name in bf16:
            raw, kind = (np.ascontiguousarray(a, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes(), "BF16"
        else:
            a = np.ascontiguousarray(a)
            raw, kind = a.tobytes(), {"float32": "F32", "float16": "F16", "float64": "F64"}[str(a.dtype)]
        header[name] = {"dtype": kind, "shape": list(np.shape(a)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def test_safetensors_streamed_layer_by_layer_matches_the_eager_read(tmp_path):
    rng = np.random.default_rng(3)
    q = (rng.normal(size=(16, 12)) * (rng.random((16, 12)) < 0.3)).astype(np.float32)
    up = (rng.normal(size=(20, 12)) * (rng.random((20, 12)) < 0.3)).astype(np.float16)
    bf = np.array([[1.0, -2.5, 0.0, 3.140625]], np.float32)   # exact in bfloat16
    path = tmp_path / "m.safetensors"
    _write_safetensors(path, {"q.weight": q, "up.weight": up, "norm.weight": np.ones(12, np.float32),
                              "bf.weight": bf}, bf16={"bf.weight"})
    eager, lazy = load_model(path), load_model(path, stream=True)
    assert type(lazy.layers).__name__ == "LazyLayers" and len(lazy.layers) == 3
    assert [s.name for s in lazy.layers.shapes] == [l.name for l in eager.layers] == ["q", "up", "bf"]
    for a, b in zip(eager.layers, lazy.layers):
        assert a.weight.dtype == b.weight.dtype and np.array_equal(a.matrix, b.matrix)
    assert np.array_equal(lazy.layers[2].weight, bf)
    w = lazy.layers[0].weight        # a view of the file's pages, not a copy
    while not isinstance(w, np.memmap) and w.base is not None:
        w = w.base
    assert isinstance(w, np.memmap)
    one, _ = pack_layers(eager.layers, solver="ffd", advise=False)
    streamed, _ = pack_layers(lazy.layers, solver="ffd", advise=False, jobs=2)
    assert _rows(one) == _rows(streamed)


def test_corrupt_safetensors_header_is_one_line(tmp_path):
    path = tmp_path / "m.safetensors"
    _write_safetensors(path, {"w": np.ones((4, 4), np.float32)})
    data = path.read_bytes()
    path.write_bytes(data[:-8])   # truncated: the tensor no longer fits its byte range
    with pytest.raises(ArrangeError, match="does not fit its byte range"):
        load_model(path)


def test_compress_with_every_layer_failing_prints_each_fault(tmp_path, capsys):
    nan = np.ones((4, 4)); nan[0, 0] = np.nan
    path = tmp_path / "m.npz"
    np.savez(path, **{"a.weight": nan, "c.weight": np.ones((2, 3, 4))})
    assert main(["compress", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no prunable" not in err and "layer a: " in err and "layer c: " in err


def _best_answer_on_ctrl_c(problem, options):
    """Like a solver that catches Ctrl-C and returns its best answer so far: SIGINT arrives on layer l1."""
    if problem.shape[1] == 24:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            return Outcome(_singletons(problem, options).solution, interrupted=True)
    return _singletons(problem, options)


def test_ctrl_c_keeps_the_current_layers_best_answer_and_stops_the_run(tmp_path):
    store = LayerStore(str(tmp_path), {"run": 1})
    report, packed = pack_layers(_layers(), solver=_best_answer_on_ctrl_c, store=store, advise=False)
    assert report.interrupted and [r.name for r in report.layers] == ["l0", "l1"]   # l2, l3 never started
    assert set(packed) == {"l0", "l1"}
    index = json.loads((tmp_path / "layers" / "index.json").read_text())["layers"]
    assert index["l1"]["interrupted"] and not index["l0"]["interrupted"]
    resumed = LayerStore(str(tmp_path), {"run": 1}, resume=True)
    assert set(resumed.fingerprints()) == {"l0"}   # the cut layer is packed again on resume


def test_streamed_faulty_layer_is_reported_and_the_others_written(tmp_path, capsys):
    bad = np.ones((4, 6), np.float32)
    bad[2, 3] = np.nan
    good = np.eye(6, dtype=np.float32)
    path = tmp_path / "m.safetensors"
    _write_safetensors(path, {"bad.weight": bad, "good.weight": good})
    out = tmp_path / "out"
    assert main(["pack", str(path), "--solver", "ffd", "--out", str(out), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "arrange: layer bad: weight contains NaN (1 entries)" in err
    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["layers"]] == ["good"]
    with np.load(out / "masks.npz") as z:
        assert z.files == ["good.weight"] and np.array_equal(z["good.weight"], good != 0)


def test_run_killed_mid_way_resumes_to_the_uninterrupted_report(tmp_path):
    """SIGKILL (a crash: nothing gets to clean up) after 2 layers; --resume finishes with the same report."""
    path = tmp_path / "m.npz"
    rng = np.random.default_rng(2)
    np.savez(path, **{f"l{i}.weight": rng.normal(size=(6, 8)) * (rng.random((6, 8)) < 0.3) for i in range(6)})
    (tmp_path / "slow.py").write_text(SLOW_SOLVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def pack(out, *extra):
        return [sys.executable, "-m", "arrange.cli", "pack", str(path), "--solver", f"{tmp_path / 'slow.py'}:solve",
                "--out", str(out), "--quiet", *extra]

    proc = subprocess.Popen(pack(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = tmp_path / "cut" / "layers" / "index.json"
    deadline = time.time() + 60
    while time.time() < deadline and not (index.exists() and len(json.loads(index.read_text())["layers"]) >= 2):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "cut" / "report.json").exists()
    assert 2 <= len(json.loads(index.read_text())["layers"]) < 6
    subprocess.run(pack(tmp_path / "cut", "--resume"), env=env, check=True)
    subprocess.run(pack(tmp_path / "whole"), env=env, check=True)
    strip = lambda d: [{k: v for k, v in r.items() if k != "seconds"} for r in
                       json.loads((d / "report.json").read_text())["layers"]]
    assert strip(tmp_path / "cut") == strip(tmp_path / "whole")
    with np.load(tmp_path / "cut" / "masks.npz") as a, np.load(tmp_path / "whole" / "masks.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_masks_written_one_at_a_time_and_masks_pt_left_out_when_it_would_not_fit(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from arrange.io import OnDemand
    from arrange.report import write_masks

    made = []
    masks = OnDemand(["a.weight", "b.weight"], lambda k: made.append(k) or np.eye(3, dtype=bool))
    monkeypatch.setattr(executor, "available_memory", lambda: 20)   # 18 bytes of masks > half of 20
    paths = write_masks(masks, str(tmp_path))
    assert [Path(p).name for p in paths] == ["masks.npz"] and made == ["a.weight", "b.weight"]
    assert "masks.pt not written" in capsys.readouterr().err
    with np.load(tmp_path / "masks.npz") as z:
        assert z.files == ["a.weight", "b.weight"] and np.array_equal(z["b.weight"], np.eye(3, dtype=bool))
