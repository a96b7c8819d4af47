"""Compilation never counts: a fresh process with an empty Numba cache gives the warm answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import arrange

_CALLS = """
import json, numpy as np, arrange
rng = np.random.default_rng(0)
W = rng.standard_normal((64, 128))
P = rng.random((48, 160)) * (rng.random((48, 160)) < 0.15)
p2 = arrange.permute(np.abs(W), k=4, n=2, time_limit=1.0, seed=1)
p1 = arrange.pack(P, alpha=8, gamma=0.05, solver="tabu", time_limit=1.0, seed=1)
print(json.dumps({"order": p2.order.tolist(), "labels": p1.labels.tolist(), "stop": [p2.stopped_by, p1.stopped_by]}))
"""


def _run(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _CALLS], capture_output=True, text=True, env=env, timeout=600,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_first_call_with_an_empty_cache_equals_a_warm_call(tmp_path):
    """The kernels compile before the clock starts, so a cold process gives the warm process's answer."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "empty-cache"))
    cold = _run(env)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 128))
    P = rng.random((48, 160)) * (rng.random((48, 160)) < 0.15)
    warm_p2 = arrange.permute(np.abs(W), k=4, n=2, time_limit=1.0, seed=1)
    warm_p1 = arrange.pack(P, alpha=8, gamma=0.05, solver="tabu", time_limit=1.0, seed=1)
    assert cold["order"] == warm_p2.order.tolist()
    assert cold["labels"] == warm_p1.labels.tolist()
    assert "clock" not in cold["stop"] and warm_p2.efficacy > 0
