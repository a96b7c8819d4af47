"""The examples in hwmodel's docstrings run as written."""

import doctest

import pytest

import hwmodel.fc_engine
import hwmodel.kernel_patterns
import hwmodel.model
import hwmodel.simulate
import hwmodel.sparse_core
import hwmodel.timing


@pytest.mark.parametrize("module", [hwmodel.timing, hwmodel.simulate, hwmodel.model, hwmodel.fc_engine,
                                    hwmodel.sparse_core, hwmodel.kernel_patterns])
def test_docstring_examples(module):
    """Every doctest in the module passes."""
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
