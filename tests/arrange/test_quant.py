"""Quantisation, the subword view and subword-level pruning."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from arrange.errors import ArrangeError
from arrange.quant import dequantize, from_subwords, prune_subwords, quantize, to_subwords


def test_quantize_per_row_symmetric():
    """Each row's largest magnitude maps to 2^(b-1)-1 and zeros stay zero."""
    W = np.array([[0.5, -1.0, 0.0], [2.0, 1.0, 0.0]])
    Q = quantize(W, bits=8)
    assert Q.q.tolist() == [[64, -127, 0], [127, 64, 0]]
    assert np.allclose(dequantize(Q), W, atol=Q.scale.max() / 2)


def test_subword_split_by_hand():
    """-75 = -(4*16 + 11) splits into low nibble -11 and high nibble -4."""
    sw = to_subwords(np.array([[-75, 3]]), bits=8, subword=4)
    assert sw.values.tolist() == [[-11, -4, 3, 0]]
    assert sw.shifts.tolist() == [0, 4, 0, 4]
    assert sw.source.tolist() == [0, 0, 1, 1]


@settings(max_examples=50, deadline=None)
@given(q=hnp.arrays(np.int32, st.tuples(st.integers(1, 5), st.integers(1, 6)),
                    elements=st.integers(-127, 127)),
       s=st.sampled_from([1, 2, 4, 8]))
def test_subword_roundtrip(q, s):
    """Splitting into subwords and reassembling gives back the integers exactly."""
    sw = to_subwords(q, bits=8, subword=s)
    assert np.array_equal(from_subwords(sw), q)
    assert np.count_nonzero(sw.values) >= np.count_nonzero(q)


def test_subword_pruning_drops_smallest_contributions():
    """Pruning half the subwords removes the smallest |v| * 2^shift first."""
    sw = to_subwords(np.array([[17, 1]]), bits=8, subword=4)   # subwords 1, 1<<4, 1
    pruned = prune_subwords(sw, 2 / 3)
    assert pruned.values.tolist() == [[0, 1, 0, 0]]
    assert from_subwords(pruned).tolist() == [[16, 0]]


@pytest.mark.parametrize("bits, s", [(8, 3), (7, 2), (8, 0), (32, 4)])
def test_bad_widths(bits, s):
    """A bit width not divisible by the subword width (or out of range) is refused in one line."""
    with pytest.raises(ArrangeError, match="width"):
        to_subwords(np.zeros((1, 1), dtype=np.int32), bits=bits, subword=s)
