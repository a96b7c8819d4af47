"""Stall-free fold schedule and cycle count of a GEMM on an R x C systolic array.

Problem: a GEMM with M output pixels, N filters and reduction length K runs on
an array of R rows x C columns of processing elements under one of three
dataflows.  The operand kept in the cells (outputs for ``os``, weights for
``ws``, inputs for ``is``) fixes which two GEMM dimensions are laid out in
space and which one streams in time; the work is cut into folds (tiles) of at
most R x C and the folds run one after another.

Method: the closed-form counts of SCALE-Sim 3.0.0 in stall-free mode (SRAM
large enough, no bandwidth stalls), read from its ``systolic_compute_{os,ws,is}``
modules:

==========  ==============  ==============  ==============  =====================
dataflow    array rows map  array cols map  streams in time  cycles per fold
==========  ==============  ==============  ==============  =====================
``os``      M (pixels)      N (filters)     K                K + R + C - 2
``ws``      K (reduction)   N (filters)     M                2R + C + M - 2
``is``      K (reduction)   M (pixels)      N                2R + C + N - 2
==========  ==============  ==============  ==============  =====================

with ceil(rows map / R) * ceil(cols map / C) folds, every fold costing the full
per-fold count even when it is only partly filled (SCALE-Sim pads edge folds).
In ``ws``/``is`` the extra R cycles load the stationary operand; the rest is
the skewed stream: the last operand enters at step T-1 and crosses R-1 rows
and C-1 columns.

Convention (the "+1"): ``cycles`` here counts cycles, i.e. folds times cycles
per fold.  SCALE-Sim's reported "Total Cycles" is the index of the last busy
cycle, a 0-indexed maximum, so it is one less; :attr:`Schedule.scalesim_cycles`
gives that number for direct comparison.

Reference: A. Samajdar et al., "SCALE-Sim: Systolic CNN Accelerator Simulator",
arXiv:1811.02883 (2018), and SCALE-Sim v3 (PyPI ``scalesim`` 3.0.0),
https://github.com/scalesim-project/scale-sim-v3 .
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodel.validation import check_dataflow, check_int

__all__ = ["Schedule", "schedule", "ceil_div"]


def ceil_div(a: int, b: int) -> int:
    """Integer ceil(a / b) for positive ints."""
    return -(-a // b)


@dataclass(frozen=True)
class Schedule:
    """Fold schedule of one GEMM on the array.

    Attributes
    ----------
    dataflow : "os", "ws" or "is".
    spatial_rows, spatial_cols : GEMM extents laid along the array rows / columns.
    temporal : GEMM extent streamed in time within a fold.
    row_folds, col_folds : ceil(spatial_rows / R), ceil(spatial_cols / C).
    cycles_per_fold : SCALE-Sim's stall-free count for one fold.
    """

    dataflow: str
    rows: int
    cols: int
    spatial_rows: int
    spatial_cols: int
    temporal: int
    row_folds: int
    col_folds: int
    cycles_per_fold: int

    @property
    def folds(self) -> int:
        """Number of folds (tiles) run one after another."""
        return self.row_folds * self.col_folds

    @property
    def cycles(self) -> int:
        """Cycle count: folds * cycles_per_fold (SCALE-Sim's "Total Cycles" + 1)."""
        return self.folds * self.cycles_per_fold

    @property
    def scalesim_cycles(self) -> int:
        """SCALE-Sim 3.0.0's reported "Total Cycles": the 0-indexed last cycle, cycles - 1."""
        return self.cycles - 1


def schedule(M: int, N: int, K: int, rows: int = 32, cols: int = 32, dataflow: str = "ws") -> Schedule:
    """Fold schedule of an (M x K) @ (K x N) GEMM on a ``rows`` x ``cols`` array.

    Parameters
    ----------
    M, N, K : output pixels, filters, reduction length (all >= 1).
    rows, cols : array height R and width C (>= 1).
    dataflow : "os", "ws" or "is".

    Returns
    -------
    Schedule

    Raises
    ------
    HwModelError
        On a non-positive size or an unknown dataflow.

    Examples
    --------
    >>> schedule(64, 64, 64, 32, 32, "ws").cycles
    632
    >>> schedule(64, 64, 64, 32, 32, "os").scalesim_cycles
    503

    Notes
    -----
    O(1).  Formulas from SCALE-Sim 3.0.0 (module docstring).
    """
    M, N, K = check_int("M", M), check_int("N", N), check_int("K", K)
    R, C = check_int("rows", rows), check_int("cols", cols)
    dataflow = check_dataflow(dataflow)
    if dataflow == "os":
        sr, sc, t, fill = M, N, K, R + C - 2
    elif dataflow == "ws":
        sr, sc, t, fill = K, N, M, 2 * R + C - 2
    else:
        sr, sc, t, fill = K, M, N, 2 * R + C - 2
    return Schedule(dataflow, R, C, sr, sc, t, ceil_div(sr, R), ceil_div(sc, C), t + fill)
