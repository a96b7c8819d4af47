"""Zero-skipping FC engine: hand-checked counts, a slow reference, and errors."""

import numpy as np
import pytest

from hwmodel import HwModelError
from hwmodel.fc_engine import fc_energy, pe_column_loads, simulate_fc


def permdiag_mask(shifts, p):
    """Dense bool mask of p x p permuted-diagonal blocks with the given shifts."""
    Rb, Nb = shifts.shape
    M = np.zeros((Rb * p, Nb * p), dtype=bool)
    for i in range(Rb):
        for j in range(Nb):
            for c in range(p):
                M[i * p + c, j * p + (c + shifts[i, j]) % p] = True
    return M


def reference(mask, x, n_pe, macs_per_pe, assignment):
    """Cycle count by explicit loops over nonzero inputs and PEs."""
    R, N = mask.shape
    pe = [r % n_pe if assignment == "interleaved" else r * n_pe // R for r in range(R)]
    cycles = 0
    for j in range(N):
        if x[j] == 0:
            continue
        loads = [sum(1 for r in range(R) if mask[r, j] and pe[r] == q) for q in range(n_pe)]
        cycles += -(-max(loads) // macs_per_pe)
    return cycles


def test_permdiag_is_balanced_on_blocked_pes():
    """8x8, p=4, two PEs each holding one block row: one MAC per PE per column, full utilisation."""
    M = permdiag_mask(np.array([[0, 1], [2, 3]]), 4)
    r = simulate_fc(M, n_pe=2, assignment="blocked")
    assert (r.cycles, r.macs, r.mac_slots, r.utilization) == (8, 16, 16, 1.0)
    assert r.index_reads == 0 and r.output_writes == 8
    assert (pe_column_loads(M, 2, "blocked") == 1).all()


def test_zero_inputs_are_skipped():
    """Three zero inputs of eight save three columns of cycles and their MACs."""
    M = permdiag_mask(np.array([[0, 1], [2, 3]]), 4)
    x = np.array([1.0, 0, 2, 0, 3, 4, 0, 5])
    r = simulate_fc(M, x, n_pe=2, assignment="blocked")
    assert (r.cycles, r.macs, r.weight_reads, r.act_broadcasts) == (5, 10, 10, 5)
    dense = simulate_fc(M, x, n_pe=2, assignment="blocked", skip_zero_inputs=False)
    assert (dense.cycles, dense.macs, dense.weight_reads) == (8, 10, 16)


@pytest.mark.parametrize("assignment", ["interleaved", "blocked"])
@pytest.mark.parametrize("n_pe,macs_per_pe", [(1, 1), (3, 1), (4, 2)])
def test_matches_slow_reference(assignment, n_pe, macs_per_pe):
    """Random sparse weights and a batch of ReLU-like inputs agree with the loop reference."""
    rng = np.random.default_rng(n_pe)
    mask = rng.random((10, 12)) < 0.3
    X = np.maximum(rng.standard_normal((3, 12)), 0)
    r = simulate_fc(mask, X, n_pe=n_pe, macs_per_pe=macs_per_pe, assignment=assignment,
                    index_per_weight=True, pipeline_cycles=2)
    assert r.cycles == sum(reference(mask, x, n_pe, macs_per_pe, assignment) for x in X) + 3 * 2
    assert r.macs == int(((X != 0).astype(int) @ mask.T.astype(int)).sum())
    assert r.index_reads == r.weight_reads == r.macs
    assert r.vectors == 3


def test_empty_columns_cost_skip_cycles():
    """A column without weights costs skip_cycles when its input is nonzero."""
    M = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert simulate_fc(M, n_pe=2).cycles == 1
    assert simulate_fc(M, n_pe=2, skip_cycles=1).cycles == 2


def test_energy_by_hand():
    """16 MACs of 8x8 bits at 0.3 pJ; SRAM: 16 weights + 8 inputs at 8 bits, 8 outputs at 32 bits."""
    M = permdiag_mask(np.array([[0, 1], [2, 3]]), 4)
    e = fc_energy(simulate_fc(M, n_pe=2, assignment="blocked"))
    assert e["mac"] == pytest.approx(16 * 0.3)
    assert e["sram"] == pytest.approx((16 * 8 + 8 * 8 + 8 * 32) / 64 * 10.0)


def test_bad_inputs():
    """Wrong input length, bad PE count and unknown assignment are one-line errors."""
    with pytest.raises(HwModelError, match="4 entries per vector"):
        simulate_fc(np.ones((2, 4)), np.ones(3))
    with pytest.raises(HwModelError, match="n_pe must be an integer >= 1"):
        simulate_fc(np.ones((2, 4)), n_pe=0)
    with pytest.raises(HwModelError, match="assignment must be one of"):
        simulate_fc(np.ones((2, 4)), assignment="random")
