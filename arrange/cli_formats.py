"""``arrange formats MODEL``: every packed format side by side at matched accuracy.

Wired into :mod:`arrange.cli` by ``add_parser(subparsers)``, which sets ``run``
as the subcommand's ``func``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import ArrangeError
from .report import jsonable

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``formats`` subcommand to an argparse subparsers object."""
    from .formats import FORMATS

    p = subparsers.add_parser("formats", help="compare all packed formats at matched accuracy (digits CNN)")
    p.add_argument("model", help="`digits` (the embedded CNN: accuracy and fine-tuning need its data)")
    p.add_argument("--formats", default=",".join(FORMATS),
                   help="comma-separated formats (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs per setting (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", type=int, default=8, help="systolic array rows (default 8)")
    p.add_argument("--cols", type=int, default=8, help="systolic array columns = FC engine PEs (default 8)")
    p.add_argument("--dataflow", choices=["ws", "os", "is"], default="ws")
    p.add_argument("--time-limit", type=float, default=5.0, help="solver seconds per layer (default 5)")
    p.add_argument("--solver", action="append", default=[], metavar="FORMAT=NAME",
                   help="solver for a format, e.g. column_combine=auto (repeatable)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--out", metavar="DIR", help="write report.json and report.md here")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run the comparison; print the markdown table (or JSON) and write the report if asked."""
    from .formats_compare import compare_formats, format_markdown
    from .hooks import digits_hooks
    from .models.digits import digits_pixels, load_digits_layers

    if args.model != "digits":
        raise ArrangeError(f"formats needs a model with an accuracy check; supported: digits, got {args.model!r}")
    if args.rows < 1 or args.cols < 1 or args.epochs < 0 or not args.time_limit > 0:
        raise ArrangeError(f"expected rows, cols >= 1, epochs >= 0 and time limit > 0, got {args.rows}, "
                           f"{args.cols}, {args.epochs}, {args.time_limit}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [s for s in args.solver if "=" not in s]
    if bad:
        raise ArrangeError(f"--solver expects FORMAT=NAME, got {bad[0]!r}")
    rows = compare_formats(load_digits_layers().layers, formats=formats, finetune_epochs=args.epochs, seed=args.seed,
                           rows=args.rows, cols=args.cols, dataflow=args.dataflow, time_limit=args.time_limit,
                           solvers=dict(s.split("=", 1) for s in args.solver), pixels=digits_pixels(),
                           hooks=digits_hooks(epochs=args.epochs))
    table = format_markdown(rows, details=True)
    text = json.dumps(jsonable(rows), indent=1)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(text + "\n")
        (out / "report.md").write_text("# Formats on the digits CNN at matched accuracy\n\n" + table + "\n")
    print(text if args.json else table)
    return 0
