"""The defaults of every subcommand in one table, and the help formatter that shows them.

``pack``, ``compress`` and ``formats`` take their shared settings (time limit,
alpha, gamma, solver, seed, bit width) from here, so one run's ``--help``,
another's and the README cannot disagree; ``--help`` prints each default next
to its option (:class:`HelpFormatter`). Settings only one subcommand has are
here too, named for it, so the difference is visible in one place: compress
arranges 4-bit subwords of 8-bit weights unless told ``--subword 0``, and
reports on a 32 x 32 array, while formats compares on 8 x 8 (the digits CNN
has at most 64 filters; a larger array would sit idle).

:data:`DEMO_ARGS` are the ``compress`` options ``./run demo`` runs: the
Tight Compression flow on the embedded digits CNN, eight prune / arrange /
fine-tune rounds to 92% global sparsity with 4-bit subwords, alpha 32 and
gamma 0.2 (the setting of ``benchmarks/compress_bench.py`` that reaches
15.88x at 0.56 points; the subword sparsity 0.4257 is that benchmark's
per-round rate, 1 - 0.5 ** (1/10), over these eight rounds).
"""

from __future__ import annotations

import argparse

__all__ = ["TIME_LIMIT", "ALPHA", "GAMMA", "SOLVER", "SEED", "BITS", "SUBWORD", "COMPRESS_SPARSITY",
           "COMPRESS_ARRAY", "FORMATS_ARRAY", "COMPRESS_EPOCHS", "FORMATS_EPOCHS", "LR", "DEMO_ARGS",
           "HelpFormatter"]

#: seconds per layer (per solve) for every subcommand and for CompressConfig / compare_formats
TIME_LIMIT = 10.0
#: P1: max columns per group, and the conflict budget per group as a fraction of rows
ALPHA = 8
GAMMA = 0.0
SOLVER = "auto"
SEED = 0
#: compress: weight bit width b and subword width s (0 or None: whole weights)
BITS = 8
SUBWORD = 4
COMPRESS_SPARSITY = 0.8
#: systolic array (rows, cols) of the hardware figures
COMPRESS_ARRAY = (32, 32)
FORMATS_ARRAY = (8, 8)
#: fine-tuning epochs per round of the digits CNN's built-in fine-tuning, and its learning rate
COMPRESS_EPOCHS = 10
FORMATS_EPOCHS = 5
LR = 1e-3

DEMO_ARGS = ("digits", "--scope", "global", "--subword", "4", "--subword-sparsity", "0.4257", "--alpha", "32",
             "--gamma", "0.2", "--solver", "ffd", "--time-limit", "1", "--schedule",
             "0.6,0.7,0.8,0.85,0.88,0.9,0.91,0.92", "--epochs", "10", "--lr", "0.002", "--rows", "8", "--cols", "8")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after every option that has a default worth printing (not None, not a False flag)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "%(default)" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"
