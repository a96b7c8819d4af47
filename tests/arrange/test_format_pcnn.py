"""PCNN pattern format: round trip, SPM bit cost, n per layer and bad input."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.formats import pcnn
from solvers import knapsack


def conv(seed, O=4, I=3, k=3):
    return np.random.default_rng(seed).standard_normal((O, I, k, k))


@pytest.mark.parametrize("solver", ["greedy", "cpsat", "frequency"])
def test_round_trip(solver):
    """decode gives back exactly the kept weights: n per kernel, in one of <= K patterns."""
    W = conv(0)
    p = pcnn.encode(W, n=4, K=3, solver=solver, time_limit=1.0)
    D = pcnn.decode(p)
    kept = D != 0
    assert np.array_equal(D[kept], W[kept])
    masks = p.table[p.ids].reshape(W.shape)
    assert np.all(masks.sum(axis=(2, 3)) == 4)
    assert np.array_equal(D, np.where(masks, W, 0))
    assert len({m.tobytes() for m in masks.reshape(-1, 9)}) <= 3
    assert p.stats["value"] == pytest.approx(np.sum(D ** 2))


def test_best_pattern_per_kernel():
    """Each kernel keeps the most energy among the chosen patterns."""
    W = conv(1, O=5, I=4)
    p = pcnn.encode(W, n=3, K=4)
    e = (W ** 2).reshape(20, 9) @ p.table.T.astype(float)
    assert np.allclose(e[np.arange(20), p.ids.ravel()], e.max(axis=1))


def test_bits_hand_example():
    """2x3 kernels of 3x3, n=4, K'=3 patterns: values 6*4*8, index 6*2 ids + 3*9 table bits."""
    W = np.zeros((2, 3, 3, 3))
    for r, pos in enumerate([[0, 1, 2, 3], [5, 6, 7, 8], [0, 2, 6, 8]]):
        W.reshape(6, 9)[r, pos] = 1.0
        W.reshape(6, 9)[r + 3, pos] = 2.0
    p = pcnn.encode(W, n=4, K=3, solver="cpsat", time_limit=1.0)
    assert p.num_patterns == 3
    assert pcnn.bits(p) == {"values": 192, "index": 12 + 27, "ids": 12, "table": 27, "dense": 432}
    assert np.array_equal(pcnn.decode(p), W)


def test_single_pattern_needs_no_ids():
    """With K = 1 the ids cost nothing and only the table is stored."""
    p = pcnn.encode(conv(2), n=2, K=1)
    assert pcnn.bits(p)["ids"] == 0 and pcnn.bits(p)["table"] == 9


def test_choose_n_matches_brute_force():
    """The knapsack's n per layer is the best feasible combination of the per-layer kept energies."""
    layers = [conv(3, O=3, I=2), conv(4, O=2, I=2)]
    budget = 40
    ns = pcnn.choose_n(layers, budget, K=2, choices=[2, 4, 6])
    kept = [[pcnn.encode(W, n=c, K=2).stats["value"] for c in (2, 4, 6)] for W in layers]
    costs = [np.array([2, 4, 6]) * W.shape[0] * W.shape[1] for W in layers]
    ref = knapsack.brute_force(costs, kept, budget)
    assert ns == [(2, 4, 6)[i] for i in ref.choice]
    assert sum(n * W.shape[0] * W.shape[1] for n, W in zip(ns, layers)) <= budget


@pytest.mark.parametrize("W, kwargs, match", [
    (np.ones((2, 2, 1, 1)), {"n": 1, "K": 1}, "PCNN needs kernels larger than 1x1, got 1x1"),
    (np.ones((2, 2, 3, 3)), {"n": 10, "K": 1}, "n must be an integer in 1..9"),
    (np.ones((2, 2, 3, 3)), {"n": 0, "K": 1}, "n must be an integer in 1..9"),
    (np.ones((2, 2, 3, 3)), {"n": 2, "K": 0}, "K must be an integer >= 1"),
    (np.ones((2, 9)), {"n": 2, "K": 1}, "expects conv weights"),
    (np.ones((2, 2, 3, 3)), {"n": 2, "K": 1, "solver": "magic"}, "unknown pattern solver"),
])
def test_bad_input(W, kwargs, match):
    """1x1 kernels, n out of range, K < 1, wrong rank and unknown solvers give one-line ArrangeError."""
    with pytest.raises(ArrangeError, match=match) as info:
        pcnn.encode(W, **kwargs)
    assert "\n" not in str(info.value)


def test_choose_n_rejects_tight_budget():
    """A budget below n=1 everywhere is refused clearly."""
    with pytest.raises(ArrangeError, match="below the cheapest"):
        pcnn.choose_n([conv(0)], 5, K=1)


def test_simulate_maps_to_packed_gemm():
    """The hwmodel mapping runs the layer with reduction n * I on the array."""
    p = pcnn.encode(conv(5, O=8, I=4), n=3, K=2)
    c = pcnn.simulate(p, out_pixels=49, dataflow="os")
    assert c.packed.spec.K_packed == 12 and c.dense.spec.K == 36
