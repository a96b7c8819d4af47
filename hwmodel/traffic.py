"""SRAM and DRAM traffic of a (dense or packed) layer under a fold schedule.

Problem: count the words each operand (ifmap, filter, ofmap) moves between the
array and its SRAM buffers, and the bits moved from DRAM, for the schedule of
:mod:`hwmodel.timing`.

Method: the stationary operand is read once; a streamed operand is re-read
once per fold along the array dimension it is not laid on; when the reduction
is split over row folds (``ws``, ``is``) every row fold writes partial sums and
every fold after the first reads them back.  For dense layers these are the
non-padding entries of SCALE-Sim 3.0.0's per-fold demand matrices.  A packed
column carries ``fan_in`` input streams, so the ifmap is read once per group
that uses a column: min(K_packed * fan_in, K * weight_bits / subword_bits) input
columns per pass.  DRAM traffic is compulsory traffic (each operand moved once,
buffers assumed large enough): activations and outputs at ``act_bits``, weights
as stored, values plus index bits.  SRAM partial sums are ``PSUM_BITS`` wide.

Reference: A. Samajdar et al., "A systematic methodology for characterizing
scalability of DNN accelerators using SCALE-Sim", ISPASS 2020,
doi:10.1109/ISPASS48437.2020.00016.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodel.packed import LayerSpec
from hwmodel.timing import Schedule

__all__ = ["PSUM_BITS", "Traffic", "layer_traffic"]

#: Width of a partial sum in the ofmap buffer (accumulator width).
PSUM_BITS = 32


@dataclass(frozen=True)
class Traffic:
    """Per-operand traffic of one layer.

    Attributes
    ----------
    sram_reads, sram_writes : words per operand, keys "ifmap", "filter", "ofmap"
        (ifmap/filter writes are the fills from DRAM).
    sram_bits : bits read plus written per operand.
    dram_bits : bits moved from/to DRAM per operand; "filter" includes index bits.
    dram_index_bits : the index (metadata) part of ``dram_bits["filter"]``.
    """

    sram_reads: dict
    sram_writes: dict
    sram_bits: dict
    dram_bits: dict
    dram_index_bits: int


def _stream_columns(spec: LayerSpec) -> int:
    """Input columns read per pass over the reduction (each once per group using it)."""
    parts = spec.weight_bits // spec.subword_bits if spec.subword_bits else 1
    return min(spec.K_packed * spec.fan_in, spec.K * parts)


def layer_traffic(spec: LayerSpec, sched: Schedule) -> Traffic:
    """Traffic of ``spec`` run with fold schedule ``sched`` (built for M, N, K_array).

    Every packed value is read, lanes or not; partial sums move once per row fold.
    """
    M, N, Kp = spec.M, spec.N, spec.K_packed
    ifmap_pass = M * _stream_columns(spec)
    filters = N * Kp
    outputs = M * N
    if sched.dataflow == "os":
        reads = {"ifmap": ifmap_pass * sched.col_folds, "filter": filters * sched.row_folds, "ofmap": 0}
        psum_writes = outputs
    elif sched.dataflow == "ws":
        reads = {"ifmap": ifmap_pass * sched.col_folds, "filter": filters,
                 "ofmap": outputs * (sched.row_folds - 1)}
        psum_writes = outputs * sched.row_folds
    else:
        reads = {"ifmap": ifmap_pass, "filter": filters * sched.col_folds,
                 "ofmap": outputs * (sched.row_folds - 1)}
        psum_writes = outputs * sched.row_folds
    writes = {"ifmap": spec.ifmap_words, "filter": filters, "ofmap": psum_writes}
    filter_bits = spec.value_bits + spec.index_bits
    sram_bits = {
        "ifmap": (reads["ifmap"] + writes["ifmap"]) * spec.act_bits,
        "filter": (reads["filter"] + writes["filter"]) * filter_bits,
        "ofmap": (reads["ofmap"] + writes["ofmap"]) * PSUM_BITS,
    }
    dram_bits = {
        "ifmap": spec.ifmap_words * spec.act_bits,
        "filter": spec.weight_storage_bits,
        "ofmap": outputs * spec.act_bits,
    }
    return Traffic(reads, writes, sram_bits, dram_bits, N * Kp * spec.index_bits)
