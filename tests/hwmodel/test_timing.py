"""Timing: SCALE-Sim stall-free fold schedule and the +1 convention."""

import math

import pytest

from hwmodel import HwModelError, schedule, simulate_gemm

# (M, N, K, R, C, dataflow, SCALE-Sim 3.0.0 "Total Cycles"), from runs of SCALE-Sim itself
# (benchmarks/hwmodel/scalesim_driver.py) and the ws value by hand.
KNOWN = [
    (64, 64, 64, 32, 32, "os", 503),
    (64, 64, 64, 32, 32, "ws", 631),
    (100, 70, 50, 32, 32, "ws", 6 * 194 - 1),
]


@pytest.mark.parametrize("M,N,K,R,C,df,total", KNOWN)
def test_known_scalesim_totals(M, N, K, R, C, df, total):
    """Cycle counts reproduce SCALE-Sim's Total Cycles plus one."""
    s = schedule(M, N, K, R, C, df)
    assert s.scalesim_cycles == total
    assert s.cycles == total + 1


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_formula_by_dataflow(df):
    """Folds and per-fold cycles follow DESIGN.md section 7 for each dataflow."""
    M, N, K, R, C = 37, 21, 55, 8, 4
    s = schedule(M, N, K, R, C, df)
    expect = {
        "os": (math.ceil(M / R) * math.ceil(N / C), K + R + C - 2),
        "ws": (math.ceil(K / R) * math.ceil(N / C), 2 * R + C + M - 2),
        "is": (math.ceil(K / R) * math.ceil(M / C), 2 * R + C + N - 2),
    }[df]
    assert (s.folds, s.cycles_per_fold) == expect
    assert s.cycles == expect[0] * expect[1]


def test_simulate_gemm_utilization():
    """utilization = M*N*K / (cycles * R * C) for a dense GEMM, and at most 1."""
    r = simulate_gemm(300, 200, 100, rows=16, cols=8, dataflow="is")
    assert r.utilization == pytest.approx(300 * 200 * 100 / (r.cycles * 16 * 8))
    assert 0 < r.utilization <= 1


def test_single_pe():
    """A 1x1 GEMM on a 1x1 array takes 1 cycle (os) and 2 (ws, is: load then compute)."""
    assert simulate_gemm(1, 1, 1, 1, 1, "os").cycles == 1
    assert simulate_gemm(1, 1, 1, 1, 1, "ws").cycles == 2
    assert simulate_gemm(1, 1, 1, 1, 1, "is").cycles == 2


@pytest.mark.parametrize("field,kwargs", [
    ("M", dict(M=0, N=1, K=1)), ("N", dict(M=1, N=-3, K=1)), ("K", dict(M=1, N=1, K=2.5)),
    ("rows", dict(M=1, N=1, K=1, rows=0)), ("cols", dict(M=1, N=1, K=1, cols=True)),
])
def test_bad_sizes(field, kwargs):
    """Non-positive or non-integer sizes raise a one-line error naming the field."""
    with pytest.raises(HwModelError, match=f"^{field} must be an integer >= 1") as exc:
        simulate_gemm(**kwargs)
    assert "\n" not in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_bad_dataflow():
    """An unknown dataflow names the allowed ones."""
    with pytest.raises(HwModelError, match="dataflow must be one of os, ws, is; got 'rs'"):
        simulate_gemm(4, 4, 4, dataflow="rs")
