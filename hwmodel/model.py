"""Whole-model run: a list of layers in, a per-layer and total table out.

Problem: give the dense-vs-packed cycles, utilisation, DRAM weight traffic and
energy of every layer of a model, and of one inference, on one array.

Method: :func:`hwmodel.simulate.compare_layer` per layer (closed form, tens of
microseconds each), summed as :class:`hwmodel.simulate.Cost`: utilisation and
ops/J of the total are recomputed from the summed cycles, useful MACs and
energy, not averaged.

Reference: SCALE-Sim v3 (per-layer COMPUTE_REPORT), https://github.com/scalesim-project/scale-sim-v3 .
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hwmodel.energy import energy_table
from hwmodel.packed import LayerSpec
from hwmodel.simulate import Comparison, Cost, compare_layer
from hwmodel.validation import HwModelError

__all__ = ["ModelReport", "run_model"]

_COLUMNS = ("name", "cycles_dense", "cycles_packed", "speedup", "util_dense", "util_packed",
            "weight_bits_dense", "weight_bits_packed", "energy_dense_pj", "energy_packed_pj",
            "ops_per_j_dense", "ops_per_j_packed")


@dataclass(frozen=True)
class ModelReport:
    """Per-layer rows and the total (one inference), as dicts keyed by ``_COLUMNS``.

    ``comparisons`` keeps the full per-layer results.
    """

    rows: list
    total: dict
    comparisons: list

    def to_markdown(self) -> str:
        """The table (layers then total) as a markdown string."""
        lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        for row in self.rows + [self.total]:
            lines.append("| " + " | ".join(_fmt(row[c]) for c in _COLUMNS) + " |")
        return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _row(name, dense: Cost, packed: Cost, dense_util, packed_util, dense_w, packed_w) -> dict:
    return {"name": name, "cycles_dense": dense.cycles, "cycles_packed": packed.cycles,
            "speedup": dense.cycles / packed.cycles, "util_dense": dense_util,
            "util_packed": packed_util, "weight_bits_dense": dense_w, "weight_bits_packed": packed_w,
            "energy_dense_pj": dense.energy_pj, "energy_packed_pj": packed.energy_pj,
            "ops_per_j_dense": dense.ops_per_joule, "ops_per_j_packed": packed.ops_per_joule}


def _costs(c: Comparison) -> tuple[Cost, Cost]:
    """Dense and packed cost of a layer, both credited with the packed layer's useful work."""
    return Cost(c.dense.cycles, c.dense.total_energy_pj, c.packed.spec.useful_macs), c.packed.cost


def _layer_row(i: int, c: Comparison) -> dict:
    return _row(c.packed.spec.name or f"layer{i}", *_costs(c), c.dense.utilization, c.packed.utilization,
                c.dense.dram_bits["filter"], c.packed.dram_bits["filter"])


def run_model(layers: Sequence[LayerSpec], rows: int = 32, cols: int = 32, dataflow: str = "ws",
              energy=None) -> ModelReport:
    """Dense vs packed cost of every layer and of one inference.

    Parameters
    ----------
    layers : LayerSpec per layer (dense layers compare equal to themselves).
    rows, cols, dataflow : the array.
    energy : energy table (None: :data:`hwmodel.energy.DEFAULT_ENERGY`).

    Examples
    --------
    >>> from hwmodel.packed import dense_layer, column_combined_layer
    >>> rep = run_model([column_combined_layer(1024, 64, 512, groups=64, alpha=8, nnz=64 * 60)])
    >>> rep.total["speedup"]
    8.0
    """
    if len(layers) == 0:
        raise HwModelError("layers must hold at least one LayerSpec")
    for i, spec in enumerate(layers):
        if not isinstance(spec, LayerSpec):
            raise HwModelError(f"layers[{i}] must be a LayerSpec, got {type(spec).__name__}")
    table = energy_table(energy)
    comps = [compare_layer(s, rows, cols, dataflow, table) for s in layers]
    rows_out = [_layer_row(i, c) for i, c in enumerate(comps)]
    R, C = comps[0].dense.rows, comps[0].dense.cols
    dense, packed = (sum(costs, Cost()) for costs in zip(*map(_costs, comps)))
    total = _row("total", dense, packed, dense.utilization(R, C), packed.utilization(R, C),
                 sum(r["weight_bits_dense"] for r in rows_out), sum(r["weight_bits_packed"] for r in rows_out))
    return ModelReport(rows_out, total, comps)
