"""Run the solver benchmark (same as `arrange bench solvers`): every registered solver
on the instance suite, with bounds; writes results.csv, results.md, summary.md and
gap_vs_time.png into --out and prints the summary tables.

Usage: python benchmarks/solvers/run.py [--sizes small,medium] [--solvers a,b]
       [--time-limit 2] [--out out/bench-solvers]
"""

import sys

from arrange.bench import main
from arrange.errors import ArrangeError

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:], prog="benchmarks/solvers/run.py"))
    except ArrangeError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        sys.exit(2)
