"""A multi-PE fully connected engine that skips zero inputs (PermDNN's / EIE's dataflow).

Problem: count the cycles and the work of y = W x on an engine of ``n_pe``
processing elements, for a sparse or structured weight W (R x N) and input
vectors with zeros (ReLU outputs), dense vs packed, on the same engine.

Model (column-wise, input-stationary broadcast, as in PermDNN section 4 and EIE):
- output rows are distributed over the PEs, row r to PE r mod n_pe
  ("interleaved", EIE's and PermDNN's choice) or in contiguous runs ("blocked");
- the engine scans the input vector and broadcasts only its nonzero entries;
  for a broadcast x_j every PE multiplies x_j by the nonzeros of column j in its
  own rows, ``macs_per_pe`` per cycle, so column j takes
  max over PEs of ceil(nnz(column j in the PE) / macs_per_pe) cycles and the
  PEs wait for the slowest (the synchronisation of both designs);
  a column with no weight in any PE costs ``skip_cycles`` (0: the zero-column
  check is overlapped);
- a permuted-diagonal matrix has exactly R/p nonzeros in every column, one per
  block row, so when every PE holds whole block rows ("blocked", n_pe dividing
  R/p) each PE has the same load in every column: balanced by construction;
  its index is computed from one shift per block (no per-weight index reads),
  whereas a CSC layout (EIE) reads one relative index per weight.
Counts returned: cycles, useful MACs (nonzero weight x nonzero input), MAC
slots (cycles x n_pe x macs_per_pe), weight reads, index reads, activation
broadcasts and output writes; energy follows from these with per-access costs
(:func:`fc_energy`, priced with :mod:`hwmodel.energy`'s table: Horowitz, ISSCC
2014).  ``pipeline_cycles`` adds a fixed fill latency per input vector.

References: C. Deng, S. Liao, Y. Xie, K. K. Parhi, X. Qian, B. Yuan, "PermDNN:
Efficient Compressed DNN Architecture with Permuted Diagonal Matrices",
MICRO 2018, doi:10.1109/MICRO.2018.00024; S. Han et al., "EIE: Efficient
Inference Engine on Compressed Deep Neural Network", ISCA 2016,
doi:10.1109/ISCA.2016.30.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.energy import energy_table
from hwmodel.validation import HwModelError, check_int

__all__ = ["FCResult", "simulate_fc", "pe_column_loads", "fc_energy"]

ASSIGNMENTS = ("interleaved", "blocked")


@dataclass(frozen=True)
class FCResult:
    """Cycles and access counts of a batch of input vectors on the FC engine."""

    cycles: int
    macs: int               # useful: nonzero weight times nonzero input
    mac_slots: int          # cycles * n_pe * macs_per_pe
    weight_reads: int       # weights fetched (one per MAC performed, zero inputs skipped)
    index_reads: int        # per-weight index words read (0 when indices are computed)
    act_broadcasts: int     # nonzero inputs broadcast to the PEs
    output_writes: int      # R per input vector
    n_pe: int
    vectors: int

    @property
    def utilization(self) -> float:
        """Useful MACs per MAC slot."""
        return self.macs / self.mac_slots if self.mac_slots else 0.0


def _mask(weights) -> np.ndarray:
    arr = np.asarray(weights)
    if arr.ndim != 2 or 0 in arr.shape:
        raise HwModelError(f"weights must be a non-empty 2-D matrix, got shape {arr.shape}")
    return np.ascontiguousarray(arr != 0)


def _pe_of_rows(R: int, n_pe: int, assignment: str) -> np.ndarray:
    if assignment == "interleaved":
        return np.arange(R) % n_pe
    return np.arange(R) * n_pe // R


def pe_column_loads(weights, n_pe: int, assignment: str = "interleaved") -> np.ndarray:
    """(n_pe, N) int64: nonzero weights of each column held by each PE."""
    n_pe = check_int("n_pe", n_pe)
    if assignment not in ASSIGNMENTS:
        raise HwModelError(f"assignment must be one of {', '.join(ASSIGNMENTS)}; got {assignment!r}")
    mask = _mask(weights)
    loads = np.zeros((n_pe, mask.shape[1]), dtype=np.int64)
    np.add.at(loads, _pe_of_rows(mask.shape[0], n_pe, assignment), mask.astype(np.int64))
    return loads


def simulate_fc(weights, inputs=None, n_pe: int = 16, macs_per_pe: int = 1, skip_zero_inputs: bool = True,
                index_per_weight: bool = False, assignment: str = "interleaved", skip_cycles: int = 0,
                pipeline_cycles: int = 0) -> FCResult:
    """Cycles and counts of y = W x for each input vector on the zero-skipping FC engine.

    Parameters
    ----------
    weights : (R, N) array; its nonzeros are the stored weights (a bool mask works).
    inputs : (N,) or (B, N) input vectors (only their zeros matter); None = one dense vector.
    n_pe, macs_per_pe : PEs and multipliers per PE.
    skip_zero_inputs : broadcast only nonzero inputs (False: every column is processed).
    index_per_weight : each weight read also reads an index word (CSC, as EIE);
        False for PermDNN, whose indices come from the block shifts.
    assignment : "interleaved" (row r on PE r mod n_pe) or "blocked".
    skip_cycles : cycles a column with no nonzero weight still costs.
    pipeline_cycles : fixed latency added per input vector.

    Returns
    -------
    FCResult

    Examples
    --------
    >>> simulate_fc(np.eye(4), n_pe=2).cycles
    4
    """
    n_pe, macs_per_pe = check_int("n_pe", n_pe), check_int("macs_per_pe", macs_per_pe)
    skip_cycles = check_int("skip_cycles", skip_cycles, minimum=0)
    pipeline_cycles = check_int("pipeline_cycles", pipeline_cycles, minimum=0)
    mask = _mask(weights)
    R, N = mask.shape
    x = np.ones((1, N)) if inputs is None else np.asarray(inputs)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] != N:
        raise HwModelError(f"inputs must have {N} entries per vector, got shape {np.shape(inputs)}")
    loads = pe_column_loads(mask, n_pe, assignment)
    per_col = -(-loads.max(axis=0) // macs_per_pe)
    per_col = np.where(per_col == 0, skip_cycles, per_col)
    active = (x != 0) if skip_zero_inputs else np.ones(x.shape, dtype=bool)
    col_nnz = mask.sum(axis=0)
    B = x.shape[0]
    cycles = int((active * per_col).sum()) + B * pipeline_cycles
    nonzero = x != 0
    performed = int((active * col_nnz).sum())
    return FCResult(
        cycles=cycles, macs=int((nonzero * col_nnz).sum()), mac_slots=cycles * n_pe * macs_per_pe,
        weight_reads=performed, index_reads=performed if index_per_weight else 0,
        act_broadcasts=int(active.sum()), output_writes=B * R, n_pe=n_pe, vectors=B,
    )


def fc_energy(result: FCResult, weight_bits: int = 8, act_bits: int = 8, index_bits: int = 4,
              energy=None) -> dict:
    """Energy breakdown in pJ: MACs performed, and SRAM bits of weights, indices, inputs, outputs.

    Every performed MAC (zero inputs skipped) costs a ``weight_bits`` x
    ``act_bits`` multiply and a 32-bit add; SRAM is charged per bit moved at the
    table's 64-bit access cost (outputs written as 32-bit sums); ``energy`` is a
    table accepted by :func:`hwmodel.energy.energy_table`.
    """
    table = energy_table(energy)
    weight_bits, act_bits = check_int("weight_bits", weight_bits), check_int("act_bits", act_bits)
    index_bits = check_int("index_bits", index_bits, minimum=0)
    per_mac = table["mult_8x8"] * weight_bits * act_bits / 64 + table["add_32"]
    sram_bits = (result.weight_reads * weight_bits + result.index_reads * index_bits
                 + result.act_broadcasts * act_bits + result.output_writes * 32)
    return {"mac": result.weight_reads * per_mac, "sram": sram_bits / 64 * table["sram_access_64b"]}
