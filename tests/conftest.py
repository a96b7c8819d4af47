"""Shared fixtures: the embedded digits CNN, a small compression setting, a fake solver, benchmark scripts.

Session-scoped: each is built once for the whole run and never mutated by a test.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root():
    """The repository checkout the tests run from."""
    return REPO


@pytest.fixture(scope="session")
def load_benchmark():
    """load_benchmark("solvers/run.py") -> that script under benchmarks/ as a module (not run as __main__)."""
    def load(relative: str):
        path = REPO / "benchmarks" / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def digits_model():
    """The embedded digits CNN as shipped (arrange.models.digits.load_digits_layers)."""
    from arrange.models.digits import load_digits_layers

    return load_digits_layers()


@pytest.fixture(scope="session")
def digits_layers(digits_model):
    """The digits CNN's six prunable layers (conv2 as two groups), in network order."""
    return digits_model.layers


@pytest.fixture(scope="session")
def p1_config():
    """A small, fast P1 compression setting: 70% sparse, 4-bit subwords, ffd, alpha 8, gamma 0.1."""
    from arrange.compress import CompressConfig

    return CompressConfig(sparsity=0.7, subword=4, solver="ffd", alpha=8, gamma=0.1, time_limit=0.5)


def _singletons(problem, options):
    """Every nonempty column alone: valid for any alpha and gamma, a solver-independent baseline."""
    from solvers import Outcome

    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    return Outcome(labels)


@pytest.fixture(scope="session")
def singletons():
    """A fake P1 solver (a callable for ``solver=``): every nonempty column in its own group."""
    return _singletons
