"""PermDNN format: round trip, structure, bit costs, padding, errors, and the torch layer."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.formats import permdnn


def structure_ok(packed):
    """Every p x p block of the permuted mask lies on its shift's diagonal (all of it without padding)."""
    p = packed.p
    Rp, Np = packed.padded_shape
    full = np.zeros((Rp, Np), dtype=bool)
    R, N = packed.shape
    full[:R, :N] = permdnn.mask(packed)
    rows = np.arange(Rp) if packed.row_order is None else packed.row_order
    cols = np.arange(Np) if packed.col_order is None else packed.col_order
    blocks = full[np.ix_(rows, cols)].reshape(Rp // p, p, Np // p, p).swapaxes(1, 2)
    c = np.arange(p)
    for i in range(Rp // p):
        for j in range(Np // p):
            k = packed.shifts[i, j]
            expect = np.zeros((p, p), dtype=bool)
            expect[c, (c + k) % p] = True
            # padding cells may fall on the diagonal; they are never kept in the R x N view
            if (blocks[i, j] & ~expect).any() or (packed.padded == (0, 0) and (expect & ~blocks[i, j]).any()):
                return False
    return True


@pytest.mark.parametrize("permute", [False, True])
@pytest.mark.parametrize("shape,p", [((8, 12), 4), ((6, 6), 3), ((5, 7), 2)])
def test_round_trip_is_w_masked_by_structure(shape, p, permute):
    """decode(encode(W)) equals W on the structure's positions and zero elsewhere, exactly."""
    W = np.random.default_rng(0).standard_normal(shape)
    packed = permdnn.encode(W, p, permute=permute, time_limit=1)
    M = permdnn.mask(packed)
    assert np.array_equal(permdnn.decode(packed), np.where(M, W, 0))
    assert structure_ok(packed)
    assert packed.kept_energy == pytest.approx((permdnn.decode(packed) ** 2).sum())
    assert packed.kept_energy >= packed.unpermuted_energy - 1e-9


def test_compression_is_exactly_p_without_padding():
    """Each row keeps N/p and each column R/p weights: p-fold compression."""
    W = np.random.default_rng(1).standard_normal((8, 12)) + 5
    packed = permdnn.encode(W, 4, time_limit=1)
    M = permdnn.mask(packed)
    assert packed.compression == 4
    assert (M.sum(axis=1) == 3).all() and (M.sum(axis=0) == 2).all()
    assert packed.message == "" and packed.padded == (0, 0)


def test_unpermuted_shift_is_best_diagonal():
    """Without permutation, a 2x2 block keeps its heavier diagonal."""
    W = np.array([[1.0, 9.0], [3.0, 4.0]])
    packed = permdnn.encode(W, 2, permute=False)
    assert packed.shifts.tolist() == [[1]]
    assert permdnn.decode(packed).tolist() == [[0.0, 9.0], [3.0, 0.0]]


def test_bits_by_hand():
    """A 4x8 matrix, p=4: 8 values, 2 shifts of 2 bits; permutations 4*2 + 8*3 bits."""
    W = np.random.default_rng(2).standard_normal((4, 8))
    plain = permdnn.encode(W, 4, permute=False)
    assert permdnn.bits(plain) == {"values": 64, "index": 4, "shifts": 4, "permutation": 0, "dense": 256}
    perm = permdnn.encode(W, 4, permute=True, time_limit=1)
    b = permdnn.bits(perm, value_bits=16)
    assert b["values"] == 128 and b["shifts"] == 4 and b["permutation"] == 4 * 2 + 8 * 3
    assert b["index"] == 4 + 32


def test_padding_is_announced():
    """A 5x7 matrix with p=4 is padded to 8x8 and the message says so."""
    W = np.random.default_rng(3).standard_normal((5, 7))
    packed = permdnn.encode(W, 4, permute=False)
    assert packed.padded == (3, 1) and packed.padded_shape == (8, 8)
    assert "padded with 3 zero rows and 1 zero columns" in packed.message
    assert permdnn.decode(packed).shape == (5, 7)


@pytest.mark.parametrize("p", [0, -2, 1.5, True])
def test_bad_p_is_one_line_error(p):
    """p must be an integer >= 1."""
    with pytest.raises(ArrangeError, match="p must be an integer >= 1") as err:
        permdnn.encode(np.ones((4, 4)), p)
    assert "\n" not in str(err.value)


def test_bad_matrix_and_solver():
    """A 1-D array and an unknown solver name are refused in one line."""
    with pytest.raises(ArrangeError, match="2-D"):
        permdnn.encode(np.ones(4), 2)
    with pytest.raises(ArrangeError, match="unknown permdiag solver"):
        permdnn.encode(np.ones((4, 4)), 2, solver="nope")


torch = pytest.importorskip("torch")


def test_permdiag_linear_has_structure_and_round_trips():
    """The layer's weight is a permuted-diagonal matrix; to_packed / from_packed preserve it."""
    from arrange.torch_layers import PermDiagLinear

    layer = PermDiagLinear(10, 6, 4, seed=1)
    W = layer.weight.detach().numpy()
    packed = layer.to_packed()
    assert structure_ok(packed)
    assert np.array_equal(permdnn.decode(packed), W)
    assert np.array_equal(W != 0, permdnn.mask(packed))
    again = PermDiagLinear.from_packed(packed)
    assert np.array_equal(again.weight.detach().numpy(), W)


def test_permdiag_linear_trains_and_keeps_structure():
    """A few Adam steps on a toy regression lower the loss; zeros stay zero."""
    from arrange.torch_layers import PermDiagLinear

    torch.manual_seed(0)
    layer = PermDiagLinear(8, 8, 2, seed=0)
    zeros = layer.weight.detach() == 0
    X = torch.randn(64, 8)
    T = X @ torch.randn(8, 8)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = ((layer(X) - T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert bool((layer.weight.detach()[zeros] == 0).all())


def test_permdiag_linear_from_projected_permuted_matrix():
    """A projected matrix with permutations loads into the layer with the same weight."""
    from arrange.torch_layers import PermDiagLinear

    W = np.random.default_rng(4).standard_normal((6, 10)).astype(np.float32)
    packed = permdnn.encode(W, 4, time_limit=1)
    layer = PermDiagLinear.from_packed(packed, bias=np.zeros(6))
    assert np.allclose(layer.weight.detach().numpy(), permdnn.decode(packed))
