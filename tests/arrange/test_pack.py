"""arrange.pack / permute, the column-combined format and the full checker."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import arrange
from arrange.formats import column_combine
from arrange.verify import VerificationError, verify_packing
from solvers import Outcome, combine


def pairs(problem, options):
    """Consecutive nonempty columns in pairs, ignoring conflicts: invalid when they share a row."""
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    cols = problem.nonempty
    labels[cols] = np.arange(cols.size) // 2
    return Outcome(labels)


W_SMALL = np.array([[1.0, 0, 0, 2.0],
                    [0, 3.0, 0, 0],
                    [0, 0, -4.0, 0]])


def test_pack_singletons_is_valid_and_reports_bound(singletons):
    """A trivial solver's answer passes the checker and carries the lower bound."""
    r = arrange.pack(W_SMALL, alpha=4, solver=singletons)
    assert r.num_groups == 4
    assert r.lower_bound == 2  # row 0 has two nonzeros
    assert r.status == "feasible"
    assert np.array_equal(column_combine.decode(r.packed), W_SMALL)


def test_pack_rejects_conflicting_solver():
    """A solver that puts two columns sharing a row together with gamma=0 is caught."""
    # (a third column that fits with the first, so the instance is not trivially singletons)
    W = np.array([[1.0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    with pytest.raises(AssertionError, match="conflicts"):
        arrange.pack(W, alpha=2, solver=pairs)


def test_pack_gamma_prunes_the_smaller_weight():
    """With a conflict budget the cell keeps the larger weight and prunes the smaller."""
    W = np.array([[1.0, -5.0], [0, 2.0], [3.0, 0]])
    r = arrange.pack(W, alpha=2, gamma=0.34, solver=pairs)
    assert r.num_groups == 1
    assert r.pruned.tolist() == [[True, False], [False, False], [False, False]]
    assert r.pruned_magnitude == 1.0
    assert np.array_equal(column_combine.decode(r.packed), np.where(r.pruned, 0, W))
    assert r.packed.values[:, 0].tolist() == [-5.0, 2.0, 3.0]
    assert r.packed.select[:, 0].tolist() == [1, 1, 0]


def test_empty_columns_are_dropped(singletons):
    """All-zero columns get no group and no array column."""
    W = np.array([[0, 1.0, 0, 2.0], [0, 0, 0, 3.0]])
    r = arrange.pack(W, alpha=2, solver=singletons)
    assert r.labels.tolist() == [-1, 0, -1, 1]
    assert r.compression == 2.0


def _packed(W, groups, alpha):
    return column_combine.encode_groups(W, groups, alpha)


def test_checker_accepts_a_correct_packing():
    """A hand-made valid packing verifies and returns the pruned matrix."""
    W = np.array([[1.0, 0, 2.0], [0, 3.0, 0]])
    packed = _packed(W, [[0, 1], [2]], alpha=2)
    assert np.array_equal(verify_packing(W, packed, gamma=0.0), W)


@pytest.mark.parametrize("corrupt, message", [
    (lambda p: p.select.__setitem__((0, 0), 1), "largest|decode"),
    (lambda p: p.values.__setitem__((1, 0), 7.0), "decode"),
    (lambda p: p.table.__setitem__((1, 0), 0), "groups"),
    (lambda p: p.select.__setitem__((1, 1), 3), "select"),
])
def test_checker_rejects_corruption(corrupt, message):
    """Corrupted select indices, values or tables are rejected with a reason."""
    W = np.array([[1.0, 0, 2.0], [0, 3.0, 0]])
    packed = _packed(W, [[0, 1], [2]], alpha=2)
    corrupt(packed)
    with pytest.raises(VerificationError, match=message):
        verify_packing(W, packed, gamma=0.0)


def test_checker_rejects_oversize_group_and_missing_column():
    """Groups larger than alpha and columns left out are rejected."""
    W = np.array([[1.0, 0, 2.0], [0, 3.0, 0]])
    packed = _packed(W, [[0, 1], [2]], alpha=2)
    packed.alpha = 1
    with pytest.raises(VerificationError, match="alpha"):
        verify_packing(W, packed, gamma=0.0)
    packed = _packed(W, [[0, 1]], alpha=2)
    with pytest.raises(VerificationError, match="no group"):
        verify_packing(W, packed, gamma=0.0)


def test_checker_rejects_a_kept_entry_that_is_not_the_largest():
    """Keeping a smaller weight of a conflicting cell is rejected even if it decodes consistently."""
    W = np.array([[1.0, -5.0], [0, 2.0]])
    packed = _packed(W, [[0, 1]], alpha=2)
    packed.values[0, 0], packed.select[0, 0] = 1.0, 0
    with pytest.raises(VerificationError, match="largest"):
        verify_packing(W, packed, gamma=0.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=0), "alpha >= 1"),
    (dict(gamma=-0.1), "gamma >= 0"),
    (dict(alpha=2.5), "integer alpha"),
])
def test_pack_bad_parameters(singletons, kwargs, message):
    """Meaningless parameters raise ArrangeError naming them."""
    with pytest.raises(arrange.ArrangeError, match=message):
        arrange.pack(W_SMALL, solver=singletons, **kwargs)


@pytest.mark.parametrize("W, message", [
    (np.zeros((3, 4)), "all entries are zero"),
    (np.array([1.0, 2.0]), "2-D"),
    (np.zeros((2, 2, 2, 2, 2)), "2-D"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([[1.0, np.inf]]), "NaN/inf"),
    (np.zeros((0, 4)), "empty"),
])
def test_pack_bad_matrices(singletons, W, message):
    """Empty, all-zero, wrong-rank and non-finite matrices are refused in one line."""
    with pytest.raises(arrange.ArrangeError, match=message) as info:
        arrange.pack(W, solver=singletons)
    assert "\n" not in str(info.value)


def test_unknown_solver_lists_allowed():
    """An unknown solver name is refused with the list of allowed names."""
    with pytest.raises(arrange.ArrangeError, match="allowed"):
        arrange.pack(W_SMALL, solver="nope")


def test_bits_counts_values_select_and_table():
    """Bit cost: R*G values, R*G select indices, and the group table."""
    W = np.array([[1.0, 0, 2.0, 0], [0, 3.0, 0, 1.0]])
    p = _packed(W, [[0, 1], [2, 3]], alpha=2)
    b = column_combine.bits(p, value_bits=8)
    assert b == {"values": 2 * 2 * 8, "index": 2 * 2 * 1 + 4 * 2, "select": 4, "table": 8,
                 "dense": 2 * 4 * 8}


def test_group_wider_than_int16_round_trips():
    """A group of 40000 columns (select indices past 32767) decodes exactly and passes the checker."""
    N = 40000
    cols = np.arange(N)
    W = np.zeros((2, N))
    W[cols % 2, cols] = 1.0 + cols / N          # each row's largest entry sits past column 32767
    p = column_combine.encode_groups(W, [cols], alpha=N)
    assert p.select.max() == N - 1
    expected = verify_packing(W, p, gamma=N / 2)
    assert np.array_equal(column_combine.decode(p), expected)
    assert expected[0, N - 2] == W[0, N - 2] and expected[1, N - 1] == W[1, N - 1]
    assert column_combine.bits(p)["select"] == 2 * 16     # ceil(log2 40000) bits per cell


@st.composite
def sparse_matrices(draw):
    R = draw(st.integers(1, 8))
    N = draw(st.integers(1, 12))
    W = draw(hnp.arrays(np.int8, (R, N), elements=st.integers(-4, 4))).astype(np.float64)
    if not W.any():
        W[draw(st.integers(0, R - 1)), draw(st.integers(0, N - 1))] = 1.0
    return W


@settings(max_examples=60, deadline=None)
@given(W=sparse_matrices(), alpha=st.integers(1, 5), gamma=st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_roundtrip_property(singletons, W, alpha, gamma):
    """For any matrix and any registered fast solver, decode(pack(W)) is W minus the pruned entries."""
    for name in [s for s in ("ffd", "dsatur", "greedy-cc") if s in combine.SOLVERS] or [singletons]:
        r = arrange.pack(W, alpha=alpha, gamma=gamma, solver=name)
        decoded = column_combine.decode(r.packed)
        assert np.array_equal(decoded, np.where(r.pruned, 0, W))
        assert np.all(np.abs(W[r.pruned]) > 0)
        assert r.num_groups >= r.lower_bound
        assert all(len(g) <= alpha for g in r.groups)
