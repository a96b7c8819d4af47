"""All packed formats side by side on the digits CNN at matched accuracy (issue 6's report).

Run: ./run python benchmarks/formats_compare.py  (a few minutes on one core)

For every format, every setting of ``arrange.formats_compare.SETTINGS`` is
projected, fine-tuned (5 epochs) and re-encoded; the table shows the matched
setting (accuracy within 1 point of dense) with the highest matrix
compression, on an 8x8 weight-stationary array (PermDNN's FC layers on an
8-PE FC engine), followed by every setting tried.
"""

from __future__ import annotations

import os
import sys
import time

# Run as a script, this folder is sys.path[0] and its solvers/ subfolder would
# shadow the solvers package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]

from arrange.formats_compare import compare_formats, format_markdown  # noqa: E402


def main() -> None:
    start = time.perf_counter()
    # The library's default limit: the searches stop on a deterministic budget worth about
    # half of it on these machines (solvers/budget.py).
    rows = compare_formats(finetune_epochs=5, seed=0, rows=8, cols=8, dataflow="ws", time_limit=10.0)
    print(format_markdown(rows, details=True))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
