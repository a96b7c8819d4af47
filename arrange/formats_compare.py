"""All packed formats side by side on one model at matched accuracy (by default the digits CNN).

Problem: compare column combining, N:M with channel permutation, PermDNN,
PCNN and PENNI on one model: for each format the strongest setting whose
fine-tuned accuracy stays within ``tolerance`` (1 point) of the dense model,
with both compression rates, cycles and energy on one stated array, and the
gap of the format's combinatorial solver to its bound.

Method, for every setting of a small list per format (its adapter's
``settings``, :data:`SETTINGS`; the row reports the matched setting with the
highest matrix compression, or the most accurate one with ``matched`` False
when none matches), each format driven through its
:class:`~arrange.formats.base.FormatAdapter` (:data:`arrange.formats.FORMATS`):
1. project every layer the format applies to (the others stay dense, and the
   row names them): column combining magnitude-prunes to ``sparsity`` then
   packs (P1, :func:`arrange.pack`); N:M solves P2 with k = m; PermDNN (linear
   layers only: it is an FC format, convs stay dense) picks shifts and
   permutations; PCNN (convs with kernels larger than 1x1) picks K patterns
   of n with CP-SAT; PENNI fits d basis kernels to a coefficient density;
2. fine-tune the whole network through the user's :class:`~arrange.joint.Hooks`
   (the embedded digits CNN's, :func:`arrange.hooks.digits_hooks`, by default).
   For the mask formats (all but PENNI) the format's structure is the mask,
   held fixed (layers the format does not cover train too, under their own
   masks if any), and the layer is then re-encoded with the same structure
   (groups, order, shifts, patterns) from the trained weights.  PENNI's
   structure is not a mask: its layers train as the product of basis and
   coefficients (a torch parametrization, coefficient support and kept
   channels fixed, :func:`arrange.formats.penni.finetune`), so basis and
   coefficients are what is fine-tuned;
3. evaluate the decoded network with the hooks' evaluator.

Numbers (DESIGN.md section 4, model-wide sums over all layers, dense ones
included): matrix compression = dense weight slots / stored values (PENNI:
basis + nonzero coefficients); storage compression = dense bits / (value +
index bits) with int8 values; an N:M column order is stored unless it folds
into the producer (single-group producer right before, order a permutation
of its channels, :func:`arrange.formats.nm.channel_order`).  Hardware, one
image (M = output pixels of the layer): every layer on a rows x cols
systolic array (:func:`hwmodel.compare_layer`), except PermDNN layers, which
run on the FC engine with ``cols`` PEs (:func:`hwmodel.simulate_fc` on one
all-nonzero input vector, so no zero-input skipping is credited, and
:func:`hwmodel.fc_energy` plus the DRAM bits the array model charges: stored
weights with their index, inputs and outputs once).  Mappings: column
combining as G combined columns of fan-in alpha; N:M on the sparse core (K' = n ceil(K/m));
PCNN as the fixed-ratio (kh*kw, n) layout with a pattern-id index; PENNI as
its basis and combination GEMMs.  The dense reference of every layer runs on
the same engine, so speedup and energy ratio compare like with like.  Solver
gaps: P1 groups over the lower bound; N:M kept magnitude under the rows
bound; PermDNN kept energy under the row/column bound; PCNN kept energy under
the CP-SAT bound; PENNI has none.

References: H. T. Kung, B. McDanel, S. Q. Zhang, ASPLOS 2019,
doi:10.1145/3297858.3304028 (column combining); J. Pool, C. Yu, NeurIPS 2021
(N:M channel permutations); C. Deng et al., MICRO 2018,
doi:10.1109/MICRO.2018.00024 (PermDNN); J. Tan et al., DAC 2020,
doi:10.1109/DAC18072.2020.9218498 (PCNN); S. Li et al., ICML 2020,
arXiv:2005.07133 (PENNI).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import hwmodel

from . import defaults as D
from .errors import ArrangeError
from .formats import FORMATS
from .formats.base import VALUE_BITS, FormatAdapter, on_array
from .io import layer_masks, layer_weight, to_state_dict
from .hooks import digits_hooks
from .joint import Hooks
from .models.digits import digits_pixels, load_digits_layers
from .report import compression, markdown_table

__all__ = ["FORMATS", "SETTINGS", "DEFAULT_SOLVERS", "FormatRun", "apply_format", "run_row",
           "compare_formats", "format_markdown"]

#: settings tried per format, roughly strongest (most compressed) first
SETTINGS = {name: f.settings for name, f in FORMATS.items()}

#: solver per format (P1, P2, permuted-diagonal, pattern selection); PENNI has no solver choice.
#: All but CP-SAT stop on their own well inside the default time limit on the digits CNN, so the
#: table does not depend on machine load ("auto" portfolios would use the whole limit).
DEFAULT_SOLVERS = {name: f.solver for name, f in FORMATS.items() if f.solver is not None}


@dataclass
class FormatRun:
    """One format at one setting on the model: packed layers, their solver numbers, accuracies."""

    name: str
    setting: dict
    layers: list                                   # the model's layers (dense, as given)
    packed: dict = field(default_factory=dict)     # layer name -> packed object (after fine-tuning)
    projected: dict = field(default_factory=dict)  # layer name -> packed object before fine-tuning
    solver: dict = field(default_factory=dict)     # layer name -> (found, bound) of the projection
    state: dict = field(default_factory=dict)      # final network weights and biases
    accuracy_projected: float = 0.0
    accuracy: float = 0.0


def _format(name: str) -> FormatAdapter:
    if name not in FORMATS:
        raise ArrangeError(f"unknown format {name!r}; allowed: {', '.join(FORMATS)}")
    return FORMATS[name]


def _default_hooks(hooks: Hooks | None, epochs: int) -> Hooks:
    """The given hooks, or the embedded digits CNN's with ``epochs`` fine-tuning epochs."""
    if epochs < 0:
        raise ArrangeError(f"finetune epochs must be >= 0, got {epochs}")
    return digits_hooks(epochs=epochs) if hooks is None else hooks


def _with_layers(state: dict, layers, arrays: dict) -> dict:
    """``state`` with the given layers' weights replaced (groups merged back)."""
    new = to_state_dict(dataclasses.replace(l, weight=arrays[l.name] if l.name in arrays else layer_weight(state, l),
                                            mask=None) for l in layers)
    return {**state, **{k: w.astype("float32") for k, w in new.items()}}


def _decoded(fmt: FormatAdapter, packed: dict, layers) -> dict:
    return {l.name: fmt.decode(packed[l.name]).reshape(l.weight.shape) for l in layers if l.name in packed}


def _train_mask(fmt: FormatAdapter, packed, layer):
    """What fine-tuning holds fixed: the format's mask, nothing (PENNI), or the layer's own mask if uncovered."""
    if packed is None:
        return layer.mask
    return None if fmt.mask is None else fmt.mask(packed).reshape(layer.weight.shape)


def _masked_finetune(fmt: FormatAdapter, packed: dict, layers, state: dict, masks: dict, hooks: Hooks, seed: int):
    """Masked fine-tuning with the format's structure as the mask, then re-encoding with that structure."""
    state = hooks.finetune(state, masks, seed)
    by_name = {l.name: l for l in layers}
    return state, {n: fmt.reencode(p, layer_weight(state, by_name[n])) for n, p in packed.items()}


def apply_format(layers, name: str, setting: dict, epochs: int = D.FORMATS_EPOCHS, seed: int = D.SEED,
                 time_limit: float = D.TIME_LIMIT, solver=None, hooks: Hooks | None = None) -> FormatRun:
    """Project ``layers`` onto format ``name`` at ``setting``, fine-tune, re-encode.

    ``hooks`` evaluate and fine-tune the model the layers come from (default:
    the embedded digits CNN's, :func:`arrange.hooks.digits_hooks` with
    ``epochs``); fine-tuning is skipped when they have none (``epochs=0`` for
    the default).  Returns a :class:`FormatRun`; its ``packed`` layers hold the
    fine-tuned weights in the structure found before fine-tuning.
    """
    fmt = _format(name)
    hooks = _default_hooks(hooks, epochs)
    layers = list(layers)
    solver = fmt.solver if solver is None else solver
    run = FormatRun(name, dict(setting), layers)
    for layer in layers:
        if fmt.applies(layer):
            run.packed[layer.name], run.solver[layer.name] = fmt.project(layer, setting, solver, time_limit, seed)
    state = _with_layers(hooks.base_state, layers, {l.name: l.matrix.reshape(l.weight.shape) for l in layers})
    state = _with_layers(state, layers, _decoded(fmt, run.packed, layers))
    run.accuracy_projected = hooks.evaluate(state)
    run.projected = dict(run.packed)
    if hooks.finetune is not None:
        masks = layer_masks(dataclasses.replace(l, mask=_train_mask(fmt, run.packed.get(l.name), l))
                            for l in layers)
        if fmt.finetune is None:
            state, run.packed = _masked_finetune(fmt, run.packed, layers, state, masks, hooks, seed)
        else:
            state, run.packed = fmt.finetune(run.packed, layers, state, masks, hooks, seed)
        state = _with_layers(state, layers, _decoded(fmt, run.packed, layers))
    run.state = state
    run.accuracy = hooks.evaluate(state)
    return run


# --- one table row ------------------------------------------------------------------------------

def _gap(fmt: FormatAdapter | None, solver: dict) -> float | None:
    pairs = [v for v in solver.values() if v is not None]
    if fmt is None or fmt.gap is None or not pairs:
        return None
    found, bound = (float(sum(v)) for v in zip(*pairs))
    return fmt.gap(found, bound)


def _compression(per_layer: list) -> dict:
    return compression((p["dense_slots"], p["slots"], p["dense_bits"], p["value_bits"] + p["index_bits"])
                       for p in per_layer)


def run_row(run: FormatRun, pixels: dict, rows: int = 8, cols: int = 8, dataflow: str = "ws",
            dense_accuracy: float | None = None) -> dict:
    """The comparison row of one run: compression, hardware, gap, accuracy, and the per-layer numbers."""
    fmt = FORMATS.get(run.name)
    per_layer, dense_cost, cost = [], hwmodel.Cost(), hwmodel.Cost()
    for i, layer in enumerate(run.layers):
        R, N = layer.shape2d
        if layer.name not in pixels:
            raise ArrangeError(f"no output pixel count for layer {layer.name}; known: {', '.join(pixels)}")
        M = pixels[layer.name]
        packed = run.packed.get(layer.name)
        if packed is None:
            slots, bits = R * N, {"values": R * N * VALUE_BITS, "index": 0}
            hw = on_array(hwmodel.dense_layer(M, R, N), rows, cols, dataflow)
        else:
            slots, bits = fmt.slots(packed), fmt.storage_bits(packed, run.layers, i, VALUE_BITS)
            hw = fmt.hardware(packed, layer, M, bits["values"] + bits["index"], rows, cols, dataflow)
        dense_cost, cost = dense_cost + hw.dense, cost + hw.packed
        per_layer.append({"name": layer.name, "format": run.name if packed is not None else "dense",
                          "dense_slots": R * N, "slots": int(slots), "dense_bits": R * N * VALUE_BITS,
                          "value_bits": int(bits["values"]), "index_bits": int(bits["index"]),
                          "cycles_dense": int(hw.dense.cycles), "cycles": int(hw.packed.cycles),
                          "energy_dense_pj": float(hw.dense.energy_pj), "energy_pj": float(hw.packed.energy_pj),
                          "engine": hw.engine})
    total = {k: sum(p[k] for p in per_layer) for k in ("dense_slots", "slots", "dense_bits", "value_bits",
                                                        "index_bits")}
    total.update(cycles_dense=dense_cost.cycles, cycles=cost.cycles, energy_dense_pj=dense_cost.energy_pj,
                 energy_pj=cost.energy_pj)
    covered = [p for p in per_layer if p["format"] != "dense"]
    return {
        "format": run.name, "setting": run.setting, "layers": [p["name"] for p in covered],
        "dense_layers": [p["name"] for p in per_layer if p["format"] == "dense"],
        "accuracy_dense": dense_accuracy, "accuracy_projected": run.accuracy_projected, "accuracy": run.accuracy,
        **_compression(per_layer),
        "covered_matrix_compression": _compression(covered)["matrix_compression"] if covered else 1.0,
        **total,
        "speedup": total["cycles_dense"] / total["cycles"],
        "energy_ratio": total["energy_dense_pj"] / total["energy_pj"],
        "gap": _gap(fmt, run.solver), "gap_kind": fmt.gap_kind if fmt else "",
        "array": f"{rows}x{cols} {dataflow}", "per_layer": per_layer,
    }


def _dense_run(layers, hooks: Hooks) -> FormatRun:
    state = _with_layers(hooks.base_state, layers, {l.name: l.matrix.reshape(l.weight.shape) for l in layers})
    acc = hooks.evaluate(state)
    return FormatRun("dense", {}, list(layers), state=state, accuracy_projected=acc, accuracy=acc)


def compare_formats(model_layers=None, formats=tuple(FORMATS), settings: dict | None = None,
                    finetune_epochs: int = D.FORMATS_EPOCHS, seed: int = D.SEED, rows: int = D.FORMATS_ARRAY[0],
                    cols: int = D.FORMATS_ARRAY[1], dataflow: str = "ws", tolerance: float = 0.01,
                    time_limit: float = D.TIME_LIMIT,
                    solvers: dict | None = None, pixels: dict | None = None,
                    hooks: Hooks | None = None) -> list[dict]:
    """One row per format (plus the dense reference first) at matched accuracy on one model.

    Parameters
    ----------
    model_layers : the model's layers in network order (default: the digits
        CNN's shipped weights, :func:`arrange.models.digits.load_digits_layers`);
        their masks are honoured and held during fine-tuning.
    formats : names from :data:`FORMATS`.
    settings : format -> settings to try (default :data:`SETTINGS`); the matched
        one with the highest matrix compression is reported, ties to the earlier.
    finetune_epochs : fine-tuning epochs of the default hooks (0 = projection only).
    seed : passed to the solvers and the fine-tuning hook.
    rows, cols, dataflow : the systolic array; the FC engine gets ``cols`` PEs.
    tolerance : matched = fine-tuned accuracy >= dense accuracy - tolerance.
    time_limit : seconds per layer for each solver; ``solvers`` overrides
        :data:`DEFAULT_SOLVERS` per format.
    pixels : layer name -> output pixels M (default: the digits CNN's,
        :func:`arrange.models.digits.digits_pixels`).
    hooks : :class:`arrange.joint.Hooks` evaluating and fine-tuning the model
        (default: :func:`arrange.hooks.digits_hooks` with ``finetune_epochs``).

    Returns
    -------
    list of dict rows (see :func:`run_row`), each with ``matched`` and ``tried``
    (setting, accuracies, compressions, matched) for every setting run.

    Raises
    ------
    ArrangeError : an unknown format, an empty settings list, bad epochs.
    """
    settings = {**SETTINGS, **(settings or {})}
    solvers = {**DEFAULT_SOLVERS, **(solvers or {})}
    for name in list(formats) + sorted(set(solvers) - set(DEFAULT_SOLVERS)):
        _format(name)
        if not settings[name]:
            raise ArrangeError(f"format {name}: no settings to try")
    hooks = _default_hooks(hooks, finetune_epochs)
    layers = list(load_digits_layers().layers if model_layers is None else model_layers)
    pixels = digits_pixels() if pixels is None else pixels
    dense = _dense_run(layers, hooks)
    hw = dict(pixels=pixels, rows=rows, cols=cols, dataflow=dataflow, dense_accuracy=dense.accuracy)
    out = [dict(run_row(dense, **hw), matched=True, tried=[])]
    for name in formats:
        results = [run_row(apply_format(layers, name, s, finetune_epochs, seed, time_limit, solvers.get(name),
                                        hooks), **hw)
                   for s in settings[name]]
        for r in results:
            r["matched"] = r["accuracy"] >= dense.accuracy - tolerance
        tried = [{k: r[k] for k in ("setting", "accuracy_projected", "accuracy", "matrix_compression",
                                    "storage_compression", "matched")} for r in results]
        # Strongest matched setting; ties go to the earlier (listed stronger) one.
        best = max(results, key=lambda r: (r["matched"], r["matrix_compression"] if r["matched"] else r["accuracy"]))
        out.append(dict(best, tried=tried))
    return out


def _setting_text(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "-"


def format_markdown(rows: list[dict], details: bool = False) -> str:
    """The comparison as a markdown table with its conventions; ``details`` adds every setting tried."""
    body = []
    for r in rows:
        gap = "-" if r["gap"] is None else f"{100 * r['gap']:.1f}% {r['gap_kind']}"
        layers = ("all" if not r["dense_layers"] else ", ".join(r["layers"])) if r["layers"] else "-"
        body.append([r["format"], _setting_text(r["setting"]), layers,
                     f"{r['accuracy_projected']:.4f} -> {r['accuracy']:.4f}", "yes" if r["matched"] else "no",
                     f"{r['matrix_compression']:.2f}", f"{r['storage_compression']:.2f}",
                     f"{r['cycles']} ({r['speedup']:.2f}x)",
                     f"{r['energy_pj'] / 1e3:.1f} ({r['energy_ratio']:.2f}x)", gap])
    lines = [markdown_table(["format", "setting", "layers", "acc projected -> fine-tuned", "matched", "matrix x",
                    "storage x", "cycles (speedup)", "energy nJ (ratio)", "solver gap"], body)]
    lines += ["", f"Per image; array {rows[0]['array'] if rows else ''}; PermDNN layers on the FC engine with "
                  f"as many PEs as array columns; speedup and energy ratio against the dense layers on the "
                  f"same engines. Layers a format does not cover stay dense."]
    if details:
        tried = [[r["format"], _setting_text(t["setting"]), f"{t['accuracy_projected']:.4f}",
                  f"{t['accuracy']:.4f}", f"{t['matrix_compression']:.2f}", f"{t['storage_compression']:.2f}",
                  "yes" if t["matched"] else "no"] for r in rows for t in r["tried"]]
        lines += ["", markdown_table(["format", "setting", "acc projected", "acc fine-tuned", "matrix x",
                                      "storage x", "matched"], tried)]
    return "\n".join(lines)
