"""Joint optimisation: prune -> arrange -> fine-tune with masks fixed -> repeat on a schedule.

Problem: compress a whole model for a systolic array while keeping its accuracy.

Method: for each sparsity of the schedule, magnitude-prune the current weights
(per layer or global), compress every layer (:func:`arrange.compress.compress_matrix`,
in parallel processes with ``jobs > 1``), then fine-tune through the user's
hooks with every pruned weight held at zero, and project the fine-tuned
weights back onto the packing (scale re-fitted per row, same groups, only the
subword slots the packing kept), so the packed layers stay valid and verified;
with several fine-tuning rounds per stage the projection follows each round
(projected training).
The metric is measured before compression, after pruning, after arrangement
and after fine-tuning at every stage. Layers that fail are reported and
skipped; the others complete.

References: column combining's joint optimisation (Kung et al., ASPLOS 2019,
section 4) and Tight Compression's prune/permute/retrain flow (Chen et al.,
TCAD 2022).
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .compress import CompressConfig, LayerOutcome, compress_matrix, project_to_slots, rates
from .errors import ArrangeError, LayerError
from .formats import column_combine
from .io import layer_masks, layer_weight, to_state_dict
from .prune import prune_layers
from .quant import quantize, to_subwords
from .report import compression
from .verify import verify_packing

__all__ = ["Hooks", "Stage", "CompressReport", "CompressError", "compress_model", "refit", "totals"]


@dataclass(frozen=True)
class Hooks:
    """How the pipeline measures and trains a model; all state is ``name -> ndarray``.

    evaluate(state) -> metric (higher is better) on data the user names.
    finetune(state, masks, seed) -> new state, with masked weights held at zero
        (masks are keyed by module name, e.g. ``conv1``); None skips fine-tuning.
    base_state: the full state (biases, norms) the layer weights are merged into.
    module(state) -> a torch module holding the state, and train(module, masks,
        seed) -> that module trained in place with the masks held: for formats
        whose fine-tuning trains something other than the weights (PENNI's
        basis and coefficients, :func:`arrange.formats.penni.finetune`); None
        when the hooks have no module.
    """

    evaluate: Callable[[dict], float]
    base_state: dict
    finetune: Callable[[dict, dict, int], dict] | None = None
    metric: str = "accuracy"
    module: Callable[[dict], Any] | None = None
    train: Callable[[Any, dict, int], Any] | None = None


@dataclass
class Stage:
    """The metric and model compression rates at one step of the schedule."""

    step: str          # "dense", "pruned", "arranged", "finetuned"
    sparsity: float
    metric: float | None
    compression: float | None = None            # model matrix compression
    storage_compression: float | None = None
    baseline_compression: float | None = None   # greedy-cc on the same pruned weights


@dataclass
class CompressReport:
    layers: list                    # LayerOutcome of the last stage that finished
    stages: list                    # Stage
    skipped: list                   # (layer, reason)
    config: CompressConfig
    schedule: list
    total: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)   # the compressed model: name -> array (weights, biases, ...)
    error: str | None = None        # why the run stopped early (a hook raised), else None


class CompressError(ArrangeError):
    """A user hook raised; ``report`` holds everything that finished before it."""

    def __init__(self, message: str, report: CompressReport):
        super().__init__(message)
        self.report = report


def totals(layers: list, cfg: CompressConfig) -> dict:
    """Model rates as ratios of sums over layers (slot- and bit-weighted)."""
    if not layers:
        return {}
    out = {
        "layers": len(layers), "weights": sum(o.rows * o.cols for o in layers),
        "nonzeros": int(sum(np.count_nonzero(o.weights) for o in layers)),
        **compression((o.rows * o.cols * cfg.bits, o.rows * o.packed_cols * cfg.slot_bits, o.bits["dense"],
                       o.bits["values"] + o.bits["index"]) for o in layers),
        "seconds": sum(o.seconds for o in layers),
    }
    if all(o.baseline_cols for o in layers):
        base = sum(o.rows * o.baseline_cols for o in layers)
        out["baseline_compression"] = sum(o.rows * o.cols for o in layers) / base
        out["vs_baseline"] = out["matrix_compression"] / out["baseline_compression"]
    return out


def refit(outcome: LayerOutcome, W, cfg: CompressConfig) -> LayerOutcome:
    """Project fine-tuned weights onto the outcome's packing: same groups, only the kept slots.

    The scale is re-fitted per row (fine-tuning may grow weights past the old
    range); the packing depends only on which slots are nonzero, so it stays valid.
    """
    Q = quantize(np.where(outcome.weights != 0, np.asarray(W, dtype=np.float64), 0.0), cfg.bits)
    q = Q.q
    if cfg.subword is None:
        M = np.where(outcome.allowed, q, 0)
        q_new = M
    else:
        q_new = project_to_slots(q, outcome.allowed, cfg.bits, cfg.subword)
        M = to_subwords(q_new, cfg.bits, cfg.subword).values
    if np.any((M != 0) & ~outcome.allowed):
        raise AssertionError(f"layer {outcome.name}: projection left the packing's slots")
    packed, changes = outcome.packed, {}
    if packed is not None:
        # Columns that rounded to zero leave their groups; groups left empty disappear.
        live = M.any(axis=0)
        members = [m for m in (row[(row >= 0)] for row in packed.table) if m.size]
        members = [m[live[m]] for m in members if live[m].any()]
        packed = column_combine.encode_groups(M, members, packed.alpha)
        verify_packing(M, packed, cfg.gamma)
        b = column_combine.bits(packed, value_bits=cfg.value_bits)
        changes = dict(packed_cols=packed.num_groups, objective=packed.num_groups,
                       **rates(cfg, outcome.rows, outcome.cols, packed.num_groups, b["values"], b["index"]))
    return replace(outcome, weights=q_new * Q.scale[:, None], scale=Q.scale, packed=packed,
                   allowed=M != 0, **changes)


def _compress_one(args):
    """Process-pool entry: a layer outcome, or the one-line reason it failed."""
    name, W, cfg, prune = args
    try:
        return compress_matrix(name, W, cfg, prune=prune)
    except LayerError as exc:
        return exc.problem
    except ArrangeError as exc:  # a parameter the layer cannot take (say k above its columns)
        return str(exc)


def _work(before, pruned, cfg: CompressConfig) -> list:
    """Per-layer jobs. Arrangement-aware pruning needs the weights before this stage's pruning and
    the sparsity the (layer or global) pruning gave that layer, and prunes them itself."""
    if not (cfg.arrangement_aware and cfg.sparsity):
        return [(l.name, l.matrix, cfg, False) for l in pruned]
    return [(b.name, b.matrix, replace(cfg, sparsity=1 - p.nnz / p.matrix.size), True)
            for b, p in zip(before, pruned)]


def _compress_all(layers, work: list, jobs: int, progress: bool):
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_compress_one, work))
    else:
        it = work
        if progress:
            from tqdm import tqdm

            it = tqdm(work, desc="compressing", unit="layer", leave=False, disable=None)
        results = [_compress_one(w) for w in it]
    done, failed = [], []
    for layer, r in zip(layers, results):
        (failed.append((layer.name, r)) if isinstance(r, str) else done.append((layer, r)))
    return done, failed


def _state(hooks: Hooks | None, layers) -> dict:
    state = {} if hooks is None else dict(hooks.base_state)
    state.update(to_state_dict(layers))
    return state


def _call(what: str, fn, *args):
    """Run a user hook; any exception becomes one ArrangeError line naming the hook and the stage."""
    try:
        return fn(*args)
    except Exception as exc:  # a user hook may raise anything; the report must still be written
        detail = " ".join(str(exc).split()) or "no message"
        raise ArrangeError(f"{what}: {type(exc).__name__}: {detail}") from exc


def _metric(hooks: Hooks | None, layers, where: str):
    if hooks is None:
        return None
    return float(_call(f"evaluation hook failed on the {where} model", hooks.evaluate, _state(hooks, layers)))


def _stage(step: str, sparsity: float, metric, total: dict | None = None) -> Stage:
    total = total or {}
    return Stage(step, sparsity, metric, total.get("matrix_compression"), total.get("storage_compression"),
                 total.get("baseline_compression"))


def compress_model(layers, cfg: CompressConfig, hooks: Hooks | None = None, schedule=None,
                   jobs: int = 1, progress: bool = False, finetune_rounds: int = 1) -> CompressReport:
    """Run the schedule (default: one stage at ``cfg.sparsity``) over the model's layers.

    ``finetune_rounds``: at each stage, call the fine-tuning hook this many
    times, projecting the weights back onto the packing after each call, so
    training sees the slot constraints (projected training) instead of losing
    accuracy to one projection at the end.

    Raises
    ------
    ArrangeError : no prunable layers, a bad schedule or ``jobs``.
    CompressError : a hook raised; its ``.report`` holds the stages and layers that
        finished before, ready for :func:`arrange.compress_report.write_compress_report`.
    """
    layers = list(layers)
    if not layers:
        raise ArrangeError("the model has no prunable (conv or linear) layers")
    schedule = [cfg.sparsity] if schedule is None else [float(s) for s in schedule]
    if not schedule or any(not 0 <= s < 1 for s in schedule):
        raise ArrangeError(f"schedule sparsities must be in [0, 1), got {schedule}")
    for name, value in (("jobs", jobs), ("fine-tuning rounds", finetune_rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ArrangeError(f"{name} must be an integer >= 1, got {value!r}")
    report = CompressReport([], [], [], cfg, schedule)
    start = time.perf_counter()
    try:
        _run(report, layers, hooks, jobs, finetune_rounds, progress)
    except ArrangeError as exc:
        report.error = str(exc)
        raise CompressError(str(exc), report) from exc.__cause__
    finally:
        report.total = totals(report.layers, cfg)
        if report.total:
            report.total["wall_seconds"] = time.perf_counter() - start
    return report


def _run(report: CompressReport, layers, hooks: Hooks | None, jobs: int, rounds: int, progress: bool) -> None:
    """The schedule; ``report`` is updated as each stage finishes so a failure leaves it current."""
    cfg = report.config
    report.state = _state(hooks, layers)
    report.stages.append(_stage("dense", 0.0, _metric(hooks, layers, "dense")))
    current = layers
    # Pruned subwords never come back (the projection keeps only kept slots), so each stage
    # prunes the same fraction of what remains, compounding to about cfg.subword_sparsity at the end.
    per_stage = 1 - (1 - cfg.subword_sparsity) ** (1 / len(report.schedule))
    for step, sparsity in enumerate(report.schedule):
        stage_cfg = replace(cfg, sparsity=sparsity, subword_sparsity=per_stage)
        pruned = prune_layers(current, sparsity, scope=cfg.scope)
        report.stages.append(_stage("pruned", sparsity, _metric(hooks, pruned, f"{sparsity:g}-sparse pruned")))
        done, failed = _compress_all(pruned, _work(current, pruned, stage_cfg), jobs, progress)
        report.skipped = failed
        if not done:
            return
        outcomes = [o for _, o in done]
        # Layers that failed keep their pruned weights for the next stage.
        model = _with_outcomes(pruned, outcomes)
        report.layers, report.state = outcomes, _state(hooks, model)
        report.stages.append(_stage("arranged", sparsity, _metric(hooks, model, f"{sparsity:g}-sparse arranged"),
                                    totals(outcomes, stage_cfg)))
        if hooks is not None and hooks.finetune is not None:
            for r in range(rounds):
                state = _call(f"fine-tuning hook failed at sparsity {sparsity:g}", hooks.finetune,
                              _state(hooks, model), layer_masks(model), cfg.seed + step * rounds + r)
                tuned = {n: np.asarray(v) for n, v in state.items()}
                outcomes = [refit(o, layer_weight(tuned, layer).reshape(layer.shape2d), stage_cfg)
                            for (layer, _), o in zip(done, outcomes)]
                model = [l.with_matrix(np.where(l.matrix != 0, layer_weight(tuned, l).reshape(l.shape2d), 0.0))
                         for l in model]
                model = _with_outcomes(model, outcomes)
                hooks = replace(hooks, base_state={**hooks.base_state, **{
                    k: v for k, v in tuned.items() if not k.endswith(".weight")}})
                report.layers, report.state = outcomes, _state(hooks, model)
            report.stages.append(_stage("finetuned", sparsity,
                                        _metric(hooks, model, f"{sparsity:g}-sparse fine-tuned"),
                                        totals(outcomes, stage_cfg)))
        current = model


def _with_outcomes(layers, outcomes) -> list:
    """The layers, in model order, with each compressed one holding its outcome's effective weights."""
    by_name = {o.name: o for o in outcomes}
    return [l.with_matrix(by_name[l.name].weights) if l.name in by_name else l for l in layers]

