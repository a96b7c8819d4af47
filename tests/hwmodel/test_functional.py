"""Functional execution: exact outputs against the masked dense product, cycles against timing."""

import numpy as np
import pytest

from hwmodel import HwModelError, dense_from_packed, execute_packed, schedule

DATAFLOWS = ["ws", "os", "is"]
ARRAYS = [(4, 3), (3, 5)]


def random_groups(n_cols, alpha, rng):
    """A random partition of n_cols columns into groups of at most alpha, as a -1 padded table."""
    perm = rng.permutation(n_cols)
    parts = []
    while len(perm):
        size = int(rng.integers(1, alpha + 1))
        parts.append(perm[:size])
        perm = perm[size:]
    table = -np.ones((len(parts), alpha), np.int64)
    for g, p in enumerate(parts):
        table[g, :len(p)] = p
    return table


def combined_layer(N, K, alpha, rng):
    """A masked dense W (N x K) with one weight per (filter, group) and its packed form."""
    groups = random_groups(K, alpha, rng)
    sizes = (groups >= 0).sum(axis=1)
    select = rng.integers(0, 1 << 20, (N, len(groups))) % sizes
    values = rng.integers(-128, 128, (N, len(groups)))
    W = np.zeros((N, K), np.int64)
    for n in range(N):
        for g in range(len(groups)):
            W[n, groups[g, select[n, g]]] = values[n, g]
    return W, values, select, groups, None


def subword_layer(N, K, alpha, rng):
    """Int8 sign-magnitude weights split into 4-bit subwords, subword columns combined.

    Returns the masked dense W (the subwords kept, shifted and summed per weight)
    and the packed arrays, groups holding each subword column's input column.
    """
    W8 = rng.integers(-127, 128, (N, K))
    sub_cols = np.array([(j, p) for j in range(K) for p in range(2)])
    groups_sub = random_groups(len(sub_cols), alpha, rng)
    sizes = (groups_sub >= 0).sum(axis=1)
    G = len(groups_sub)
    select = rng.integers(0, 1 << 20, (N, G)) % sizes
    values = np.zeros((N, G), np.int64)
    shifts = np.zeros((N, G), np.int64)
    W = np.zeros((N, K), np.int64)
    for n in range(N):
        for g in range(G):
            j, p = sub_cols[groups_sub[g, select[n, g]]]
            nibble = (abs(W8[n, j]) >> (4 * p)) & 15
            values[n, g] = np.sign(W8[n, j]) * nibble
            shifts[n, g] = 4 * p
            W[n, j] += values[n, g] << shifts[n, g]
    groups = np.where(groups_sub >= 0, sub_cols[np.maximum(groups_sub, 0), 0], -1)
    return W, values, select, groups, shifts


FORMATS = {
    "dense": lambda N, K, rng: combined_layer(N, K, 1, rng),
    "combined": lambda N, K, rng: combined_layer(N, K, 3, rng),
    "subword": lambda N, K, rng: subword_layer(N, K, 3, rng),
}


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_exact_outputs_and_cycles(dataflow, fmt, rows, cols):
    """Outputs equal acts @ W_masked.T exactly and cycles equal the timing model's."""
    rng = np.random.default_rng([DATAFLOWS.index(dataflow), list(FORMATS).index(fmt), rows, cols])
    for M, N, K in [(1, 1, 1), (7, 5, 11), (13, 9, 17)]:
        W, values, select, groups, shifts = FORMATS[fmt](N, K, rng)
        acts = rng.integers(-128, 128, (M, K))
        res = execute_packed(values, select, groups, acts, rows, cols, dataflow, shifts=shifts)
        assert np.array_equal(res.outputs, acts @ W.T)
        assert res.cycles == schedule(M, N, groups.shape[0], rows, cols, dataflow).cycles


def test_dense_subwords_reconstruct_int8():
    """Keeping every subword (alpha = 1) reproduces the int8 product exactly."""
    rng = np.random.default_rng(3)
    W, values, select, groups, shifts = subword_layer(6, 5, 1, rng)
    W8 = W.copy()
    assert np.abs(W8).max() <= 127
    acts = rng.integers(-128, 128, (4, 5))
    res = execute_packed(values, select, groups, acts, 4, 4, "ws", shifts=shifts)
    assert np.array_equal(res.outputs, acts @ W8.T)
    assert np.array_equal(dense_from_packed(values, select, groups, 5, shifts), W8)


def test_bad_functional_inputs():
    """Select indices outside the group, float activations and short activations are rejected."""
    groups = np.array([[0, -1], [1, 2]])
    acts = np.ones((2, 3), np.int64)
    with pytest.raises(HwModelError, match=r"select\[0, 0\]=1 points outside group 0"):
        execute_packed(np.ones((1, 2), int), np.array([[1, 0]]), groups, acts)
    with pytest.raises(HwModelError, match="acts must be an integer array"):
        execute_packed(np.ones((1, 2), int), np.zeros((1, 2), int), groups, acts * 1.0)
    with pytest.raises(HwModelError, match="groups index column 2 but acts has 2 columns"):
        execute_packed(np.ones((1, 2), int), np.zeros((1, 2), int), groups, acts[:, :2])
    with pytest.raises(HwModelError, match="dataflow must be one of"):
        execute_packed(np.ones((1, 2), int), np.zeros((1, 2), int), groups, acts, dataflow="x")
