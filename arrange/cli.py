"""The ``arrange`` command line: pack, demo, compress, formats, solvers, bench.

Bad input prints one line naming the fault and exits with code 2; layers that
fail are reported and skipped while the others complete and are written.
Each subcommand's parser names its handler with ``set_defaults(func=...)``
(``func(args) -> exit code``), so a subcommand is a parser and a handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import cli_formats
from . import defaults as D
from .argtypes import nonneg_float, params_dict, positive_float, positive_int, schedule, solver_param, sparsity
from .errors import ArrangeError
from .usermodel import add_model_options

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _add_pack_options(p: argparse.ArgumentParser, sparsity_default, scope_default="layer"):
    p.add_argument("--alpha", type=positive_int, default=D.ALPHA, help="max columns per group")
    p.add_argument("--gamma", type=nonneg_float, default=D.GAMMA,
                   help="conflict budget per group, as a fraction of rows")
    p.add_argument("--solver", default=D.SOLVER,
                   help="P1 solver: a name from `arrange solvers`, or module:function / file.py:function for your "
                        "own")
    p.add_argument("--param", type=solver_param, action="append", metavar="SOLVER.NAME=VALUE",
                   help="a solver parameter, e.g. tabu.base_iters=5000 (repeatable; `arrange solvers` lists them)")
    p.add_argument("--time-limit", type=positive_float, default=D.TIME_LIMIT, help="seconds per layer")
    p.add_argument("--sparsity", type=sparsity, default=sparsity_default,
                   help="magnitude-prune to this sparsity first (default: keep the model's zeros)")
    p.add_argument("--scope", choices=["layer", "global"], default=scope_default, help="pruning scope")
    p.add_argument("--seed", type=int, default=D.SEED, help="seed of every solver")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--out", metavar="DIR", help="write report.json, report.md, packed.npz, masks.npz/.pt and the "
                                                "plots here")


def _add_run_options(p: argparse.ArgumentParser):
    """Where layers run, resuming, and progress: shared by the whole-model subcommands."""
    p.add_argument("--jobs", type=positive_int, default=1, help="layers in parallel local processes")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this machine (--jobs processes); ray: one Ray task per layer (pip install "
                        "'arrange[cluster]')")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="an existing Ray cluster to join (with --executor ray; default: start a local one)")
    p.add_argument("--resume", action="store_true",
                   help="skip the layers --out already holds from an earlier run with the same settings")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _add_selection_options(p: argparse.ArgumentParser):
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="arrange exactly the 2-D/4-D weights whose state-dict name matches (repeatable; "
                        "default: conv and linear weights, no norms, biases or embeddings)")
    p.add_argument("--exclude", action="append", metavar="GLOB",
                   help="leave out the weights whose state-dict name matches (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arrange", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("pack", help="pack every layer of a model (P1 column combining)",
                       formatter_class=D.HelpFormatter)
    p.add_argument("model", help="a .pt/.pth/.safetensors/.npy/.npz file, or `digits` (embedded CNN)")
    _add_pack_options(p, None)
    _add_selection_options(p)
    add_model_options(p, shapes=False)
    _add_run_options(p)
    p.set_defaults(func=_cmd_pack)
    d = sub.add_parser("demo", help="the Tight Compression flow on the embedded digits CNN in about a minute",
                       description="Runs `arrange compress " + " ".join(D.DEMO_ARGS) + "` and prints a summary; "
                                   "any compress option given after `demo` (e.g. --json, --out DIR) overrides these.")
    d.set_defaults(func=_cmd_demo, rest=[])  # main hands it the options it does not know itself
    c = sub.add_parser("compress", help="prune, quantise, arrange, fine-tune and report (Tight Compression)",
                       formatter_class=D.HelpFormatter)
    c.add_argument("model", help="a model file (with --eval/--finetune/--model-builder: your metric and loop), "
                                 "or `digits` (embedded CNN with accuracy and fine-tuning)")
    c.add_argument("--problem", choices=["p1", "p2"], default="p1",
                   help="p1: min-width combining (alpha, gamma); p2: fixed ratio (k, n)")
    c.add_argument("--alpha", type=positive_int, default=D.ALPHA, help="p1 max columns per group")
    c.add_argument("--gamma", type=nonneg_float, default=D.GAMMA,
                   help="p1 conflict budget per group (fraction of rows)")
    c.add_argument("--k", type=positive_int, default=8, help="p2 group size")
    c.add_argument("--n", type=positive_int, default=1, help="p2 weights kept per group and row")
    c.add_argument("--bits", type=positive_int, default=D.BITS, help="weight bit width b")
    c.add_argument("--subword", type=int, default=D.SUBWORD,
                   help="subword width s: each b-bit weight is arranged as b/s signed s-bit subwords; "
                        "0 arranges whole weights")
    c.add_argument("--subword-sparsity", type=sparsity, default=0.0,
                   help="fraction of nonzero subwords pruned (smallest contributions)")
    c.add_argument("--sparsity", type=sparsity, default=D.COMPRESS_SPARSITY, help="weight sparsity (final stage)")
    c.add_argument("--schedule", type=schedule, default=None,
                   help="comma-separated sparsities for prune/arrange/fine-tune rounds, e.g. 0.5,0.7,0.8")
    c.add_argument("--scope", choices=["layer", "global"], default="layer",
                   help="pruning scope: per layer, or one threshold over all layers")
    c.add_argument("--aware", action="store_true", help="arrangement-aware pruning")
    c.add_argument("--score", metavar="FILE", default=None,
                   help="p2: per-layer scores (.npz/.pt/.safetensors; key = layer name; a matrix such as "
                        "|W|*||X_j||, or one activation norm per input channel) ranking entries instead of |W|")
    c.add_argument("--solver", default=D.SOLVER,
                   help="the problem's solver: a name from `arrange solvers`, or module:function")
    c.add_argument("--param", type=solver_param, action="append", metavar="SOLVER.NAME=VALUE",
                   help="a solver parameter, e.g. tabu.base_iters=5000 (repeatable)")
    c.add_argument("--time-limit", type=positive_float, default=D.TIME_LIMIT, help="seconds per layer")
    c.add_argument("--jobs", type=positive_int, default=1, help="layers in parallel processes")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    c.add_argument("--epochs", type=int, default=D.COMPRESS_EPOCHS,
                   help="fine-tuning epochs per round (digits' built-in loop; --finetune brings yours)")
    c.add_argument("--lr", type=positive_float, default=D.LR, help="fine-tuning learning rate (digits' built-in loop)")
    c.add_argument("--rounds", type=positive_int, default=1,
                   help="fine-tuning rounds per stage, projecting onto the packing after each")
    c.add_argument("--sweep", metavar="LEVELS", default=None,
                   help="sweep sparsity: a number of levels (e.g. 10: 0.5..0.95) or comma-separated "
                        "sparsities; writes sweep.json/.md and accuracy_vs_compression.png, engine vs "
                        "column combining through the same flow")
    c.add_argument("--rows", type=positive_int, default=D.COMPRESS_ARRAY[0], help="systolic array rows")
    c.add_argument("--cols", type=positive_int, default=D.COMPRESS_ARRAY[1], help="systolic array columns")
    c.add_argument("--subword-lanes", type=positive_int, default=None,
                   help="subword cells per PE (default bits/subword: each b-bit PE splits into s-bit "
                        "lanes; 1: a whole PE per subword)")
    c.add_argument("--seed", type=int, default=D.SEED, help="seed of solvers and fine-tuning")
    c.add_argument("--json", action="store_true", help="print machine-readable JSON")
    c.add_argument("--out", metavar="DIR", help="write report.json, report.md, plots, masks and the hardware export")
    _add_selection_options(c)
    add_model_options(c)
    c.set_defaults(func=_cmd_compress)
    sub.add_parser("solvers", help="list the solvers with one line each").set_defaults(func=_cmd_solvers)
    b = sub.add_parser("bench", help="run a benchmark suite")
    b.add_argument("suite", choices=["solvers"], help="which benchmark")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the suite's runner")
    b.set_defaults(func=_cmd_bench)
    cli_formats.add_parser(sub)
    return parser


def _load(args, stream: bool = False):
    """The model argument with its selection, evaluator, module and output positions (arrange.usermodel).

    ``stream``: a .safetensors file is memory-mapped and read one layer at a time.
    """
    from .usermodel import resolve

    return resolve(args, dict(include=getattr(args, "include", None), exclude=getattr(args, "exclude", None)),
                   stream=stream)


def _phase(args, line: str) -> None:
    """A progress line on stderr (terminal or not, --json or not), unless --quiet."""
    if not getattr(args, "quiet", False):
        print(f"arrange: {line}", file=sys.stderr, flush=True)


def _describe_source(source: str) -> str:
    import os

    if source != "digits" and os.path.isfile(source):
        return f"{source} ({os.path.getsize(source) / 2 ** 20:.1f} MiB)"
    return source


def _cmd_pack(args) -> int:
    from .io import LazyLayers, weight_masks
    from .pipeline import pack_layers
    from .prune import prune_layers
    from .report import format_table, to_json, write_pack_report
    from .solve import check_solver
    from .store import LayerStore

    source = args.model
    params = params_dict(args.param)
    check_solver("p1", args.solver, params)
    if args.address and args.executor != "ray":
        raise ArrangeError("--address needs --executor ray")
    if args.resume and not args.out:
        raise ArrangeError("--resume needs --out (the folder of the run to resume)")
    _phase(args, f"loading {_describe_source(source)}")
    # a .safetensors file is read one layer at a time where it is packed, unless global pruning needs it whole
    user = _load(args, stream=not (args.sparsity and args.scope == "global"))
    model = user.model
    layers, in_task = model.layers, None
    if args.sparsity and args.scope == "global":
        _phase(args, f"pruning {len(layers)} layers to {args.sparsity:g} sparsity (global)")
        layers = prune_layers(layers, args.sparsity, scope="global")
    elif args.sparsity:
        in_task = args.sparsity   # layer scope: each layer is pruned where it is packed
    if not layers and not model.skipped:
        raise ArrangeError(f"{source}: no conv or linear layers found")
    settings = dict(model=source, sparsity=args.sparsity, scope=args.scope, include=getattr(args, "include", None),
                    exclude=getattr(args, "exclude", None), alpha=args.alpha, gamma=args.gamma, solver=args.solver,
                    time_limit=args.time_limit, seed=args.seed, params=params)
    store = LayerStore(args.out, settings, resume=args.resume) if args.out else None
    where = (f"Ray tasks{' at ' + args.address if args.address else ''}" if args.executor == "ray" else
             f"{args.jobs} process{'es' if args.jobs > 1 else ''}")
    _phase(args, f"packing {len(layers)} layers ({where}{', pruning each to ' + format(in_task, 'g') if in_task else ''}"
                 f"{', resuming from ' + args.out if args.resume else ''})")
    report, packed = pack_layers(layers, alpha=args.alpha, gamma=args.gamma, solver=args.solver,
                                 time_limit=args.time_limit, seed=args.seed,
                                 skipped=model.skipped, not_selected=model.not_selected, keys=model.keys,
                                 progress=not args.quiet, params=params, jobs=args.jobs, executor=args.executor,
                                 address=args.address, store=store, sparsity=in_task, keep=store is None)
    report.params.update(model=source, sparsity=args.sparsity, scope=args.scope)
    tuned = None
    if report.layers and (user.hooks is not None or source == "digits"):
        from .hooks import digits_hooks, pack_metrics

        hooks = user.hooks or digits_hooks(epochs=0)
        report.params["metric"] = f"--eval {args.eval}" if user.hooks else "digits test accuracy"
        pruned = prune_layers(layers, in_task, scope="layer") if in_task else layers
        report.accuracy, tuned, packed = pack_metrics(hooks, model.layers, pruned, packed,
                                                      finetune=bool(args.finetune), seed=args.seed)
    if args.out:
        _phase(args, f"writing {args.out}")
        shapes = layers.shapes if isinstance(layers, LazyLayers) else layers
        masks = weight_masks(shapes, report.keep_masks, model.keys, lazy=True)   # one module in memory at a time
        write_pack_report(report, packed, args.out, masks=masks)
        if tuned is not None:
            _write_state(tuned, args.out)
    print(to_json(report) if args.json else format_table(report))
    for name, reason in report.skipped:
        print(f"arrange: layer {name}: {reason}", file=sys.stderr)
    if report.interrupted:
        kept = (f"{len(report.layers)} finished layers written to {args.out} (--resume goes on from there)"
                if args.out else f"{len(report.layers)} layers finished, nothing written (no --out)")
        print(f"arrange: interrupted after {len(report.layers) + len(report.skipped)} of "
              f"{len(layers) + len(model.skipped)} layers: {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT if report.skipped else 0


def _scores(path):
    from .compress import load_scores

    return load_scores(path) if path else {}


def _cmd_compress(args) -> int:
    import functools

    from .compress import CompressConfig
    from .compress_report import format_compress, compress_json, write_compress_report
    from .joint import CompressError, compress_model

    cfg = CompressConfig(
        sparsity=args.schedule[-1] if args.schedule else args.sparsity, scope=args.scope, bits=args.bits,
        subword=args.subword or None, subword_sparsity=args.subword_sparsity, problem=args.problem,
        alpha=args.alpha, gamma=args.gamma, k=args.k, n=args.n, solver=args.solver,
        params=params_dict(args.param), time_limit=args.time_limit, arrangement_aware=args.aware, seed=args.seed,
        scores=_scores(args.score))
    from .solve import check_solver

    check_solver(cfg.problem, cfg.solver, cfg.params)
    max_lanes = cfg.bits // cfg.subword if cfg.subword else 1
    if args.subword_lanes is not None and args.subword_lanes > max_lanes:
        raise ArrangeError(f"--subword-lanes must be <= bits / subword = {max_lanes} (1 without subwords), "
                           f"got {args.subword_lanes}")
    _phase(args, f"loading {_describe_source(args.model)}")
    user = _load(args)
    model = user.model
    _phase(args, f"compressing {len(model.layers)} layers ({args.jobs} process{'es' if args.jobs > 1 else ''})")
    if not model.layers and model.skipped:   # every selected layer is faulty: say what each one's fault is
        for name, reason in model.skipped:
            print(f"arrange: layer {name}: {reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    names = {layer.name for layer in model.layers}
    unknown = sorted(key for key in cfg.scores if key not in names and key.removesuffix(".weight") not in names)
    if unknown:
        raise ArrangeError(f"--score {args.score}: no layer named {', '.join(unknown[:5])}; "
                           f"layers: {', '.join(sorted(names)[:8])}")
    hooks = user.hooks
    if hooks is None and args.model == "digits":
        from .hooks import digits_hooks

        hooks = functools.partial(digits_hooks, epochs=args.epochs, lr=args.lr)
    if args.sweep is not None:
        from .sweep import format_sweep, parse_sweep, sweep, write_sweep

        result = sweep(model.layers, cfg, hooks=hooks, levels=parse_sweep(args.sweep), jobs=args.jobs,
                       finetune_rounds=args.rounds)
        if args.out:
            write_sweep(result, args.out)
        print(format_sweep(result))
        return 0
    error = None
    try:
        report = compress_model(model.layers, cfg, hooks=hooks() if isinstance(hooks, functools.partial) else hooks,
                                schedule=args.schedule,
                                jobs=args.jobs, progress=not args.json, finetune_rounds=args.rounds)
    except CompressError as exc:
        report, error = exc.report, str(exc)
    report.skipped = list(model.skipped) + report.skipped
    hw = dict(rows=args.rows, cols=args.cols, subword_lanes=args.subword_lanes, pixels=user.pixels,
              pixels_note=user.pixels_note)
    if args.out:
        write_compress_report(report, args.out, model_layers=model.layers, **hw)
        _write_compress_masks(report, model, args.out)
    if args.json:
        print(compress_json(report, **hw))
    elif getattr(args, "demo", False):
        from .compress_report import format_demo

        print(format_demo(report, **hw))
    else:
        print(format_compress(report, **hw))
    for name, reason in report.skipped:
        print(f"arrange: layer {name}: {reason}", file=sys.stderr)
    if error:
        print(f"arrange: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT if report.skipped or error else 0


def _cmd_demo(args) -> int:
    """``compress`` with :data:`arrange.defaults.DEMO_ARGS` (overridden by what follows ``demo``), summarised."""
    options = build_parser().parse_args(["compress", *D.DEMO_ARGS, *args.rest])
    options.demo = True
    return _cmd_compress(options)


def _write_compress_masks(report, model, out_dir: str) -> None:
    """masks.npz/.pt of the compressed layers: where their effective weights are nonzero."""
    from .io import weight_masks
    from .report import write_masks

    keep = {o.name: o.weights != 0 for o in report.layers}
    write_masks(weight_masks(model.layers, keep, model.keys), out_dir)


def _write_state(state: dict, out_dir: str) -> None:
    """finetuned.pt: the fine-tuned model's state dict (torch tensors; torch.load(weights_only=True))."""
    import os

    import numpy as np
    import torch

    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
               os.path.join(out_dir, "finetuned.pt"))


def _cmd_solvers(args) -> int:
    from solvers import combine, group

    for title, table in (("P1 min-width combining (arrange pack)", combine.SOLVERS),
                         ("P2 fixed-ratio grouping (arrange.permute)", group.SOLVERS)):
        print(title)
        for name, spec in table.items():
            print(f"  {name:<12} {'exact' if spec.exact else 'heuristic':<9} {spec.summary}")
            if spec.params is not None:
                print(" " * 25 + "params: " + ", ".join(f"{name}.{f.name}={f.default!r}"
                                                        for f in dataclasses.fields(spec.params)))
    print("Your own: --solver module:function or file.py:function, a function (problem, options, budget) -> "
          "solvers.Outcome")
    return 0


def _cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args.rest)


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not _cmd_demo:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.rest = extra  # demo passes them to compress
    try:
        return args.func(args)
    except ArrangeError as exc:
        print(f"arrange: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("arrange: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
