"""One layer on the array: cycles, utilisation, traffic and energy, dense vs packed.

Problem: report what a (dense or packed) layer costs on an R x C systolic
array, and how a packed arrangement compares with the dense layer on the same
array.

Method: a packed layer runs as a GEMM whose reduction length is the number of
PE positions it needs, ``K_array`` = ceil(K_packed / lanes)
(:mod:`hwmodel.timing`, SCALE-Sim 3.0.0 stall-free formulas); traffic from
:mod:`hwmodel.traffic`, energy from :mod:`hwmodel.energy`.  Utilisation counts
useful MACs only, in dense-weight units: useful_macs / (cycles * R * C) (a PE
with subword lanes can finish up to ``lanes`` weights a cycle, so a subword
layer can exceed 1).  Everything is closed form, O(1) per layer.

Reference: SCALE-Sim v3, https://github.com/scalesim-project/scale-sim-v3 .
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodel.energy import energy_table, layer_energy
from hwmodel.packed import LayerSpec, conv_gemm_sizes, dense_layer
from hwmodel.timing import schedule
from hwmodel.traffic import layer_traffic

__all__ = ["Cost", "LayerResult", "Comparison", "simulate_layer", "simulate_gemm", "simulate_conv",
           "compare_layer"]


@dataclass(frozen=True)
class Cost:
    """Cycles, energy (pJ) and useful MACs of some work on one engine; costs add.

    A model's utilisation and ops per joule come from its summed cycles,
    energy and MACs (ratios of sums), never from averaging its layers'.

    >>> total = Cost(100, 2.0e6, 6400) + Cost(300, 1.0e6, 3200)
    >>> total.cycles, total.utilization(8, 8), total.ops_per_joule
    (400, 0.375, 6400000000.0)
    """

    cycles: int = 0
    energy_pj: float = 0.0
    useful_macs: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.cycles + other.cycles, self.energy_pj + other.energy_pj,
                    self.useful_macs + other.useful_macs)

    def utilization(self, rows: int, cols: int) -> float:
        """Useful MACs / (cycles * rows * cols)."""
        return self.useful_macs / (self.cycles * rows * cols)

    @property
    def ops_per_joule(self) -> float:
        """Energy efficiency: 2 * useful MACs per joule."""
        return 2 * self.useful_macs / (self.energy_pj * 1e-12)


@dataclass(frozen=True)
class LayerResult:
    """Cost of one layer on the array.

    Attributes
    ----------
    spec : the layer simulated.
    dataflow, rows, cols : the array.
    folds, cycles_per_fold : fold schedule.
    cycles : folds * cycles_per_fold; ``scalesim_cycles`` = cycles - 1 is what
        SCALE-Sim 3.0.0 reports as "Total Cycles" (a 0-indexed last cycle).
    utilization : useful MACs / (cycles * rows * cols).
    sram_reads, sram_writes : words per operand ("ifmap", "filter", "ofmap").
    sram_bits, dram_bits : bits per operand; ``dram_bits["filter"]`` includes
        ``dram_index_bits``.
    energy_pj : breakdown in pJ ("mac", "rf", "mux", "shift", "sram", "dram").
    """

    spec: LayerSpec
    dataflow: str
    rows: int
    cols: int
    folds: int
    cycles_per_fold: int
    cycles: int
    scalesim_cycles: int
    utilization: float
    sram_reads: dict
    sram_writes: dict
    sram_bits: dict
    dram_bits: dict
    dram_index_bits: int
    energy_pj: dict

    @property
    def total_energy_pj(self) -> float:
        """Sum of the energy breakdown, pJ."""
        return sum(self.energy_pj.values())

    @property
    def cost(self) -> Cost:
        """Cycles, energy and useful MACs, to add up over layers."""
        return Cost(self.cycles, self.total_energy_pj, self.spec.useful_macs)

    @property
    def ops_per_joule(self) -> float:
        """Energy efficiency: 2 * useful MACs per joule."""
        return self.cost.ops_per_joule

    def as_row(self) -> dict:
        """Flat dict for tables."""
        row = {"name": self.spec.name, "dataflow": self.dataflow, "M": self.spec.M, "N": self.spec.N,
               "K": self.spec.K, "K_packed": self.spec.K_packed, "lanes": self.spec.lanes, "folds": self.folds,
               "cycles": self.cycles, "scalesim_cycles": self.scalesim_cycles,
               "utilization": self.utilization}
        row.update({f"sram_{op}_reads": v for op, v in self.sram_reads.items()})
        row.update({f"sram_{op}_writes": v for op, v in self.sram_writes.items()})
        row.update({f"dram_{op}_bits": v for op, v in self.dram_bits.items()})
        row["dram_index_bits"] = self.dram_index_bits
        row.update({f"energy_{k}_pj": v for k, v in self.energy_pj.items()})
        row["energy_pj"] = self.total_energy_pj
        row["ops_per_joule"] = self.ops_per_joule
        return row


def simulate_layer(spec: LayerSpec, rows: int = 32, cols: int = 32, dataflow: str = "ws",
                   energy=None) -> LayerResult:
    """Cycles, utilisation, traffic and energy of ``spec`` on a rows x cols array.

    ``energy`` is a table accepted by :func:`hwmodel.energy.energy_table` (None: default).
    """
    table = energy_table(energy)
    sched = schedule(spec.M, spec.N, spec.K_array, rows, cols, dataflow)
    traffic = layer_traffic(spec, sched)
    return LayerResult(
        spec, sched.dataflow, sched.rows, sched.cols, sched.folds, sched.cycles_per_fold,
        sched.cycles, sched.scalesim_cycles, spec.useful_macs / (sched.cycles * sched.rows * sched.cols),
        traffic.sram_reads, traffic.sram_writes, traffic.sram_bits, traffic.dram_bits,
        traffic.dram_index_bits, layer_energy(spec, traffic, table))


def simulate_gemm(M: int, N: int, K: int, rows: int = 32, cols: int = 32, dataflow: str = "ws",
                  energy=None) -> LayerResult:
    """A dense (M x K) @ (K x N) GEMM: M output pixels, N filters, K reduction.

    Examples
    --------
    >>> r = simulate_gemm(64, 64, 64, rows=32, cols=32, dataflow="os")
    >>> r.cycles, r.scalesim_cycles, round(r.utilization, 4)
    (504, 503, 0.5079)
    """
    return simulate_layer(dense_layer(M, N, K), rows, cols, dataflow, energy)


def simulate_conv(ifmap_h: int, ifmap_w: int, kernel_h: int, kernel_w: int, channels: int,
                  filters: int, stride: int = 1, rows: int = 32, cols: int = 32,
                  dataflow: str = "ws", energy=None) -> LayerResult:
    """A dense convolution lowered to GEMM as SCALE-Sim does (M = output pixels,
    N = filters, K = kernel_h * kernel_w * channels); no padding is added."""
    M, N, K, words = conv_gemm_sizes(ifmap_h, ifmap_w, kernel_h, kernel_w, channels, filters, stride)
    return simulate_layer(dense_layer(M, N, K, ifmap_words=words), rows, cols, dataflow, energy)


@dataclass(frozen=True)
class Comparison:
    """A packed layer against its dense form on the same array.

    ``speedup`` = dense cycles / packed cycles; ``energy_ratio`` = dense pJ /
    packed pJ (= the gain in ops per joule, the useful work being the same);
    ``weight_traffic_ratio`` = dense / packed DRAM weight bits (index included).
    """

    dense: LayerResult
    packed: LayerResult

    @property
    def speedup(self) -> float:
        return self.dense.cycles / self.packed.cycles

    @property
    def energy_ratio(self) -> float:
        return self.dense.total_energy_pj / self.packed.total_energy_pj

    @property
    def weight_traffic_ratio(self) -> float:
        return self.dense.dram_bits["filter"] / self.packed.dram_bits["filter"]


def compare_layer(spec: LayerSpec, rows: int = 32, cols: int = 32, dataflow: str = "ws",
                  energy=None) -> Comparison:
    """Simulate ``spec`` and its dense form (:meth:`LayerSpec.dense`) on the same array."""
    table = energy_table(energy)
    return Comparison(simulate_layer(spec.dense(), rows, cols, dataflow, table),
                      simulate_layer(spec, rows, cols, dataflow, table))
