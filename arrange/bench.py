"""The solver benchmark: every registered solver on every suite instance, with bounds.

Problem: measure how close each P1 / P2 solver (DESIGN.md section 3) gets to
its certified bound, and how fast, on an instance suite stored as files (``--suite
DIR``; in the source repository ``benchmarks/solvers/instances``, made by
``benchmarks/solvers/make_instances.py``, is the default).
Method: load each instance, run each selected solver through the checked front
door (:func:`solvers.combine.solve`, :func:`solvers.group.solve`) with a time
budget, record one row per (instance, solver); a solver that raises becomes an
error row and the rest continue. Outside reference points on P1: networkx's
DSatur on the conflict graph (no capacity) and the ``greedy-cc`` baseline.
Outputs: ``results.csv``, ``results.md``, ``summary.md`` and ``gap_vs_time.png``;
``summary`` (:func:`format_summary` by default) renders summary.md, so a
benchmark script adds its own columns and sections (``benchmarks/solvers/run.py``:
the issue targets and the Apex instance).
Reference: D. Brelaz, "New methods to color the vertices of a graph", CACM 22(4),
1979, doi:10.1145/359094.359101 (the DSatur reference point).

Instance file format (``.npz``, written by :func:`save_instance`): ``meta`` (a
JSON string: name, problem, size, family, params, how), ``shape`` (R, N),
``mask_bits`` (np.packbits of the row-major nonzero mask) and, only where
magnitudes matter, ``values`` (the nonzeros in row-major order, float16/32/64).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from solvers import (
    CombineProblem, GroupProblem, Options, ProblemError, combine, combine_lower_bound, group,
)
from solvers.registry import Solver, lookup

from .argtypes import positive_float
from .errors import ArrangeError
from .report import markdown_table

__all__ = [
    "PROBLEMS", "SIZES", "COLUMNS", "DEFAULT_SUITE", "NX_MAX_WORK", "Instance", "size_class",
    "save_instance", "load_instance", "list_instances", "conflict_edges", "edges_at_least", "networkx_dsatur",
    "run_solver_bench", "format_results", "format_summary", "SUMMARY_COLUMNS", "efficacy_column",
    "networkx_column", "paired", "mean", "has_gap", "fmt_num", "fmt_pct", "versus_networkx", "plot_gap_vs_time", "read_results", "write_reports", "build_parser",
    "main",
]

PROBLEMS = ("p1", "p2")
SIZES = ("small", "medium", "large")
COLUMNS = (
    "instance", "problem", "size", "family", "rows", "cols", "alpha", "gamma", "k", "n",
    "solver", "objective", "bound", "bound_kind", "gap", "efficacy", "status", "stopped_by", "seconds", "message",
)
_REPO_SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "solvers" / "instances"
#: the source repository's suite when arrange runs from a checkout, else None (an installed
#: package has no suite: pass one)
DEFAULT_SUITE = _REPO_SUITE if _REPO_SUITE.is_dir() else None

_TABLES = {"p1": combine.SOLVERS, "p2": group.SOLVERS}
_TITLES = {"p1": "P1 min-width combining", "p2": "P2 fixed-ratio grouping"}
NX_NAME = "nx-dsatur"
BASELINE = "greedy-cc"
# The portfolio may be marked exact (it can prove optima) but falls back to its
# heuristics on large instances by itself; other exact solvers are skipped there.
_PORTFOLIOS = frozenset({"auto"})
# networkx's DSatur rescans every coloured node's neighbours at each step, so it
# costs about nodes * edges Python operations (~0.2-0.7 us each): 1e8 is ~20-70 s.
NX_MAX_WORK = 1e8
# A run longer than this multiple of the time limit (plus 0.5 s) is flagged in its row.
OVERTIME = 1.5


def size_class(cols: int) -> str:
    """small: up to 64 columns, medium: up to 512, large: more."""
    return "small" if cols <= 64 else "medium" if cols <= 512 else "large"


@dataclass(frozen=True, eq=False)
class Instance:
    """One suite instance: a matrix (bool mask or magnitudes) and its problem parameters."""

    name: str
    problem: str   # "p1" or "p2"
    size: str      # one of SIZES
    family: str
    W: np.ndarray
    params: dict   # {"alpha", "gamma"} for p1, {"k", "n"} for p2

    def build(self):
        """The validated solver problem for this instance."""
        if self.problem == "p1":
            return CombineProblem.from_weights(self.W, self.params["alpha"], self.params["gamma"],
                                               name=self.name)
        return GroupProblem.from_weights(self.W, self.params["k"], self.params["n"], name=self.name)


def save_instance(path, W: np.ndarray, meta: dict) -> None:
    """Write one instance: packed mask, nonzero values only if W is not bool."""
    for key in ("name", "problem", "size", "family", "params"):
        if key not in meta:
            raise ArrangeError(f"instance meta lacks {key!r}; needs name, problem, size, family, params")
    W = np.asarray(W)
    mask = W if W.dtype == bool else W != 0
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True)),
              "shape": np.array(W.shape, dtype=np.int64),
              "mask_bits": np.packbits(mask, axis=None)}
    if W.dtype != bool:
        arrays["values"] = W[mask]
    np.savez_compressed(path, **arrays)


def load_instance(path) -> Instance:
    """Read an instance written by :func:`save_instance`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            R, N = (int(v) for v in z["shape"])
            mask = np.unpackbits(z["mask_bits"], count=R * N).reshape(R, N).astype(bool)
            values = z["values"] if "values" in z.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise ArrangeError(f"{path}: not a benchmark instance ({exc})") from None
    if values is None:
        W = mask
    else:
        W = np.zeros((R, N), dtype=values.dtype)
        W[mask] = values
    return Instance(meta["name"], meta["problem"], meta["size"], meta["family"], W, meta["params"])


def list_instances(suite_dir=None, problems=PROBLEMS, sizes=("small", "medium")) -> list[Instance]:
    """The suite's instances of the chosen problems and sizes, sorted by file name."""
    _check_choices(problems, PROBLEMS, "problem")
    _check_choices(sizes, SIZES, "size")
    if suite_dir is None and DEFAULT_SUITE is None:
        raise ArrangeError("no instance suite here (an installed package ships none); pass --suite DIR, "
                           "a folder of instance files made by benchmarks/solvers/make_instances.py")
    suite = Path(suite_dir) if suite_dir is not None else DEFAULT_SUITE
    if not suite.is_dir():
        raise ArrangeError(f"instance folder {suite} not found; make it with "
                           "benchmarks/solvers/make_instances.py or pass --suite")
    out = []
    for path in sorted(suite.glob("*.npz")):
        # The file name starts with "<problem>-<size>-", so most files are never opened.
        parts = path.stem.split("-")
        if len(parts) > 2 and (parts[0] not in problems or parts[1] not in sizes):
            continue
        inst = load_instance(path)
        if inst.problem in problems and inst.size in sizes:
            out.append(inst)
    return out


def _check_choices(values, allowed, what: str) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ArrangeError(f"unknown {what} {bad[0]!r}; allowed: {', '.join(allowed)}")


def conflict_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Edges (u, v), u < v, of the conflict graph over the nonempty columns, and its node count.

    Built from each row's clique of columns (no N x N matrix): memory follows
    sum_r nnz_r^2, so check :func:`edges_at_least` against a budget first.
    """
    cols = np.flatnonzero(mask.any(axis=0))
    m = mask[:, cols]
    codes = []
    for r in range(m.shape[0]):
        members = np.flatnonzero(m[r])
        if members.size > 1:
            i, j = np.triu_indices(members.size, 1)
            codes.append(members[i].astype(np.int64) * cols.size + members[j])
    codes = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    return codes // cols.size, codes % cols.size, cols.size


def edges_at_least(mask: np.ndarray) -> int:
    """A lower bound on the conflict graph's edges: the largest row's clique."""
    nnz = mask.sum(axis=1).astype(np.int64)
    return int((nnz * (nnz - 1) // 2).max(initial=0))


def networkx_dsatur(mask: np.ndarray, edges: tuple | None = None) -> tuple[int, float]:
    """Colours and seconds of networkx's DSatur on the column conflict graph (no capacity).

    The graph (columns sharing a nonzero row are adjacent; ``edges`` is
    :func:`conflict_edges`'s answer when the caller has it) is built untimed;
    only ``greedy_color`` is timed.
    """
    import networkx as nx

    u, v, nodes = edges if edges is not None else conflict_edges(mask)
    graph = nx.Graph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from(zip(u.tolist(), v.tolist()))
    start = time.perf_counter()
    colouring = nx.greedy_color(graph, strategy="DSATUR")
    seconds = time.perf_counter() - start
    return (max(colouring.values()) + 1 if colouring else 0), seconds


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _base_row(inst: Instance, solver: str) -> dict:
    R, N = inst.W.shape
    row = dict.fromkeys(COLUMNS, "")
    row.update(instance=inst.name, problem=inst.problem, size=inst.size, family=inst.family,
               rows=R, cols=N, solver=solver, **inst.params)
    return row


def _run_solver(inst: Instance, problem, spec: Solver, options: Options) -> dict:
    """One (instance, solver) row; exceptions become error rows, never escape (but Ctrl-C)."""
    row = _base_row(inst, spec.name)
    reason = spec.unsupported(problem)
    if reason:  # a solver declining an instance outside its scope (say matching with k > 2)
        row.update(status="unsupported", seconds=0.0, message=reason)
        return row
    start = time.perf_counter()
    try:
        res = (combine if inst.problem == "p1" else group).solve(problem, spec, options)
        result = res.as_row()
        row.update({k: result[k] for k in ("objective", "bound", "bound_kind", "gap", "status", "seconds",
                                           "stopped_by", "efficacy") if k in result})
        if inst.problem == "p1":  # group counts and their bounds are integers
            row.update(objective=res.num_groups, bound=res.lower_bound)
        if res.seconds > OVERTIME * options.time_limit + 0.5:
            row["message"] = f"ran {res.seconds:.1f} s, over the {options.time_limit:g} s time limit"
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the benchmark records any failure and goes on
        row.update(status="error", seconds=time.perf_counter() - start,
                   message=f"{type(exc).__name__}: {_one_line(exc)}")
    return row


def _run_networkx(inst: Instance, problem: CombineProblem, max_work: float) -> dict:
    row = _base_row(inst, NX_NAME)
    work = int(problem.nonempty.size) * edges_at_least(problem.mask)
    if work > max_work:
        row.update(status="skipped", message=f"nodes x edges >= {work:.2g}, "
                   f"over the networkx budget {max_work:.2g}")
        return row
    edges = conflict_edges(problem.mask)
    u, _, nodes = edges
    if nodes * u.size > max_work:
        row.update(status="skipped", message=f"nodes x edges = {nodes * u.size:.2g} over the "
                   f"networkx budget {max_work:.2g}")
        return row
    colours, seconds = networkx_dsatur(problem.mask, edges)
    bound = combine_lower_bound(problem)
    row.update(objective=colours, bound=bound, gap=(colours - bound) / bound,
               status="no-capacity", seconds=seconds)
    return row


def _skip_reason(spec: Solver, size: str) -> str | None:
    if size == "large" and spec.exact and spec.name not in _PORTFOLIOS:
        return "exact solver skipped on large instances"
    return None


def _select_solvers(requested, problems, references: bool) -> dict[str, list[Solver]]:
    """Per problem, the solvers to run: all registered, or the requested names / callables.

    A name registered for only one problem runs on that one; a callable runs on all.
    """
    chosen = {}
    if requested is not None:
        names = [s for s in requested if isinstance(s, str)]
        known = set().union(*(_TABLES[p] for p in problems))
        for name in names:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "(none registered yet)"
                raise ArrangeError(f"unknown solver {name!r}; allowed: {allowed}")
    for p in problems:
        table = _TABLES[p]
        if requested is None:
            specs = list(table.values())
        else:
            specs = [lookup(table, s, p) for s in requested if not isinstance(s, str) or s in table]
        if references and p == "p1" and BASELINE in table and all(s.name != BASELINE for s in specs):
            specs.insert(0, table[BASELINE])
        chosen[p] = specs
    return chosen


def _warm_up(chosen: dict[str, list[Solver]], time_limit: float) -> None:
    """Run each solver once on a tiny instance so Numba compilation is not timed."""
    rng = np.random.default_rng(0)
    tiny = {"p1": CombineProblem.from_weights(rng.random((8, 16)) < 0.3, 4, 0.0),
            "p2": GroupProblem.from_weights(rng.random((8, 8)), 4, 2)}
    solve = {"p1": combine.solve, "p2": group.solve}
    options = Options(time_limit=min(time_limit, 0.5), seed=0)
    for p, specs in chosen.items():
        for spec in specs:
            try:
                solve[p](tiny[p], spec, options)
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - failures are recorded in the timed run
                pass


def run_solver_bench(suite_dir=None, out_dir="out/bench-solvers", problems=PROBLEMS,
                     sizes=("small", "medium"), solvers=None, time_limit: float = 2.0,
                     seed: int = 0, references: bool = True, warmup: bool = True,
                     progress: bool = True, nx_max_work: float = NX_MAX_WORK, summary=None) -> list[dict]:
    """Run the solver benchmark and write its tables and plot into ``out_dir``.

    Parameters
    ----------
    suite_dir : folder of instance ``.npz`` files (default: the repository's suite).
    out_dir : where results.csv, results.md, summary.md and gap_vs_time.png go.
    problems, sizes : which instances to run (subsets of PROBLEMS and SIZES).
    solvers : None for every registered solver, else names and/or callables
        (a callable returns a :class:`solvers.Outcome`; it runs on every problem).
    time_limit, seed : passed to every solver through :class:`solvers.Options`.
    references : add the networkx DSatur and greedy-cc reference points on P1.
    warmup : run each solver once on a tiny instance first (Numba compilation).
    nx_max_work : skip the networkx reference where nodes * edges of the conflict
        graph exceeds this (its DSatur is quadratic; 2048 dense columns take minutes).
    summary : rows -> the text of summary.md (default :func:`format_summary`).

    Returns
    -------
    The result rows, one dict per (instance, solver) with the keys in COLUMNS.
    ``results.csv`` is written row by row, so an interrupted run keeps its rows.

    Raises
    ------
    ArrangeError on unknown problems, sizes or solver names, or a missing suite.
    """
    problems, sizes = tuple(problems), tuple(sizes)
    _check_choices(problems, PROBLEMS, "problem")
    _check_choices(sizes, SIZES, "size")
    try:
        options = Options(time_limit=time_limit, seed=seed)
    except ProblemError as exc:
        raise ArrangeError(str(exc)) from None
    chosen = _select_solvers(solvers, problems, references)
    instances = list_instances(suite_dir, problems, sizes)
    if not instances:
        raise ArrangeError(f"no instances of problems {problems} and sizes {sizes} in the suite")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if warmup:
        _warm_up(chosen, time_limit)
    tasks = sum(len(chosen[i.problem]) + (references and i.problem == "p1") for i in instances)
    rows: list[dict] = []
    try:
        _run_all(instances, chosen, options, references, nx_max_work, out / "results.csv",
                 _progress(tasks, progress), rows)
    finally:
        # Also after Ctrl-C: the tables and plot show the rows finished so far.
        write_reports(rows, out, summary)
    return rows


def write_reports(rows: list[dict], out_dir, summary=None) -> None:
    """results.md, summary.md (``summary(rows)``, default :func:`format_summary`) and gap_vs_time.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(format_results(rows))
    (out / "summary.md").write_text((summary or format_summary)(rows))
    plot_gap_vs_time(rows, out / "gap_vs_time.png")


def _run_all(instances, chosen, options, references, nx_max_work, csv_path, bar, rows) -> None:
    """Append one row per (instance, solver) to ``rows`` and to the CSV as each finishes."""
    with open(csv_path, "w", newline="") as fh, bar:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()

        def record(row):
            rows.append(row)
            writer.writerow({k: _csv_value(row[k]) for k in COLUMNS})
            fh.flush()
            bar.update(1)

        for inst in instances:
            problem = inst.build()
            if references and inst.problem == "p1":
                bar.set_description(f"{inst.name} {NX_NAME}")
                record(_run_networkx(inst, problem, nx_max_work))
            for spec in chosen[inst.problem]:
                bar.set_description(f"{inst.name} {spec.name}")
                reason = _skip_reason(spec, inst.size)
                if reason:
                    row = _base_row(inst, spec.name)
                    row.update(status="skipped", message=reason)
                    record(row)
                else:
                    record(_run_solver(inst, problem, spec, options))


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass

    def set_description(self, text):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="run", leave=False, file=sys.stderr)


def _csv_value(value):
    return repr(value) if isinstance(value, float) else value


_INT_COLUMNS = ("rows", "cols", "alpha", "k", "n")
_FLOAT_COLUMNS = ("gamma", "bound", "gap", "efficacy", "seconds")


def read_results(path) -> list[dict]:
    """Rows of a results.csv with their numbers restored, to redo tables without rerunning."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
    except OSError as exc:
        raise ArrangeError(f"{path}: cannot read ({exc.strerror})") from None
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ArrangeError(f"{path}: not a solver benchmark results.csv (columns {reader.fieldnames})")
    for row in rows:
        for key in _INT_COLUMNS + _FLOAT_COLUMNS + ("objective",):
            if row[key] != "":
                row[key] = int(row[key]) if key in _INT_COLUMNS else float(row[key])
        if row["problem"] == "p1":  # group counts and their bounds
            for key in ("objective", "bound"):
                if row[key] != "":
                    row[key] = int(row[key])
    return rows


# ---------------------------------------------------------------- markdown tables

def fmt_num(value, digits: int = 3) -> str:
    if value == "" or value is None:
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}f}"


def fmt_pct(value) -> str:
    return "" if value == "" or value is None else f"{100 * value:.1f}%"


def format_results(rows: list[dict]) -> str:
    """One markdown table per problem: objective, bound, gap, status, seconds per row."""
    parts = []
    for p in PROBLEMS:
        mine = [r for r in rows if r["problem"] == p]
        if not mine:
            continue
        if p == "p1":
            header = ["instance", "R x N", "alpha", "gamma", "solver", "groups", "bound", "gap",
                      "status", "seconds"]
            body = [[r["instance"], f'{r["rows"]}x{r["cols"]}', str(r["alpha"]), str(r["gamma"]),
                     r["solver"], fmt_num(r["objective"]), fmt_num(r["bound"]), fmt_pct(r["gap"]),
                     r["status"], fmt_num(r["seconds"])] for r in mine]
        else:
            header = ["instance", "R x N", "k", "n", "solver", "kept", "bound", "gap", "efficacy",
                      "status", "seconds"]
            body = [[r["instance"], f'{r["rows"]}x{r["cols"]}', str(r["k"]), str(r["n"]), r["solver"],
                     fmt_num(r["objective"]), fmt_num(r["bound"]), fmt_pct(r["gap"]),
                     fmt_pct(r["efficacy"]), r["status"], fmt_num(r["seconds"])] for r in mine]
        parts.append(f"## {_TITLES[p]}\n\n" + markdown_table(header, body) + "\n")
        notes = [f'- {r["instance"]} / {r["solver"]}: {r["status"]}: {r["message"]}'
                 for r in mine if r["message"]]
        if notes:
            parts.append("\n".join(notes) + "\n")
    return "\n".join(parts)


def has_gap(row: dict) -> bool:
    return row["gap"] != ""


def mean(values) -> float | str:
    values = list(values)
    return sum(values) / len(values) if values else ""


def paired(rows: list[dict], reference: str, keep) -> dict[str, list[tuple[dict, dict]]]:
    """Per solver, (reference row, solver row) pairs on the P1 instances ``keep`` accepts."""
    sel = [r for r in rows if r["problem"] == "p1" and keep(r) and has_gap(r)]
    ref = {r["instance"]: r for r in sel if r["solver"] == reference}
    out: dict[str, list[tuple[dict, dict]]] = {}
    for r in sel:
        if r["instance"] in ref:
            out.setdefault(r["solver"], []).append((ref[r["instance"]], r))
    return out


def versus_networkx(rows: list[dict], size: str) -> dict[str, tuple[float, float]]:
    """Per solver on gamma = 0 instances of ``size``: (geometric-mean speed-up over
    nx-dsatur, mean groups minus nx-dsatur colours)."""
    pairs = paired(rows, NX_NAME, lambda r: r["size"] == size and r["gamma"] == 0)
    # Clamp so a run too fast for the clock does not divide by zero.
    return {s: (math.exp(mean(math.log(max(b["seconds"], 1e-6) / max(r["seconds"], 1e-6))
                               for b, r in v)),
                mean(r["objective"] - b["objective"] for b, r in v))
            for s, v in pairs.items() if s != NX_NAME}


def _stats_cells(cell: list[dict]) -> list[str]:
    """Mean gap (with the count of runs without one), mean seconds, proven optimal / runs."""
    ok = [r for r in cell if has_gap(r)]
    failed = len(cell) - len(ok)
    return [fmt_pct(mean(r["gap"] for r in ok)) + (f" ({failed} n/a)" if failed else ""),
            fmt_num(mean(r["seconds"] for r in ok)),
            f'{sum(r["status"] == "optimal" for r in ok)}/{len(cell)}']


def efficacy_column(rows: list[dict], sizes: list[str]) -> tuple[str, dict]:
    """P2 summary column: each solver's mean efficacy."""
    return "mean efficacy", {name: fmt_pct(mean(r["efficacy"] for r in rows if r["solver"] == name and has_gap(r)))
                             for name in dict.fromkeys(r["solver"] for r in rows)}


def networkx_column(rows: list[dict], sizes: list[str]) -> tuple[str, dict]:
    """P1 summary column: speed-up over nx-dsatur and extra groups, on the largest size class run."""
    nx_size = sizes[-1] if sizes else "medium"
    return (f"vs nx-dsatur ({nx_size}, gamma=0): speed-up, extra groups",
            {s: f"{speed:.3g}x, {extra:+.1f}" for s, (speed, extra) in versus_networkx(rows, nx_size).items()})


#: per problem, the columns after the size classes: column(rows of the problem, sizes) -> (header, solver -> cell)
SUMMARY_COLUMNS = {"p1": (networkx_column,), "p2": (efficacy_column,)}


def format_summary(rows: list[dict], columns: dict | None = None, sections: dict | None = None) -> str:
    """Per problem: mean gap, mean seconds and proven optima per size class and solver.

    P1 size columns cover gamma = 0 (the exact bound's setting); gamma > 0 runs,
    whose bound is weak, get their own columns over all sizes.  ``columns``
    (default :data:`SUMMARY_COLUMNS`) adds columns per problem; ``sections``
    maps a problem to functions of its rows returning markdown (or "") placed
    after its table.
    """
    columns = SUMMARY_COLUMNS if columns is None else columns
    parts = []
    for p in PROBLEMS:
        mine = [r for r in rows if r["problem"] == p]
        if not mine:
            continue
        main = [r for r in mine if p == "p2" or r["gamma"] == 0]
        rest = [r for r in mine if p == "p1" and r["gamma"] != 0]
        sizes = [s for s in SIZES if any(r["size"] == s for r in main)]
        tag = " (gamma=0)" if p == "p1" else ""
        header = ["solver"]
        for s in sizes:
            header += [f"{s}{tag} mean gap", f"{s} mean s", f"{s} optimal"]
        if rest:
            header += ["gamma>0 mean gap", "gamma>0 mean s", "gamma>0 optimal"]
        extra = [column(mine, sizes) for column in columns.get(p, ())]
        header += [h for h, _ in extra]
        body = []
        for name in dict.fromkeys(r["solver"] for r in mine):
            cells = [name]
            for s in sizes:
                cells += _stats_cells([r for r in main if r["solver"] == name and r["size"] == s])
            if rest:
                cells += _stats_cells([r for r in rest if r["solver"] == name])
            body.append(cells + [by_solver.get(name, "") for _, by_solver in extra])
        note = ("\n`nx-dsatur` colours the conflict graph with no capacity (alpha ignored), so its "
                "gap is to the capacitated bound and only its time is directly comparable.\n"
                if p == "p1" else "")
        parts.append(f"## {_TITLES[p]}: summary\n\n" + markdown_table(header, body) + "\n" + note)
        parts += [text for text in (section(mine) for section in (sections or {}).get(p, ())) if text]
    return "\n".join(parts)


def plot_gap_vs_time(rows: list[dict], path) -> bool:
    """Scatter gap vs seconds (log) per solver, one panel per problem; False without matplotlib.

    Small markers are single runs (circle small, square medium, triangle large);
    the outlined diamond is the solver's mean.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    present = [p for p in PROBLEMS if any(r["problem"] == p and has_gap(r) for r in rows)]
    if not present:
        return False
    fig, axes = plt.subplots(1, len(present), figsize=(6 * len(present), 4.5), squeeze=False)
    for ax, p in zip(axes[0], present):
        ok = [r for r in rows if r["problem"] == p and has_gap(r)]
        for i, name in enumerate(dict.fromkeys(r["solver"] for r in ok)):
            colour = f"C{i % 10}"
            mine = [r for r in ok if r["solver"] == name]
            for size, marker in zip(SIZES, "os^"):
                at = [r for r in mine if r["size"] == size]
                # Zero-time rows would vanish on a log axis.
                ax.scatter([max(r["seconds"], 1e-5) for r in at], [100 * r["gap"] for r in at],
                           color=colour, marker=marker, alpha=0.5, s=16)
            ax.scatter([max(mean(r["seconds"] for r in mine), 1e-5)],
                       [100 * mean(r["gap"] for r in mine)], color=colour, marker="D", s=70,
                       edgecolors="black", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("seconds")
        ax.set_ylabel("gap to bound (%)")
        ax.set_title(f"{_TITLES[p]} (diamond: mean; o small, s medium, ^ large)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- command line

def _list_arg(allowed):
    def parse(text: str):
        values = [v for v in text.split(",") if v]
        bad = [v for v in values if allowed and v not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(allowed)}, "
                                             f"got {text!r}")
        return values
    return parse


def build_parser(prog: str = "arrange bench solvers") -> argparse.ArgumentParser:
    """The benchmark's options, shared by the CLI and benchmarks/solvers/run.py."""
    p = argparse.ArgumentParser(prog=prog, description="Run every solver on the instance suite "
                                "and write results.csv, results.md, summary.md, gap_vs_time.png.")
    p.add_argument("--suite", metavar="DIR", default=None,
                   help="instance folder (default: the source repository's, when arrange runs from one)")
    p.add_argument("--out", metavar="DIR", default="out/bench-solvers", help="output folder")
    p.add_argument("--problems", type=_list_arg(PROBLEMS), default=list(PROBLEMS), help="p1,p2")
    p.add_argument("--sizes", type=_list_arg(SIZES), default=["small", "medium"],
                   help="comma-separated: small,medium,large (default small,medium)")
    p.add_argument("--solvers", type=_list_arg(()), default=None,
                   help="comma-separated solver names (default: all registered)")
    p.add_argument("--time-limit", type=positive_float, default=2.0, help="seconds per solver per instance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-references", action="store_true", help="skip nx-dsatur and greedy-cc")
    p.add_argument("--no-warmup", action="store_true", help="time Numba compilation too")
    p.add_argument("--nx-max-work", type=positive_float, default=NX_MAX_WORK,
                   help="skip nx-dsatur where conflict-graph nodes x edges exceeds this "
                   "(default %(default)g, about a minute)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--from-csv", metavar="CSV", help="run nothing: redo the tables and plot from "
                   "a results.csv into --out")
    return p


def main(argv=None, prog: str = "arrange bench solvers", summary=None) -> int:
    """Parse options, run the benchmark, print the summary; ArrangeError on bad input.

    ``summary`` renders summary.md (default :func:`format_summary`).
    """
    args = build_parser(prog).parse_args(argv)
    out = Path(args.out)
    if args.from_csv:
        write_reports(read_results(args.from_csv), out, summary)
    else:
        run_solver_bench(args.suite, args.out, problems=args.problems, sizes=args.sizes,
                         solvers=args.solvers, time_limit=args.time_limit, seed=args.seed,
                         references=not args.no_references, warmup=not args.no_warmup,
                         progress=not args.quiet, nx_max_work=args.nx_max_work, summary=summary)
    print((out / "summary.md").read_text())
    print(f"wrote {out}: results.md, summary.md, gap_vs_time.png"
          + ("" if args.from_csv else ", results.csv"))
    return 0
