"""PENNI shared-kernel format: round trip, shrinking, counts, bit cost and bad input."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.formats import penni
from solvers import sparse_coding as sc


def conv(seed, O=6, I=5, k=3):
    return np.random.default_rng(seed).standard_normal((O, I, k, k))


def test_decode_is_the_reported_reconstruction():
    """decode reproduces the solver's reconstruction C B and the error the encoder reports."""
    W = conv(0)
    p = penni.encode(W, d=3, budget=40, iterations=2, shrink=False)
    X = W.reshape(30, 9)
    B = p.basis.reshape(3, 9)
    ref = (p.coefficients.reshape(30, 3) @ B).reshape(W.shape)
    D = penni.decode(p)
    assert np.array_equal(D, penni.decode(p))
    assert np.allclose(D, ref, atol=1e-12)
    assert p.stats["error"] == pytest.approx(np.sum((D - W) ** 2))
    assert p.stats["error"] == pytest.approx(p.stats["errors"][-1])
    B0, C0 = sc.svd_basis(X, 3)
    start = np.where(sc.global_support(C0, 40), C0, 0.0)
    assert p.stats["errors"][0] == pytest.approx(sc.error(X, B0, start))


def test_full_rank_round_trip_exact():
    """With d = k*k and dense coefficients the kernels come back (up to float rounding)."""
    W = conv(1, O=3, I=2)
    p = penni.encode(W, d=9, iterations=0)
    assert np.allclose(penni.decode(p), W, atol=1e-12)


def test_budget_respected_and_errors_non_increasing():
    """The support never exceeds the budget; the error falls through SVD, selection and ALS."""
    W = conv(2)
    for reselect in (False, True):
        p = penni.encode(W, d=4, density=0.3, iterations=3, reselect=reselect)
        assert p.nnz <= int(0.3 * 6 * 5 * 4)
        errs = p.stats["errors"]
        assert all(b <= a + 1e-9 for a, b in zip(errs, errs[1:]))


def test_shrinking_removes_zero_channels():
    """An all-zero output filter and an all-zero input channel are removed and decode to zero."""
    W = conv(3)
    W[1] = 0
    W[:, 3] = 0
    p = penni.encode(W, d=2, budget=30, iterations=1)
    assert p.removed_out.tolist() == [1]
    assert p.removed_in.tolist() == [3]
    assert p.coefficients.shape == (5, 4, 2)
    D = penni.decode(p)
    assert np.all(D[1] == 0) and np.all(D[:, 3] == 0)


def test_counts_hand_example():
    """Params, MACs and bits follow the docstring convention on a hand-checked support."""
    B = np.eye(9)[:2].reshape(2, 3, 3)
    mask = np.array([[[True, False], [False, False]], [[True, True], [False, True]]])
    p = penni.PENNIPacked(B, mask * 1.0, mask, np.array([0, 1]), np.array([0, 1]), (2, 2, 3, 3))
    assert penni.params(p) == {"basis": 18, "coefficients": 4, "total": 22, "dense": 36}
    # used (input, basis) pairs: (0,0), (0,1), (1,1) -> 3 * 9 MACs per pixel + 4 combine MACs
    assert penni.macs(p, out_pixels=10) == {"basis": 270, "combine": 40, "total": 310, "dense": 360}
    assert penni.bits(p) == {"values": 22 * 8, "index": 8 + 4, "support": 8, "channels": 4,
                             "dense": 288}


@pytest.mark.parametrize("kwargs, match", [
    ({"d": 10}, "d must be an integer in 1..9"),
    ({"d": 0}, "d must be an integer in 1..9"),
    ({"d": 2, "budget": -1}, "budget must be an integer >= 0"),
    ({"d": 2, "density": 1.5}, "density must be a number in"),
    ({"d": 2, "budget": 3, "density": 0.5}, "not both"),
    ({"d": 2, "method": "magic"}, "unknown support method"),
])
def test_bad_input(kwargs, match):
    """Bad d, budget, density or method give a one-line ArrangeError."""
    with pytest.raises(ArrangeError, match=match) as info:
        penni.encode(conv(0), **kwargs)
    assert "\n" not in str(info.value)


def test_simulate_uses_kept_channels():
    """The hwmodel mapping runs the basis GEMM over kept inputs and the combination over kept filters."""
    W = conv(6)
    W[0] = 0
    p = penni.encode(W, d=2, budget=20, iterations=0)
    c = penni.simulate(p, out_pixels=16, dataflow="os")
    assert c.combine.spec.N == p.out_channels.size == 5
    assert c.basis.spec.M == 16 * p.in_channels.size


def test_torch_modules_match_decoded_conv():
    """The two-conv torch module computes the conv with the decoded weights."""
    torch = pytest.importorskip("torch")
    W = conv(7, O=4, I=3)
    W[:, 1] = 0
    p = penni.encode(W, d=3, density=0.5, iterations=1)
    x = torch.as_tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    bias = np.arange(4.0)
    module = penni.penni_torch_modules(p, padding=1, bias=bias)
    ref = torch.nn.functional.conv2d(x, torch.as_tensor(penni.decode(p)), torch.as_tensor(bias), padding=1)
    assert torch.allclose(module(x), ref, atol=1e-10)
