"""Issue 12 items 6 and 9: one table of defaults shown by --help, and a demo that shows the engine at its best."""

import argparse
import json
import re

import pytest

from arrange import defaults as D
from arrange.cli import build_parser, main


def _subparsers(parser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_pack_compress_formats_share_their_defaults():
    """The same time limit, alpha, gamma, solver and seed for every subcommand, from arrange.defaults."""
    parser = build_parser()
    parsed = {cmd: parser.parse_args([cmd, "digits"]) for cmd in ("pack", "compress", "formats")}
    for cmd, args in parsed.items():
        assert args.time_limit == D.TIME_LIMIT and args.seed == D.SEED, cmd
    for cmd in ("pack", "compress"):
        args = parsed[cmd]
        assert (args.alpha, args.gamma, args.solver) == (D.ALPHA, D.GAMMA, D.SOLVER), cmd
    from arrange.compress import CompressConfig

    cfg = CompressConfig()
    assert (cfg.time_limit, cfg.subword, cfg.bits) == (D.TIME_LIMIT, D.SUBWORD, D.BITS)


@pytest.mark.parametrize("cmd", ["pack", "compress", "formats"])
def test_help_shows_the_defaults(cmd):
    """--help prints each default next to its option, from the table, and never twice."""
    text = " ".join(_subparsers(build_parser())[cmd].format_help().split())
    assert f"seconds per layer (default: {D.TIME_LIMIT})" in text
    assert f"(default: {D.SEED})" in text and "(default: None)" not in text and "(default: False)" not in text
    assert "default: default" not in text.lower() and not re.search(r"\(default [0-9]", text)
    if cmd == "compress":
        assert f"0 arranges whole weights (default: {D.SUBWORD})" in text


def test_readme_states_the_shared_time_limit(repo_root):
    """README and --help agree: the README names the shared default time limit."""
    readme = (repo_root / "README.md").read_text()
    assert f"time limit {D.TIME_LIMIT:g} s per layer for `pack`, `compress` and `formats`" in readme


def test_compress_states_its_subword_view(capsys):
    """compress says it arranges 4-bit subwords (and how to turn that off) instead of doing it silently."""
    assert main(["compress", "digits", "--sparsity", "0.6", "--epochs", "0", "--solver", "ffd",
                 "--time-limit", "0.3"]) == 0
    out = capsys.readouterr().out
    assert f"arranged as {D.BITS // D.SUBWORD} signed {D.SUBWORD}-bit subwords each (--subword 0: whole weights)" \
        in out.splitlines()[0]


def test_demo_shows_the_engine_at_its_best(capsys):
    """./run demo: the compress flow on the digits CNN, >= 14x matrix, storage > 1, < 1 pt drop, faster than dense."""
    assert main(["demo", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    stages = d["stages"]
    drop = stages[0]["metric"] - stages[-1]["metric"]
    assert stages[-1]["step"] == "finetuned" and 0 <= drop < 0.01
    assert d["total"]["matrix_compression"] >= 14 and d["total"]["storage_compression"] > 4
    engine = d["hardware"]["total"]["engine"]
    assert engine["speedup_vs_dense"] > 2 and engine["speedup_vs_baseline"] > 1


def test_demo_summary_names_the_next_command(capsys):
    """The demo's screen: headline numbers, the layers, and the command to run on your own model."""
    assert main(["demo", "--schedule", "0.7", "--epochs", "1", "--time-limit", "0.3"]) == 0
    out = capsys.readouterr().out
    for text in ("matrix compression", "storage compression", "accuracy", "throughput", "| conv3 |",
                 "Next, your own model: ./run arrange compress model.pth --model-builder"):
        assert text in out
