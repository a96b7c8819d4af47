"""Run the solver benchmark (`arrange bench solvers`) with this repository's suite and targets.

Every registered solver on the instance suite, with bounds; writes results.csv,
results.md, summary.md and gap_vs_time.png into --out and prints the summary
tables.  On top of the library's summary (:mod:`arrange.bench`), summary.md
carries the issue targets measured on this suite: P1 groups against the
column combining baseline (``greedy-cc``) on the medium random gamma = 0
instances, and the Apex instance next to Apex's published figures.

Usage: python benchmarks/solvers/run.py [--sizes small,medium] [--solvers a,b]
       [--time-limit 2] [--out out/bench-solvers]
"""

import sys

from arrange import bench
from arrange.errors import ArrangeError
from arrange.report import markdown_table


def fewer_than_baseline(rows: list[dict]) -> dict[str, float]:
    """Per solver, mean % fewer groups than greedy-cc on medium random gamma = 0 instances."""
    pairs = bench.paired(rows, bench.BASELINE, lambda r: r["size"] == "medium" and r["family"] == "random"
                         and r["gamma"] == 0)
    return {s: bench.mean(100 * (b["objective"] - r["objective"]) / b["objective"] for b, r in v)
            for s, v in pairs.items()}


def baseline_column(rows: list[dict], sizes: list[str]) -> tuple[str, dict]:
    return ("fewer groups vs greedy-cc (medium random, gamma=0)",
            {s: f"{v:.1f}%" for s, v in fewer_than_baseline(rows).items()})


def apex_section(rows: list[dict]) -> str:
    """The Apex instance's rows next to Apex's published numbers ("" when the run has none)."""
    body = [[r["solver"], bench.fmt_num(r["objective"]), bench.fmt_num(r["bound"]), bench.fmt_pct(r["efficacy"]),
             bench.fmt_num(r["seconds"])] for r in rows if r["family"] == "apex" and bench.has_gap(r)]
    if not any(r["family"] == "apex" for r in rows):
        return ""
    return ("## The Apex instance (np.random.seed(1); rand(128, 64); k=4, n=2)\n\n"
            "Published (NVIDIA Apex ASP): kept 2852.377 unpermuted, rows bound 3042.332, "
            "efficacy 35.5% (window 8), 36.6% (window 12).\n\n"
            + markdown_table(["solver", "kept", "bound", "efficacy", "seconds"], body) + "\n")


def summary(rows: list[dict]) -> str:
    """The library's summary with this suite's target column and the Apex section."""
    return bench.format_summary(rows, columns={"p1": (baseline_column, bench.networkx_column),
                                               "p2": (bench.efficacy_column,)},
                                sections={"p2": (apex_section,)})


if __name__ == "__main__":
    try:
        sys.exit(bench.main(sys.argv[1:], prog="benchmarks/solvers/run.py", summary=summary))
    except ArrangeError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        sys.exit(2)
