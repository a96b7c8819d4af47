"""Pack every layer of a model (P1) and collect the per-layer numbers of DESIGN.md section 4.

A layer that cannot be handled is a fault, recorded in ``skipped`` with a
one-line reason; the others still complete. Tensors the layer selection left
out (norms, biases, embeddings; :class:`arrange.io.NotSelected`) are carried in
``not_selected``: not errors.

When a layer's packing stores more bits than the dense matrix (storage
compression < 1; at gamma = 0 on a 50-80% sparse transformer or conv matrix
nearly every pair of columns shares a nonzero row, so the conflict graph is
almost complete and no two columns can share a group), the report says why
and measures a small gamma ladder on that layer with the fast ``ffd`` packer
(deterministic: same seed, same numbers), so the user sees what each conflict
budget would give before choosing one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ArrangeError, LayerError
from .formats import column_combine
from .layer import check_packable
from .pack import pack
from .report import compression

__all__ = ["GAMMA_LADDER", "LayerReport", "PackReport", "gamma_advice", "pack_layers", "pair_conflicts"]

#: conflict budgets tried on a layer whose packing does not pay
GAMMA_LADDER = (0.02, 0.05, 0.1, 0.2)
#: column pairs sampled to measure how close the conflict graph is to complete
_PAIRS = 4096


@dataclass
class LayerReport:
    """One packed layer: shape, groups against the bound, both compression rates.

    ``kept``: nonzeros that survive the packing (the ``True`` entries of its
    keep-mask); ``dtype``: the source weight's dtype, the precision the packed
    values are written at; ``weight``: the state-dict name of the full weight;
    ``conv_group`` of ``conv_groups``: which block of output channels this row
    is (a grouped conv), rows ``conv_group * rows`` onwards of the full weight;
    ``advice``: why the packing does not pay and what a gamma ladder gives
    (:func:`gamma_advice`), or None.
    """

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
    kept: int = 0
    dtype: str = "float64"
    weight: str = ""
    conv_group: int = 0
    conv_groups: int = 1
    advice: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PackReport:
    """All layers plus the model total.

    ``skipped``: (layer, reason) for faults (the CLI exits 2); ``not_selected``:
    the tensors the selection left out (not errors); ``results``: layer name ->
    the checked :class:`solvers.CombineResult` (``.keep_mask``, ``.packed``), not
    written to JSON.
    """

    layers: list
    skipped: list
    params: dict
    total: dict = field(default_factory=dict)
    accuracy: dict | None = None    # model metric by stage, when the model comes with data
    not_selected: list = field(default_factory=list)
    results: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"params": self.params, "layers": [r.as_dict() for r in self.layers],
               "total": self.total, "skipped": [{"layer": n, "error": e} for n, e in self.skipped],
               "not_selected": [n.as_dict() for n in self.not_selected]}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        return out

    @property
    def keep_masks(self) -> dict:
        """Layer name -> bool (R, N): the nonzeros that survive, the mask to fine-tune under."""
        return {name: r.keep_mask for name, r in self.results.items()}


def _storage(packed, value_bits: int) -> tuple[dict, float]:
    b = column_combine.bits(packed, value_bits=value_bits)
    return b, b["dense"] / (b["values"] + b["index"])


def _layer_report(layer, W: np.ndarray, result, value_bits: int, keys) -> LayerReport:
    b, storage = _storage(result.packed, value_bits)
    R, N = W.shape
    return LayerReport(
        name=layer.name, rows=R, cols=N, nnz=int(np.count_nonzero(W)), groups=result.num_groups,
        lower_bound=result.lower_bound, gap=result.gap, status=result.status, solver=result.solver,
        matrix_compression=result.compression, storage_compression=storage,
        pruned_pct=100.0 * result.pruned_fraction, seconds=result.seconds, bits=b,
        kept=int(np.count_nonzero(result.keep_mask)), dtype=str(layer.weight.dtype),
        weight=keys.get(layer.base_name, f"{layer.base_name}.weight"), conv_group=layer.group,
        conv_groups=layer.groups,
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


def pair_conflicts(W, seed: int = 0, pairs: int = _PAIRS) -> float:
    """Fraction of pairs of nonempty columns that share a nonzero row (conflict-graph density).

    Every pair when there are at most ``pairs`` of them, else ``pairs`` pairs
    drawn with a generator seeded by ``seed`` (the same answer every run).
    """
    S = np.asarray(W) != 0
    S = S[:, S.any(axis=0)]
    n = S.shape[1]
    if n < 2:
        return 0.0
    if n * (n - 1) // 2 <= pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(n, size=pairs)
        j = (i + rng.integers(1, n, size=pairs)) % n  # j != i, uniform over the others
    return float((S[:, i] & S[:, j]).any(axis=0).mean())


def gamma_advice(W, result, storage: float, alpha: int, gamma: float, time_limit: float, seed: int = 0,
                 value_bits: int = 8, ladder=GAMMA_LADDER) -> dict | None:
    """Why a packing does not pay (storage compression < 1) and what larger gammas give; None if it pays.

    Returns ``{"conflict_pairs", "density", "ladder": [{gamma, groups,
    matrix_compression, storage_compression, pruned_pct}], "suggested_gamma",
    "message"}``. The ladder rungs above ``gamma`` are packed with ``ffd`` (a
    fast heuristic: feasible, not proven), so they show what each budget gives
    at least; ``suggested_gamma`` is the smallest rung whose storage
    compression is >= 1, or None.
    """
    if storage >= 1.0:
        return None
    W = np.asarray(W)
    conflict = pair_conflicts(W, seed)
    rungs = []
    for g in (x for x in ladder if x > gamma):
        r = pack(W, alpha=alpha, gamma=g, solver="ffd", time_limit=time_limit, seed=seed)
        rungs.append({"gamma": g, "groups": r.num_groups, "matrix_compression": r.compression,
                      "storage_compression": _storage(r.packed, value_bits)[1],
                      "pruned_pct": 100.0 * r.pruned_fraction})
    suggested = next((r["gamma"] for r in rungs if r["storage_compression"] >= 1.0), None)
    found = "optimal" if result.status == "optimal" else "the best found"
    if gamma == 0 and conflict >= 0.9:
        why = (f"{conflict:.0%} of column pairs share a nonzero row, so at gamma = 0 almost no two columns "
               f"fit one group ({result.num_groups} groups for {W.shape[1]} columns is {found})")
    else:
        why = f"{result.num_groups} groups for {W.shape[1]} columns at gamma = {gamma:g} ({found})"
    message = f"storage {storage:.2f}x < 1 (larger than dense): {why}."
    if rungs:
        col = lambda key, fmt: "/".join(fmt.format(r[key]) for r in rungs)
        budgets = "/".join(str(int(np.floor(r["gamma"] * W.shape[0] + 1e-9))) for r in rungs)
        message += (f" ffd at gamma {col('gamma', '{:g}')} (conflicts per group {budgets}): matrix "
                    f"{col('matrix_compression', '{:.2f}')}x, storage {col('storage_compression', '{:.2f}')}x, "
                    f"pruned {col('pruned_pct', '{:.1f}')}%.")
    message += (f" Try --gamma {suggested:g}." if suggested is not None else
                " Prune harder (--sparsity) or leave the layer dense (--exclude).")
    return {"conflict_pairs": conflict, "density": float(np.count_nonzero(W) / W.size), "ladder": rungs,
            "suggested_gamma": suggested, "message": message}


def pack_layers(layers, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
                seed: int = 0, value_bits: int = 8, skipped=(), progress: bool = False, not_selected=(),
                advise: bool = True, keys=None, params=None):
    """Pack each layer's matrix; returns (PackReport, {layer name: ColumnCombined}).

    ``skipped``: faults found before packing (e.g. ``Model.skipped``), carried
    into the report; ``not_selected``: ``Model.not_selected``, likewise.
    ``advise``: measure the gamma ladder on layers whose packing does not pay.
    ``keys``: layer name -> state-dict weight name (``Model.keys``) for the rows' ``weight``.
    ``params``: per-solver parameters (:func:`arrange.pack`).
    The pruned-magnitude percentage is weighted by nonzeros in the total, as an
    approximation of the share of weights removed (exact per layer).
    """
    reports, results, failed = [], {}, list(skipped)
    it = layers
    if progress:
        from tqdm import tqdm

        it = tqdm(layers, desc="packing", unit="layer", leave=False, disable=None)
    for layer in it:
        try:
            check_packable(layer)
            W = layer.matrix
            result = pack(W, alpha=alpha, gamma=gamma, solver=solver, time_limit=time_limit,
                          seed=seed, name=f"layer {layer.name}", params=params)
            row = _layer_report(layer, W, result, value_bits, keys or {})
            if advise:
                row.advice = gamma_advice(W, result, row.storage_compression, alpha, gamma, time_limit,
                                          seed, value_bits)
        except LayerError as exc:
            failed.append((exc.layer, exc.problem))
            continue
        except ArrangeError as exc:  # a bad parameter: the layer itself passed check_packable
            failed.append((layer.name, str(exc)))
            continue
        reports.append(row)
        results[layer.name] = result
    settings = {"alpha": alpha, "gamma": gamma, "solver": solver if isinstance(solver, str) else "custom",
                "time_limit": time_limit, "seed": seed, "value_bits": value_bits, "params": params or {}}
    report = PackReport(reports, failed, settings, model_total(reports), not_selected=list(not_selected),
                        results=results)
    return report, {name: r.packed for name, r in results.items()}
