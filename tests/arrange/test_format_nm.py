"""N:M format with channel permutation: round trip, bits, mask, errors, function preservation."""

import dataclasses

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.formats import nm

# A registered P2 solver that exists regardless of the portfolio's "auto".
SOLVER = "lns"


def per_group_counts(packed, M):
    """Kept entries per (row, group of m permuted columns)."""
    R, N = packed.shape
    order = np.arange(N) if packed.order is None else packed.order
    return M[:, order].reshape(R, N // packed.m, packed.m).sum(axis=2)


@pytest.mark.parametrize("permute", [False, True])
@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (1, 2), (3, 8)])
def test_round_trip_and_exact_n_per_group(n, m, permute):
    """decode(encode(W)) is W on the mask, and the mask keeps exactly n per permuted m-group."""
    W = np.random.default_rng(n * 10 + m).standard_normal((6, 16))
    packed = nm.encode(W, n, m, permute=permute, solver=SOLVER, time_limit=0.5)
    M = nm.mask(packed)
    assert np.array_equal(nm.decode(packed), np.where(M, W, 0))
    assert (per_group_counts(packed, M) == n).all()
    assert packed.kept == pytest.approx(np.abs(nm.decode(packed)).sum())
    assert packed.kept >= packed.identity_kept - 1e-9


def test_keeps_the_n_largest_per_group():
    """Without permutation, 2:4 keeps the two largest magnitudes of each group of four."""
    W = np.array([[1.0, -5.0, 3.0, 2.0, 0.0, 0.0, 7.0, -1.0]])
    packed = nm.encode_order(W, 2, 4)
    assert nm.decode(packed).tolist() == [[0.0, -5.0, 3.0, 0.0, 0.0, 0.0, 7.0, -1.0]]
    assert packed.indices.tolist() == [[1, 2, 2, 3]]
    assert packed.values.tolist() == [[-5.0, 3.0, 7.0, -1.0]]


def test_permutation_gathers_large_weights():
    """A hand-made order groups the large columns apart; decode still returns original order."""
    W = np.array([[9.0, 8.0, 1.0, 1.0], [1.0, 1.0, 9.0, 8.0]])
    identity = nm.encode_order(W, 1, 2)
    swapped = nm.encode_order(W, 1, 2, order=[0, 2, 1, 3])
    assert np.abs(nm.decode(identity)).sum() == 20.0
    assert np.abs(nm.decode(swapped)).sum() == 34.0
    assert nm.decode(swapped).tolist() == [[9.0, 8.0, 0.0, 0.0], [0.0, 0.0, 9.0, 8.0]]


def test_bits_by_hand():
    """4x8 at 2:4: 16 values, 2-bit positions; the order costs 8 * 3 bits unless folded."""
    W = np.random.default_rng(0).standard_normal((4, 8))
    packed = nm.encode_order(W, 2, 4, order=np.arange(8)[::-1])
    b = nm.bits(packed)
    assert b == {"values": 128, "index": 32 + 24, "positions": 32, "permutation": 24, "dense": 256}
    assert nm.bits(packed, store_order=False)["index"] == 32
    assert nm.bits(nm.encode_order(W, 2, 4), value_bits=16)["values"] == 256


def test_groups_wider_than_int8_round_trip():
    """m = 200: positions past 127 decode into their own columns, and cost ceil(log2 200) = 8 bits."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((3, 400))
    W[:, 150:153] *= 100.0                # the kept three of the first group sit past position 127
    packed = nm.encode_order(W, 3, 200)
    assert packed.indices.max() >= 150
    keep = np.zeros(W.shape, dtype=bool)
    for g in range(2):
        cells = np.abs(W[:, g * 200:(g + 1) * 200])
        top = np.argsort(-cells, axis=1, kind="stable")[:, :3]
        np.put_along_axis(keep[:, g * 200:(g + 1) * 200], top, True, axis=1)
    assert np.array_equal(nm.decode(packed), np.where(keep, W, 0))
    assert nm.bits(packed)["positions"] == packed.values.size * 8


def test_verifier_catches_a_wrapped_position():
    """Positions stored in too narrow a dtype (200 wraps to -56 in int8) are refused, not decoded."""
    from arrange.errors import VerificationError

    W = np.random.default_rng(6).standard_normal((2, 200))
    W[:, 180] = 50.0
    packed = nm.encode_order(W, 1, 200)
    wrapped = dataclasses.replace(packed, indices=packed.indices.astype(np.int8))
    with pytest.raises(VerificationError, match="outside 0..199"):
        nm.verify(W, wrapped)
    shifted = dataclasses.replace(packed, indices=packed.indices - 1)
    with pytest.raises(VerificationError, match="not the matrix entries"):
        nm.verify(W, shifted)


def test_padding_columns():
    """N not a multiple of m is padded; decode returns the original width."""
    W = np.random.default_rng(1).standard_normal((3, 10))
    packed = nm.encode(W, 2, 4, solver=SOLVER, time_limit=0.5)
    assert packed.padded == 2
    M = nm.mask(packed)
    assert nm.decode(packed).shape == (3, 10)
    assert np.array_equal(nm.decode(packed), np.where(M, W, 0))


def test_values_at_reads_the_stored_slots_on_padding():
    """Re-reading the weights at the stored slots gives back the packed values, also where a
    group's kept slots fall on padding columns (a row with fewer than n nonzeros there)."""
    W = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 0.0, 2.0, 0.0]])
    packed = nm.encode_order(W, 2, 4, None)
    assert packed.padded == 3
    assert np.array_equal(nm.values_at(packed, W), packed.values)
    assert np.array_equal(nm.values_at(packed, 2 * W), 2 * packed.values)


@pytest.mark.parametrize("n,m", [(4, 4), (5, 4), (1, 1), (0, 4), (2.0, 4)])
def test_bad_params_one_line_error(n, m):
    """n >= m, m < 2, n < 1 and non-integers are refused in one line."""
    with pytest.raises(ArrangeError, match="nm: ") as err:
        nm.encode(np.ones((4, 8)), n, m)
    assert "\n" not in str(err.value)


def test_fold_preserves_two_layer_function():
    """Permuting B's columns and A's rows/bias by the same order leaves B relu(A x + a) unchanged."""
    rng = np.random.default_rng(2)
    A, a, B = rng.standard_normal((16, 5)), rng.standard_normal(16), rng.standard_normal((3, 16))
    X = rng.standard_normal((5, 7))
    packed = nm.encode(B, 2, 4, solver=SOLVER, time_limit=0.5)
    A2, a2 = nm.permute_producer(A, a, packed.order)

    def net(Wa, ba, Wb):
        return Wb @ np.maximum(Wa @ X + ba[:, None], 0)

    assert np.allclose(net(A2, a2, nm.permute_consumer(B, packed.order)), net(A, a, B))
    # The hardware runs the packed layer in permuted order on the permuted producer.
    assert np.allclose(net(A2, a2, nm.decode_permuted(packed)), net(A, a, nm.decode(packed)))


def test_fold_rejects_wrong_order():
    """An order of the wrong length is refused."""
    with pytest.raises(ArrangeError, match="permutation of the 4 channels"):
        nm.permute_producer(np.ones((4, 2)), None, [0, 1, 2])


torch = pytest.importorskip("torch")


def test_mask_works_with_torch_prune():
    """custom_from_mask with nm.mask gives a Linear weight equal to decode, n per permuted group."""
    from torch.nn.utils import prune

    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    W = layer.weight.detach().numpy().astype(np.float64)
    packed = nm.encode(W, 2, 4, solver=SOLVER, time_limit=0.5)
    prune.custom_from_mask(layer, "weight", torch.from_numpy(nm.mask(packed)))
    pruned = layer.weight.detach().numpy()
    assert np.allclose(pruned, nm.decode(packed))
    assert (per_group_counts(packed, pruned != 0) == 2).all()
