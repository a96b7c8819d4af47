"""Pack every layer of a model (P1) and collect the per-layer numbers of DESIGN.md section 4.

A layer that cannot be handled is recorded in ``skipped`` with a one-line reason;
the others still complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ArrangeError, LayerError
from .formats import column_combine
from .layer import check_packable
from .pack import pack
from .report import compression

__all__ = ["LayerReport", "PackReport", "pack_layers"]


@dataclass
class LayerReport:
    """One packed layer: shape, groups against the bound, both compression rates."""

    name: str
    rows: int
    cols: int
    nnz: int
    groups: int
    lower_bound: int
    gap: float
    status: str
    solver: str
    matrix_compression: float
    storage_compression: float
    pruned_pct: float
    seconds: float
    bits: dict

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PackReport:
    """All layers plus the model total; ``skipped`` lists (layer, reason)."""

    layers: list
    skipped: list
    params: dict
    total: dict = field(default_factory=dict)
    accuracy: dict | None = None    # model metric by stage, when the model comes with data

    def as_dict(self) -> dict:
        out = {"params": self.params, "layers": [r.as_dict() for r in self.layers],
               "total": self.total, "skipped": [{"layer": n, "error": e} for n, e in self.skipped]}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        return out


def _layer_report(name: str, W: np.ndarray, result, value_bits: int) -> LayerReport:
    b = column_combine.bits(result.packed, value_bits=value_bits)
    R, N = W.shape
    return LayerReport(
        name=name, rows=R, cols=N, nnz=int(np.count_nonzero(W)), groups=result.num_groups,
        lower_bound=result.lower_bound, gap=result.gap, status=result.status, solver=result.solver,
        matrix_compression=result.compression,
        storage_compression=b["dense"] / (b["values"] + b["index"]),
        pruned_pct=100.0 * result.pruned_fraction, seconds=result.seconds, bits=b,
    )


def model_total(rows: list) -> dict:
    """Slot- and bit-weighted totals: the model's rates are ratios of sums, not means of ratios."""
    if not rows:
        return {}
    groups = sum(r.groups for r in rows)
    bound = sum(r.lower_bound for r in rows)
    pruned = sum(r.pruned_pct * r.nnz for r in rows) / max(1, sum(r.nnz for r in rows))
    return {
        "layers": len(rows), "rows": sum(r.rows for r in rows), "cols": sum(r.cols for r in rows),
        "nnz": sum(r.nnz for r in rows), "groups": groups, "lower_bound": bound,
        "gap": (groups - bound) / bound,
        **compression((r.rows * r.cols, r.rows * r.groups, r.bits["dense"], r.bits["values"] + r.bits["index"])
                      for r in rows),
        "pruned_pct": pruned,
        "seconds": sum(r.seconds for r in rows),
        "status": "optimal" if all(r.status == "optimal" for r in rows) else "feasible",
    }


def pack_layers(layers, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
                seed: int = 0, value_bits: int = 8, skipped=(), progress: bool = False):
    """Pack each layer's matrix; returns (PackReport, {layer name: ColumnCombined}).

    The pruned-magnitude percentage is weighted by nonzeros in the total, as an
    approximation of the share of weights removed (exact per layer).
    """
    reports, packed, failed = [], {}, list(skipped)
    it = layers
    if progress:
        from tqdm import tqdm

        it = tqdm(layers, desc="packing", unit="layer", leave=False, disable=None)
    for layer in it:
        try:
            check_packable(layer)
            W = layer.matrix
            result = pack(W, alpha=alpha, gamma=gamma, solver=solver, time_limit=time_limit,
                          seed=seed, name=f"layer {layer.name}")
        except LayerError as exc:
            failed.append((exc.layer, exc.problem))
            continue
        except ArrangeError as exc:  # a bad parameter: the layer itself passed check_packable
            failed.append((layer.name, str(exc)))
            continue
        reports.append(_layer_report(layer.name, W, result, value_bits))
        packed[layer.name] = result.packed
    params = {"alpha": alpha, "gamma": gamma, "solver": solver if isinstance(solver, str) else "custom",
              "time_limit": time_limit, "seed": seed, "value_bits": value_bits}
    return PackReport(reports, failed, params, model_total(reports)), packed
