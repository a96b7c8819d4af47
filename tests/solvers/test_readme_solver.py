"""The README's 'Your own solver' example runs as written and gives a checked answer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from solvers import combine

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_solver_example_runs():
    """Extract the example, run it on a small pruned matrix, and check the registered solver's result."""
    text = README.read_text()
    section = text[text.index("### Your own solver"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rng = np.random.default_rng(0)
    scope = {"W": rng.standard_normal((16, 40)) * (rng.random((16, 40)) < 0.15)}
    try:
        exec(compile(code, "README.md", "exec"), scope)
        r = scope["r"]
        assert r.solver == "toy-ff" and r.num_groups >= r.lower_bound and r.ops > 0
        assert r.packed is not None
    finally:
        combine.SOLVERS.pop("toy-ff", None)
