"""``arrange formats MODEL``: every packed format side by side at matched accuracy.

Wired into :mod:`arrange.cli` by ``add_parser(subparsers)``, which sets ``run``
as the subcommand's ``func``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import defaults as D
from .errors import ArrangeError
from .report import jsonable

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``formats`` subcommand to an argparse subparsers object."""
    from .formats import FORMATS

    from .usermodel import add_model_options

    p = subparsers.add_parser("formats", help="compare all packed formats at matched accuracy (digits CNN or "
                                              "your model with --eval)", formatter_class=D.HelpFormatter)
    p.add_argument("model", help="`digits` (the embedded CNN, its accuracy and fine-tuning), or a checkpoint "
                                 "with --eval and --model-builder (and optionally --finetune)")
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats")
    p.add_argument("--epochs", type=int, default=D.FORMATS_EPOCHS,
                   help="fine-tuning epochs per setting (digits' built-in fine-tuning)")
    p.add_argument("--seed", type=int, default=D.SEED, help="seed of solvers and fine-tuning")
    p.add_argument("--rows", type=int, default=D.FORMATS_ARRAY[0], help="systolic array rows")
    p.add_argument("--cols", type=int, default=D.FORMATS_ARRAY[1], help="systolic array columns = FC engine PEs")
    p.add_argument("--dataflow", choices=["ws", "os", "is"], default="ws", help="array dataflow")
    p.add_argument("--time-limit", type=float, default=D.TIME_LIMIT, help="solver seconds per layer")
    p.add_argument("--solver", action="append", default=[], metavar="FORMAT=NAME",
                   help="solver for a format, e.g. column_combine=auto (repeatable)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--out", metavar="DIR", help="write report.json and report.md here")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run the comparison; print the markdown table (or JSON) and write the report if asked."""
    from .formats_compare import compare_formats, format_markdown
    from .hooks import digits_hooks
    from .usermodel import resolve

    if args.model != "digits" and not args.eval:
        raise ArrangeError(f"formats compares at matched accuracy, so {args.model} needs --eval file.py:function "
                           f"(and --model-builder; --finetune optional); without them only digits")
    if args.rows < 1 or args.cols < 1 or args.epochs < 0 or not args.time_limit > 0:
        raise ArrangeError(f"expected rows, cols >= 1, epochs >= 0 and time limit > 0, got {args.rows}, "
                           f"{args.cols}, {args.epochs}, {args.time_limit}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [s for s in args.solver if "=" not in s]
    if bad:
        raise ArrangeError(f"--solver expects FORMAT=NAME, got {bad[0]!r}")
    user = resolve(args, {})
    layers = user.model.layers
    unknown = [l.name for l in layers if l.name not in user.pixels]
    pixels = {**{n: 1 for n in unknown}, **user.pixels}
    rows = compare_formats(layers, formats=formats, finetune_epochs=args.epochs, seed=args.seed,
                           rows=args.rows, cols=args.cols, dataflow=args.dataflow, time_limit=args.time_limit,
                           solvers=dict(s.split("=", 1) for s in args.solver), pixels=pixels,
                           hooks=user.hooks or digits_hooks(epochs=args.epochs))
    notes = [user.pixels_note] if user.pixels_note else []
    if unknown:
        notes.append("output positions unknown (give --input-shape C,H,W or --tokens T), counted as M = 1: "
                     + ", ".join(unknown))
    table = "\n\n".join([format_markdown(rows, details=True)] + notes)
    text = json.dumps(jsonable(rows), indent=1)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(text + "\n")
        (out / "report.md").write_text(f"# Formats on {args.model} at matched accuracy\n\n" + table + "\n")
    print(text if args.json else table)
    return 0
