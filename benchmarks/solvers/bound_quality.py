"""Bound quality: how close each bound is to proven optima, and the gaps ``auto`` reports.

Run: ``./run python benchmarks/solvers/bound_quality.py [--time-limit 10] [--exact-limit 5]
[--sizes small] [--before /path/to/old/checkout] [--skip-gaps] [--skip-quality]``

Three tables, printed as markdown:

1. P1 bound / optimum per bound type on every suite instance (``--sizes``, from
   ``benchmarks/solvers/instances``) where CP-SAT proves the fewest groups
   within ``--exact-limit``: the cheap bounds (:func:`solvers.bounds.combine_lower_bound`),
   the set-covering LP bound (:mod:`solvers.combine.lp_bound`, any gamma, on
   ``--time-limit``), CP-SAT's own bound, and what ``auto`` reports.
2. P2 on the suite's k > 2 instances: the rows bound and the set-partitioning
   LP bound (:mod:`solvers.group.lp_bound`) against the best kept magnitude
   ``auto`` finds, and the gap ``auto`` reports.
3. The mean gap ``auto`` reports at ``--time-limit`` per suite and gamma: the
   medium random P1 instances at gamma = 0 and 0.1 (the mask of each, with
   deterministic |N(0, 1)| magnitudes where gamma > 0), and the P1 layers of
   1024-4096 columns at gamma = 0 (the suite's, plus random 256 x 1024 and
   128 x 2048 at density 0.1).  ``--before DIR`` runs the same table with the
   code in DIR (for example a checkout of the commit before these bounds) in
   a subprocess, for the before / after columns.  "LP gap floor": the
   restricted master's value is at least the LP optimum, so with the answer
   found no LP bound can report a smaller gap than groups / ceil(master) - 1.

The default run (small sizes, 10 s) takes about five minutes on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GAMMAS = (0.0, 0.1)


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _with_gamma(W: np.ndarray, gamma: float, name: str) -> np.ndarray:
    """W itself, or for gamma > 0 a bool mask given deterministic |N(0,1)| magnitudes (pruning keeps the largest)."""
    if gamma == 0 or W.dtype != bool:
        return W
    import zlib

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.where(W, np.abs(rng.standard_normal(W.shape)) + 1e-3, 0.0)


def gap_instances():
    """(suite, name, W, alpha, gamma) for table 3 (the same list in every checkout)."""
    from arrange.bench import list_instances

    out = []
    for inst in list_instances(HERE / "instances", problems=("p1",), sizes=("medium",)):
        if inst.family == "random":
            for gamma in GAMMAS:
                out.append(("medium random", inst.name, _with_gamma(inst.W, gamma, inst.name),
                            inst.params["alpha"], gamma))
    for inst in list_instances(HERE / "instances", problems=("p1",), sizes=("large",)):
        if 1024 <= inst.W.shape[1] <= 4096:
            out.append(("1024-4096 columns", inst.name, inst.W != 0, inst.params["alpha"], 0.0))
    for R, N in ((256, 1024), (128, 2048)):
        rng = np.random.default_rng(R * N)
        out.append(("1024-4096 columns", f"random-{R}x{N}-d10", rng.random((R, N)) < 0.1, 8, 0.0))
    return out


def auto_gaps(time_limit: float) -> list[dict]:
    """``auto`` on every table-3 instance: groups, bound, its kind and the gap."""
    from solvers import CombineProblem, Options
    from solvers.combine import solve

    rows = []
    for suite, name, W, alpha, gamma in gap_instances():
        r = solve(CombineProblem.from_weights(W, alpha, gamma), "auto", Options(time_limit=time_limit))
        lp = r.stats.get("lp_bound") or {}
        rows.append({"suite": suite, "name": name, "gamma": gamma, "groups": r.num_groups,
                     "bound": r.lower_bound, "kind": r.bound_kind, "gap": r.gap, "seconds": r.seconds,
                     "master": lp.get("master")})
    return rows


def before_gaps(directory: str, time_limit: float) -> list[dict]:
    """:func:`auto_gaps` run with the code in ``directory`` (this script, that checkout's solvers)."""
    env = dict(os.environ, PYTHONPATH=str(Path(directory).resolve()))
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bound_quality as b; "
            f"print(json.dumps(b.auto_gaps({time_limit!r})))")
    # cwd: python -c puts the working directory first on sys.path, ahead of PYTHONPATH.
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=directory, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def p1_quality(sizes, time_limit: float, exact_limit: float) -> str:
    from arrange.bench import list_instances
    from solvers import Options
    from solvers.bounds import combine_lower_bound
    from solvers.combine import solve
    from solvers.combine.lp_bound import lp_bound

    rows, ratios = [], {"cheap": [], "lp": [], "cpsat": [], "auto": []}
    for inst in list_instances(HERE / "instances", problems=("p1",), sizes=sizes):
        problem = inst.build()
        exact = solve(problem, "cpsat", Options(time_limit=exact_limit))
        if not exact.stats.get("groups_optimal"):
            continue
        opt = exact.num_groups
        lp, stats = lp_bound(problem, exact.labels, Options(time_limit=time_limit))
        auto = solve(problem, "auto", Options(time_limit=time_limit))
        values = {"cheap": combine_lower_bound(problem), "lp": lp, "cpsat": exact.lower_bound,
                  "auto": auto.lower_bound}
        for key, value in values.items():
            ratios[key].append(value / opt)
        rows.append([inst.name, problem.gamma, opt, *(f"{values[k]} ({values[k] / opt:.3f})" for k in ratios),
                     "yes" if stats["converged"] else "no"])
    rows.append(["mean bound / optimum", "", "", *(f"{_mean(v):.3f}" for v in ratios.values()), ""])
    return _table(["instance", "gamma", "optimum", "cheap", "lp", "cpsat", "auto", "lp converged"], rows)


def p2_quality(sizes, time_limit: float) -> str:
    from arrange.bench import list_instances
    from solvers import Options
    from solvers.budget import Budget
    from solvers.group import solve
    from solvers.group.lp_bound import lp_bound

    rows = []
    for inst in list_instances(HERE / "instances", problems=("p2",), sizes=sizes):
        problem = inst.build()
        if problem.k == 2:
            continue
        auto = solve(problem, "auto", Options(time_limit=time_limit))
        lp, stats = lp_bound(problem, auto.order, Budget.start(time_limit))
        best = auto.kept
        rows.append([inst.name, f"{best:.3f}", f"{auto.rows_bound:.3f} ({auto.rows_bound / best:.4f})",
                     "-" if lp is None else f"{lp:.3f} ({lp / best:.4f})",
                     "yes" if stats["converged"] else stats.get("skipped", "no"),
                     auto.bound_kind, f"{100 * auto.gap:.2f}%", f"{100 * auto.efficacy:.2f}%"])
    return _table(["instance", "kept (auto)", "rows bound (/kept)", "lp bound (/kept)", "lp converged",
                   "auto bound", "auto gap", "efficacy"], rows)


def gap_table(after: list[dict], before: list[dict] | None) -> str:
    rows = []
    for r in after:
        b = next((x for x in before or [] if x["name"] == r["name"] and x["gamma"] == r["gamma"]), None)
        # The restricted master's value is at least the LP's, so no LP bound exceeds its ceiling:
        # with this answer, an LP bound cannot report a gap below groups / ceil(master) - 1.
        floor = "-" if not r.get("master") else f"{100 * max(0.0, r['groups'] / math.ceil(r['master'] - 1e-6) - 1):.1f}%"
        rows.append([r["suite"], r["name"], r["gamma"], r["groups"], f"{r['bound']} ({r['kind']})",
                     f"{100 * r['gap']:.1f}%", floor, "-" if b is None else f"{b['bound']} ({b['kind']})",
                     "-" if b is None else f"{100 * b['gap']:.1f}%"])
    for suite in dict.fromkeys(r["suite"] for r in after):
        for gamma in dict.fromkeys(r["gamma"] for r in after if r["suite"] == suite):
            cell = [r for r in after if r["suite"] == suite and r["gamma"] == gamma]
            old = [x for x in before or [] if x["suite"] == suite and x["gamma"] == gamma]
            rows.append([f"**mean {suite}**", "", gamma, "", "", f"**{100 * _mean(r['gap'] for r in cell):.1f}%**",
                         "", "", f"**{100 * _mean(x['gap'] for x in old):.1f}%**" if old else "-"])
    return _table(["suite", "instance", "gamma", "groups", "bound (after)", "gap (after)", "LP gap floor",
                   "bound (before)", "gap (before)"], rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds for auto and the LP bounds")
    ap.add_argument("--exact-limit", type=float, default=5.0, help="seconds CP-SAT gets to prove each optimum")
    ap.add_argument("--sizes", default="small", help="suite sizes of tables 1 and 2 (comma-separated)")
    ap.add_argument("--before", default=None, help="a checkout whose solvers give the 'before' gaps")
    ap.add_argument("--skip-gaps", action="store_true", help="tables 1 and 2 only")
    ap.add_argument("--skip-quality", action="store_true", help="table 3 only")
    args = ap.parse_args(argv)
    sizes = tuple(s for s in args.sizes.split(",") if s)
    if not args.skip_quality:
        print(f"## P1 bound / optimum (CP-SAT proves the optimum within {args.exact_limit:g} s)\n")
        print(p1_quality(sizes, args.time_limit, args.exact_limit), flush=True)
        print(f"\n## P2 bounds against the best kept magnitude (auto, {args.time_limit:g} s)\n")
        print(p2_quality(sizes, args.time_limit), flush=True)
    if not args.skip_gaps:
        before = before_gaps(args.before, args.time_limit) if args.before else None
        print(f"\n## Mean gap auto reports at {args.time_limit:g} s\n")
        print(gap_table(auto_gaps(args.time_limit), before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
