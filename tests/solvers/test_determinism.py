"""Same seed, same answer whatever the load: repeated runs, another process, both cores busy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from solvers import CombineProblem, GroupProblem, Options, combine, group

# Searches whose budget binds at this limit on these instances (they would go on much longer).
P1_SOLVERS = ["tabu", "anneal", "auto"]
P2_SOLVERS = ["tabu", "apex-window2", "anneal", "lns", "ria", "auto"]
LIMIT = 0.5

_ANSWERS = """
import json, sys
sys.path.insert(0, {tests!r})
from test_determinism import answers
print(json.dumps(answers()))
"""


def _instances():
    rng = np.random.default_rng(11)
    p1 = CombineProblem.from_weights(rng.random((128, 256)) * (rng.random((128, 256)) < 0.1), 8, 0.05)
    p2 = GroupProblem.from_weights(np.abs(np.random.default_rng(5).standard_normal((64, 256))), 4, 2)
    return p1, p2


def answers() -> dict:
    """Every solver's answer (and why it stopped) on the two instances at LIMIT seconds, seed 3."""
    p1, p2 = _instances()
    options = Options(time_limit=LIMIT, seed=3)
    out = {}
    for name in P1_SOLVERS:
        r = combine.solve(p1, name, options)
        out[f"p1:{name}"] = [r.labels.tolist(), r.stopped_by]
    for name in P2_SOLVERS:
        r = group.solve(p2, name, options)
        out[f"p2:{name}"] = [r.order.tolist(), r.stopped_by]
    return out


@pytest.fixture
def busy_cores():
    """Two processes spinning, one per core, for the duration of the test."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for p in spinners:
        p.kill()
        p.wait()


def _in_subprocess() -> dict:
    tests = str(__import__("pathlib").Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", _ANSWERS.format(tests=tests)], capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_answers_repeated_in_another_process_and_under_load(busy_cores):
    """With both cores busy, answers repeat in this process and in a fresh one, all stopped by the budget."""
    first = answers()
    assert first == answers()
    assert first == _in_subprocess()
    assert all(stop != "clock" and stop != "interrupt" for _, stop in first.values())
