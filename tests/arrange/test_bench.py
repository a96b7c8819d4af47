"""Tests for the solver benchmark: instance files, the generator, the runner and its tables."""

import csv
import math
import time

import numpy as np
import pytest

import solvers
from arrange import bench
from arrange.errors import ArrangeError
from solvers import Outcome

def one_per_column(problem, options):
    """Fake P1 solver: every nonempty column alone in its group."""
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    return Outcome(labels)


def identity_order(problem, options):
    """Fake P2 solver: the columns in their given order."""
    return Outcome(np.arange(problem.shape[1], dtype=np.int64))


def always_fails(problem, options):
    """Fake solver that raises with a two-line message."""
    raise RuntimeError("boom on purpose\nsecond line")


@pytest.fixture
def tiny_suite(tmp_path):
    """Two tiny P1 instances and one tiny P2 instance written as suite files."""
    rng = np.random.default_rng(7)
    suite = tmp_path / "suite"
    suite.mkdir()
    mask = rng.random((8, 16)) < 0.25
    mask[0, :2] = True
    bench.save_instance(suite / "p1-small-random-a.npz", mask,
                        {"name": "p1-small-random-a", "problem": "p1", "size": "small",
                         "family": "random", "params": {"alpha": 4, "gamma": 0.0}})
    W = np.where(rng.random((8, 16)) < 0.3, rng.random((8, 16)), 0).astype(np.float32)
    W[1, :3] = 0.5
    bench.save_instance(suite / "p1-small-block-b.npz", W,
                        {"name": "p1-small-block-b", "problem": "p1", "size": "small",
                         "family": "block", "params": {"alpha": 3, "gamma": 0.25}})
    bench.save_instance(suite / "p2-small-random-c.npz", rng.random((6, 8)),
                        {"name": "p2-small-random-c", "problem": "p2", "size": "small",
                         "family": "random", "params": {"k": 4, "n": 2}})
    return suite


def test_save_load_round_trip(tmp_path):
    """Bool masks and float matrices come back exactly, dtype included."""
    rng = np.random.default_rng(1)
    mask = rng.random((5, 13)) < 0.4
    W = np.where(mask, rng.standard_normal((5, 13)), 0).astype(np.float16)
    for i, M in enumerate((mask, W)):
        bench.save_instance(tmp_path / f"x{i}.npz", M, {"name": f"x{i}", "problem": "p1",
                                                      "size": "small", "family": "f",
                                                      "params": {"alpha": 2, "gamma": 0.0}})
        inst = bench.load_instance(tmp_path / f"x{i}.npz")
        assert inst.W.dtype == M.dtype and np.array_equal(inst.W, M)
        assert (inst.name, inst.problem, inst.params) == (f"x{i}", "p1", {"alpha": 2, "gamma": 0.0})


def test_generator_is_deterministic(load_benchmark):
    """Two builds of the small suite give identical matrices and metadata."""
    gen = load_benchmark("solvers/make_instances.py")
    a = gen.build_instances(("small",), digits=False)
    b = gen.build_instances(("small",), digits=False)
    assert len(a) == len(b) > 5
    for (Wa, ma), (Wb, mb) in zip(a, b):
        assert ma == mb and Wa.dtype == Wb.dtype and np.array_equal(Wa, Wb)


def test_stored_suite_matches_generator(load_benchmark):
    """The committed small and medium files are exactly what the generator makes now."""
    gen = load_benchmark("solvers/make_instances.py")
    for W, meta in gen.build_instances(("small", "medium"), digits=False):
        inst = bench.load_instance(bench.DEFAULT_SUITE / f"{meta['name']}.npz")
        assert inst.size == bench.size_class(W.shape[1]) == meta["size"]
        assert inst.params == meta["params"] and np.array_equal(inst.W, W)


def test_apex_instance_published_numbers():
    """The stored Apex instance reproduces Apex's unpermuted kept and rows bound."""
    inst = bench.load_instance(bench.DEFAULT_SUITE / "p2-small-apex-128x64-k4n2.npz")
    problem = inst.build()
    assert solvers.kept_magnitude(problem, np.arange(64)) == pytest.approx(2852.377, abs=1e-3)
    assert solvers.rows_bound(problem) == pytest.approx(3042.332, abs=1e-3)


def test_networkx_dsatur_triangle():
    """Three columns pairwise sharing a row need three colours; an isolated one adds none."""
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    colours, seconds = bench.networkx_dsatur(mask)
    assert colours == 3 and seconds >= 0


def _read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_runner_writes_consistent_tables(tiny_suite, tmp_path):
    """CSV and markdown carry the expected columns and the same numbers as direct solves."""
    out = tmp_path / "out"
    real = next(iter(solvers.combine.SOLVERS), None)
    requested = [one_per_column, identity_order] + ([real] if real else [])
    rows = bench.run_solver_bench(tiny_suite, out, solvers=requested, time_limit=1.0,
                                  warmup=False, progress=False)
    header, csv_rows = _read_csv(out / "results.csv")
    assert tuple(header) == bench.COLUMNS and len(csv_rows) == len(rows)
    for path in ("results.md", "summary.md", "gap_vs_time.png"):
        assert (out / path).stat().st_size > 0
    md = (out / "results.md").read_text()
    opts = solvers.Options(time_limit=1.0, seed=0)
    for row, crow in zip(rows, csv_rows):
        assert crow["instance"] == row["instance"] and crow["solver"] == row["solver"]
        if row["status"] in ("error", "unsupported", "skipped"):
            continue
        assert f'| {row["instance"]} |' in md
        assert float(crow["objective"]) == pytest.approx(float(row["objective"]))
        assert float(crow["gap"]) == pytest.approx(float(row["gap"]))
        inst = bench.load_instance(tiny_suite / f'{row["instance"]}.npz')
        problem = inst.build()
        if row["solver"] == "one_per_column":
            assert row["objective"] == problem.nonempty.size
            assert row["bound"] == solvers.combine_lower_bound(problem)
            assert row["gap"] == pytest.approx((row["objective"] - row["bound"]) / row["bound"])
        elif row["solver"] == "identity_order":
            res = solvers.group.solve(problem, identity_order, opts)
            assert row["objective"] == pytest.approx(res.kept) and row["efficacy"] == 0.0
            assert row["bound"] == pytest.approx(solvers.rows_bound(problem))
        elif row["solver"] == bench.NX_NAME:
            assert row["objective"] == bench.networkx_dsatur(problem.mask)[0]
            assert row["status"] == "no-capacity"
        else:
            res = solvers.combine.solve(problem, row["solver"], opts)
            assert row["bound"] == res.lower_bound and row["objective"] >= res.lower_bound
    assert bench.read_results(out / "results.csv") == rows
    p1 = [r for r in rows if r["problem"] == "p1"]
    assert {r["solver"] for r in p1} >= {"one_per_column", bench.NX_NAME}
    # Each callable ran on both problems; the mismatched one is an error row, not a crash.
    assert all(r["status"] == "error" for r in rows
               if (r["problem"], r["solver"]) in {("p1", "identity_order"), ("p2", "one_per_column")})


def test_runner_records_errors_and_continues(tiny_suite, tmp_path):
    """A raising solver yields one-line error rows; the other solver's rows still complete."""
    rows = bench.run_solver_bench(tiny_suite, tmp_path / "out", problems=("p1",),
                                  solvers=[always_fails, one_per_column], references=False,
                                  time_limit=1.0, warmup=False, progress=False)
    failed = [r for r in rows if r["solver"] == "always_fails"]
    good = [r for r in rows if r["solver"] == "one_per_column"]
    assert len(failed) == len(good) == 2
    assert all(r["status"] == "error" and r["message"] == "RuntimeError: boom on purpose"
               for r in failed)
    assert all(r["status"] in ("optimal", "feasible") for r in good)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "always_fails: error: RuntimeError: boom on purpose" in md


def test_networkx_budget_skips(tiny_suite, tmp_path):
    """Past the nodes x edges budget the networkx reference is a skipped row, not a run."""
    rows = bench.run_solver_bench(tiny_suite, tmp_path / "out", problems=("p1",),
                                  solvers=[one_per_column], time_limit=1.0, warmup=False,
                                  progress=False, nx_max_work=1)
    nx_rows = [r for r in rows if r["solver"] == bench.NX_NAME]
    assert len(nx_rows) == 2 and all(r["status"] == "skipped" and r["gap"] == "" for r in nx_rows)


def slow_one_per_column(problem, options):
    """Fake P1 solver that ignores its time limit."""
    time.sleep(0.7)
    return one_per_column(problem, options)


def test_overtime_is_flagged(tiny_suite, tmp_path):
    """A run far past the time limit keeps its answer and says so in its message."""
    rows = bench.run_solver_bench(tiny_suite, tmp_path / "out", problems=("p1",), sizes=("small",),
                                  solvers=[slow_one_per_column], references=False,
                                  time_limit=0.1, warmup=False, progress=False)
    assert len(rows) == 2
    assert all(r["status"] in ("optimal", "feasible") and "over the 0.1 s time limit" in r["message"]
               for r in rows)


def test_fewer_than_baseline(load_benchmark):
    """The greedy-cc comparison averages per-instance percentages on medium random gamma=0."""
    def row(inst, solver, groups, family="random", gamma=0.0):
        return {"problem": "p1", "size": "medium", "family": family, "gamma": gamma,
                "instance": inst, "solver": solver, "objective": groups, "gap": 0.0}
    rows = [row("a", "greedy-cc", 100), row("a", "x", 80), row("b", "greedy-cc", 50),
            row("b", "x", 50), row("c", "greedy-cc", 10, family="block"), row("c", "x", 1),
            row("d", "greedy-cc", 10, gamma=0.1), row("d", "x", 1)]
    assert load_benchmark("solvers/run.py").fewer_than_baseline(rows) == {"greedy-cc": 0.0, "x": 10.0}


def test_bad_choices_raise(tiny_suite, tmp_path):
    """Unknown solver names, sizes and problems, and a missing suite, are one-line errors."""
    with pytest.raises(ArrangeError, match="unknown solver 'nope'"):
        bench.run_solver_bench(tiny_suite, tmp_path, solvers=["nope"], progress=False)
    with pytest.raises(ArrangeError, match="unknown size 'huge'"):
        bench.list_instances(tiny_suite, sizes=("huge",))
    with pytest.raises(ArrangeError, match="unknown problem 'p3'"):
        bench.list_instances(tiny_suite, problems=("p3",))
    with pytest.raises(ArrangeError, match="not found"):
        bench.list_instances(tmp_path / "missing")


def test_no_default_suite_outside_the_repository(tiny_suite, monkeypatch):
    """Installed without the repository, no suite is assumed: one line asks for --suite; a given one works."""
    monkeypatch.setattr(bench, "DEFAULT_SUITE", None)
    with pytest.raises(ArrangeError, match="pass --suite DIR"):
        bench.list_instances()
    assert len(bench.list_instances(tiny_suite, sizes=("small",))) == 3


def test_benchmark_script_adds_its_targets(load_benchmark, tiny_suite, tmp_path):
    """benchmarks/solvers/run.py's summary is the library's plus the greedy-cc column (and Apex when run)."""
    run = load_benchmark("solvers/run.py")
    rows = bench.run_solver_bench(tiny_suite, tmp_path / "out", solvers=[one_per_column, identity_order],
                                  time_limit=0.5, warmup=False, progress=False, summary=run.summary)
    text = (tmp_path / "out" / "summary.md").read_text()
    plain = bench.format_summary(rows)
    assert "fewer groups vs greedy-cc (medium random, gamma=0)" in text
    assert "fewer groups vs greedy-cc" not in plain and "vs nx-dsatur (small, gamma=0)" in plain
    assert "The Apex instance" not in text      # the tiny suite has no Apex instance
    assert run.apex_section([dict(r, family="apex") for r in rows if r["problem"] == "p2"]).count("\n| ") == 2


def test_versus_networkx():
    """Speed-up is the geometric mean of time ratios; extra groups the mean difference."""
    def row(inst, solver, groups, seconds, gamma=0.0):
        return {"problem": "p1", "size": "large", "family": "random", "gamma": gamma,
                "instance": inst, "solver": solver, "objective": groups, "gap": 0.0,
                "seconds": seconds}
    rows = [row("a", "nx-dsatur", 10, 1.0), row("a", "x", 10, 0.01),
            row("b", "nx-dsatur", 20, 4.0), row("b", "x", 21, 0.004),
            row("c", "nx-dsatur", 20, 4.0, gamma=0.1), row("c", "x", 99, 4.0)]
    speed, extra = bench.versus_networkx(rows, "large")["x"]
    assert speed == pytest.approx(math.sqrt(100 * 1000)) and extra == pytest.approx(0.5)


def test_main_prints_summary(tiny_suite, tmp_path, capsys):
    """The command line runs the chosen problems and prints the summary tables."""
    out = tmp_path / "cli"
    assert bench.main(["--suite", str(tiny_suite), "--out", str(out), "--problems", "p2",
                       "--solvers", "identity",
                       "--time-limit", "0.5", "--quiet", "--no-warmup", "--no-references"]) == 0
    text = capsys.readouterr().out
    assert "P2 fixed-ratio grouping: summary" in text and "P1" not in text
    _, csv_rows = _read_csv(out / "results.csv")
    assert {r["problem"] for r in csv_rows} == {"p2"}


def test_from_csv_redoes_the_reports(tiny_suite, tmp_path, capsys):
    """Tables redone from a results.csv equal the ones the run wrote; a bad CSV is an error."""
    run = tmp_path / "run"
    bench.run_solver_bench(tiny_suite, run, solvers=[one_per_column, identity_order],
                           references=False, time_limit=0.5, warmup=False, progress=False)
    again = tmp_path / "again"
    assert bench.main(["--from-csv", str(run / "results.csv"), "--out", str(again)]) == 0
    for name in ("results.md", "summary.md"):
        assert (again / name).read_text() == (run / name).read_text()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ArrangeError, match="not a solver benchmark results.csv"):
        bench.read_results(tmp_path / "bad.csv")


def test_conflict_edges_match_the_dense_adjacency():
    """The row-clique construction gives exactly the pairs of columns sharing a row, never an N x N matrix."""
    from arrange.bench import conflict_edges, edges_at_least

    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((int(rng.integers(1, 10)), int(rng.integers(1, 30)))) < 0.3
        cols = np.flatnonzero(mask.any(axis=0))
        m = mask[:, cols].astype(int)
        u, v = np.nonzero(np.triu((m.T @ m) > 0, 1))
        a, b, nodes = conflict_edges(mask)
        assert nodes == cols.size
        assert np.array_equal(np.sort(u * nodes + v), np.sort(a * nodes + b))
        assert edges_at_least(mask) <= a.size
