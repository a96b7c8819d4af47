"""All packed formats side by side on the digits CNN at matched accuracy.

Problem: compare column combining, N:M with channel permutation, PermDNN,
PCNN and PENNI on one model: for each format the strongest setting whose
fine-tuned accuracy stays within ``tolerance`` (1 point) of the dense model,
with both compression rates, cycles and energy on one stated array, and the
gap of the format's combinatorial solver to its bound.

Method, for every setting of a small list per format (:data:`SETTINGS`; the
row reports the matched setting with the highest matrix compression, or the
most accurate one with ``matched`` False when none matches):
1. project every layer the format applies to (the others stay dense, and the
   row names them): column combining magnitude-prunes to ``sparsity`` then
   packs (P1, :func:`arrange.pack`); N:M solves P2 with k = m; PermDNN (linear
   layers only: it is an FC format, convs stay dense) picks shifts and
   permutations; PCNN (convs with kernels larger than 1x1) picks K patterns
   of n with CP-SAT; PENNI fits d basis kernels to a coefficient density;
2. fine-tune the whole network (:func:`arrange.models.digits_torch.finetune`).
   For the mask formats (all but PENNI) the format's structure is the mask,
   held fixed (layers the format does not cover train too, under their own
   masks if any), and the layer is then re-encoded with the same structure
   (groups, order, shifts, patterns) from the trained weights.  PENNI's
   structure is not a mask: its layers train as the product of basis and
   coefficients (a torch parametrization, coefficient support and kept
   channels fixed), so basis and coefficients are what is fine-tuned;
3. evaluate the decoded network in numpy (:func:`evaluate_digits`).

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
from typing import Callable

import numpy as np

import hwmodel
from hwmodel.energy import energy_table
from hwmodel.fc_engine import fc_energy, simulate_fc
from hwmodel.sparse_core import sparse_core_layer
from solvers import permdiag

from .errors import ArrangeError
from .formats import column_combine, nm, pcnn, penni, permdnn

__all__ = ["FORMATS", "SETTINGS", "DEFAULT_SOLVERS", "FormatRun", "apply_format", "run_row",
           "compare_formats", "format_markdown"]

VALUE_BITS = 8

#: settings tried per format, roughly strongest (most compressed) first
SETTINGS = {
    "column_combine": tuple({"sparsity": s, "alpha": 8, "gamma": g}
                            for s, g in ((0.8, 0.25), (0.7, 0.25), (0.6, 0.25), (0.5, 0.25), (0.7, 0.1), (0.6, 0.1))),
    "nm": ({"n": 1, "m": 8}, {"n": 1, "m": 4}, {"n": 2, "m": 8}, {"n": 2, "m": 4}),
    "permdnn": ({"p": 16}, {"p": 8}, {"p": 4}, {"p": 2}),
    "pcnn": tuple({"n": n, "K": 8} for n in (2, 3, 4, 5, 6)),
    "penni": tuple({"d": d, "density": f} for d, f in ((2, 0.5), (3, 0.5), (4, 0.5), (4, 1.0), (5, 1.0), (6, 1.0))),
}

#: solver per format (P1, P2, permuted-diagonal, pattern selection); PENNI has no solver choice.
#: All but CP-SAT stop on their own well inside the default time limit on the digits CNN, so the
#: table does not depend on machine load ("auto" portfolios would use the whole limit).
DEFAULT_SOLVERS = {"column_combine": "tabu", "nm": "apex-swap", "permdnn": "auto", "pcnn": "cpsat"}


@dataclass(frozen=True)
class Format:
    """How the comparison drives one format; ``mask`` None: the structure is no mask (PENNI)."""

    applies: Callable        # layer -> bool
    encode: Callable         # (layer, setting, solver, time_limit, seed) -> (packed, (found, bound) or None)
    decode: Callable         # packed -> weights in the layer's shape
    mask: Callable | None    # packed -> bool structure in the layer's shape
    reencode: Callable | None  # (packed, weights in the layer's shape) -> packed with the same structure
    finetune: Callable       # (fmt, packed dict, layers, state, masks, epochs, seed) -> (state, packed dict)
    slots: Callable          # packed -> stored values
    bits: Callable           # packed -> {"values", "index"} bits
    hardware: Callable       # (packed, layer, M, stored bits, rows, cols, dataflow) -> (dense cycles, cycles,
                             #  dense pJ, pJ, engine), dense and packed on the same engine
    gap_kind: str


# --- hardware -----------------------------------------------------------------------------------

def _array_pair(spec, rows, cols, dataflow) -> tuple:
    c = hwmodel.compare_layer(spec, rows, cols, dataflow)
    return c.dense.cycles, c.packed.cycles, c.dense.total_energy_pj, c.packed.total_energy_pj


def _fc_dram_pj(weight_bits: int, R: int, N: int) -> float:
    """DRAM energy as the array model charges it: stored weights, inputs and outputs once."""
    return (weight_bits + (R + N) * VALUE_BITS) / 64 * energy_table()["dram_access_64b"]


def _fc_pair(weights, n_pe: int, stored_bits: int) -> tuple:
    """The FC engine's cycles and energy (MACs, SRAM, plus DRAM as on the array), dense vs packed."""
    R, N = weights.shape
    dense = simulate_fc(np.ones(weights.shape, dtype=bool), n_pe=n_pe)
    packed = simulate_fc(weights, n_pe=n_pe)
    return (dense.cycles, packed.cycles,
            sum(fc_energy(dense, index_bits=0).values()) + _fc_dram_pj(R * N * VALUE_BITS, R, N),
            sum(fc_energy(packed, index_bits=0).values()) + _fc_dram_pj(stored_bits, R, N))


# --- column combining ---------------------------------------------------------------------------

def _cc_encode(layer, s, solver, time_limit, seed):
    from .pack import pack
    from .prune import magnitude_prune

    W = magnitude_prune(layer.matrix, s["sparsity"])
    result = pack(W, alpha=s["alpha"], gamma=s["gamma"], solver=solver, time_limit=time_limit, seed=seed,
                  name=layer.name)
    return result.packed, (result.num_groups, result.lower_bound)


def _cc_hardware(packed, layer, M, stored_bits, rows, cols, dataflow):
    spec = hwmodel.column_combined_layer(M, *layer.shape2d, packed.num_groups, packed.alpha,
                                         nnz=int(np.count_nonzero(packed.values)))
    return _array_pair(spec, rows, cols, dataflow) + ("array",)


def _cc_reencode(packed, W):
    groups = [row[row >= 0] for row in packed.table]
    return column_combine.encode_groups(np.asarray(W).reshape(packed.shape), groups, packed.alpha)


# --- N:M ----------------------------------------------------------------------------------------

def _nm_encode(layer, s, solver, time_limit, seed):
    packed = nm.encode(layer.matrix, s["n"], s["m"], solver=solver, time_limit=time_limit, seed=seed)
    return packed, (packed.kept, packed.upper_bound)


def _nm_hardware(packed, layer, M, stored_bits, rows, cols, dataflow):
    spec = sparse_core_layer(M, *layer.shape2d, packed.n, packed.m, nnz=int(np.count_nonzero(packed.values)))
    return _array_pair(spec, rows, cols, dataflow) + ("sparse core",)


def _nm_reencode(packed, W):
    return dataclasses.replace(packed, values=nm.values_at(packed, W).astype(packed.values.dtype))


# --- PermDNN ------------------------------------------------------------------------------------

def _permdnn_encode(layer, s, solver, time_limit, seed):
    packed = permdnn.encode(layer.matrix, s["p"], solver=solver, time_limit=time_limit, seed=seed)
    padded, _, _ = permdnn.pad(layer.matrix, s["p"])
    bound = permdiag.upper_bound(permdiag.PermDiagProblem.from_weights(padded, s["p"]))
    return packed, (packed.kept_energy, bound)


def _permdnn_hardware(packed, layer, M, stored_bits, rows, cols, dataflow):
    return _fc_pair(permdnn.mask(packed), cols, stored_bits) + ("FC engine",)


def _permdnn_reencode(packed, W):
    padded, _, _ = permdnn.pad(np.asarray(W).reshape(packed.shape), packed.p)
    fresh = permdnn.encode_with(padded, packed.p, packed.shifts, packed.row_order, packed.col_order)
    return dataclasses.replace(packed, values=fresh.values)


# --- PCNN ---------------------------------------------------------------------------------------

def _pcnn_positions(packed) -> np.ndarray:
    table = np.asarray(packed.table, dtype=bool)
    return np.nonzero(table)[1].reshape(table.shape[0], packed.n)[packed.ids]


def _pcnn_encode(layer, s, solver, time_limit, seed):
    packed = pcnn.encode(layer.matrix.reshape(layer.weight.shape), s["n"], s["K"], solver=solver,
                         time_limit=time_limit, seed=seed)
    return packed, (packed.stats["value"], packed.stats["bound"])


def _pcnn_hardware(packed, layer, M, stored_bits, rows, cols, dataflow):
    c = pcnn.simulate(packed, M, rows, cols, dataflow)
    return c.dense.cycles, c.packed.cycles, c.dense.total_energy_pj, c.packed.total_energy_pj, "array"


def _pcnn_mask(packed) -> np.ndarray:
    return np.asarray(packed.table, dtype=bool)[packed.ids].reshape(packed.shape)


def _pcnn_reencode(packed, W):
    O, I, kh, kw = packed.shape
    values = np.take_along_axis(np.asarray(W).reshape(O, I, kh * kw), _pcnn_positions(packed), axis=2)
    return dataclasses.replace(packed, values=values)


# --- PENNI --------------------------------------------------------------------------------------

def _penni_encode(layer, s, solver, time_limit, seed):
    return penni.encode(layer.matrix.reshape(layer.weight.shape), s["d"], density=s["density"]), None


def _penni_hardware(packed, layer, M, stored_bits, rows, cols, dataflow):
    c = penni.simulate(packed, M, rows, cols, dataflow)
    return (c.dense.cycles, c.cycles, c.dense.total_energy_pj,
            c.basis.total_energy_pj + c.combine.total_energy_pj, "array (2 GEMMs)")


def _shared_kernels(parts):
    """torch parametrization: a conv weight as sum_j (C * mask)[o, i, j] B[j], one (B, C) per group."""
    import torch

    class SharedKernels(torch.nn.Module):
        def __init__(self, parts):
            super().__init__()
            self.basis, self.coef, self.shapes = torch.nn.ParameterList(), torch.nn.ParameterList(), []
            for g, p in enumerate(parts):
                O, I, kh, kw = p.shape
                C, M = np.zeros((O, I, p.d)), np.zeros((O, I, p.d))
                C[np.ix_(p.out_channels, p.in_channels)] = np.where(p.mask, p.coefficients, 0.0)
                M[np.ix_(p.out_channels, p.in_channels)] = p.mask
                self.basis.append(torch.nn.Parameter(torch.as_tensor(p.basis.reshape(p.d, -1), dtype=torch.float32)))
                self.coef.append(torch.nn.Parameter(torch.as_tensor(C, dtype=torch.float32)))
                self.register_buffer(f"mask{g}", torch.as_tensor(M, dtype=torch.float32))
                self.shapes.append(p.shape)

        def forward(self, original):   # the original weight is replaced, not used
            return torch.cat([torch.einsum("oid,dk->oik", C * getattr(self, f"mask{g}"), B).reshape(shape)
                              for g, (B, C, shape) in enumerate(zip(self.basis, self.coef, self.shapes))])

    return SharedKernels(parts)


def _penni_finetune(fmt, packed, layers, state, masks, epochs, seed):
    """Train basis and coefficients (support and channels fixed) with the rest of the network, as PENNI does."""
    from torch.nn.utils import parametrize

    from .models.digits_torch import build_digits_model, finetune

    model = build_digits_model(state)
    modules = {}
    for layer in layers:
        if layer.name in packed:
            modules.setdefault(layer.base_name, []).append(layer.name)
    for base, names in modules.items():
        parametrize.register_parametrization(model.get_submodule(base), "weight",
                                             _shared_kernels([packed[n] for n in names]))
    finetune(model, {k: m for k, m in masks.items() if k not in modules}, epochs=epochs, seed=seed)
    trained = {}
    for base, names in modules.items():
        kernels = model.get_submodule(base).parametrizations.weight[0]
        for n, B, C in zip(names, kernels.basis, kernels.coef):
            p = packed[n]
            coef = C.detach().double().numpy()[np.ix_(p.out_channels, p.in_channels)]
            trained[n] = dataclasses.replace(p, basis=B.detach().double().numpy().reshape(p.basis.shape),
                                             coefficients=np.where(p.mask, coef, 0.0))
        parametrize.remove_parametrizations(model.get_submodule(base), "weight", leave_parametrized=True)
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}, trained


def _masked_finetune(fmt, packed, layers, state, masks, epochs, seed):
    """Masked fine-tuning with the format's structure as the mask, then re-encoding with that structure."""
    from .hooks import digits_hooks

    state = digits_hooks(epochs=epochs).finetune(state, masks, seed)
    by_name = {l.name: l for l in layers}
    return state, {n: fmt.reencode(p, _weight_of(state, by_name[n])) for n, p in packed.items()}


def _is_conv_kxk(layer) -> bool:
    return layer.kind == "conv" and layer.weight.shape[2] * layer.weight.shape[3] > 1


def _stored_values(packed) -> int:
    return packed.values.size


FORMATS = {
    "column_combine": Format(
        applies=lambda l: True, encode=_cc_encode, decode=column_combine.decode,
        mask=lambda p: column_combine.decode(p) != 0, reencode=_cc_reencode, finetune=_masked_finetune,
        slots=_stored_values, bits=column_combine.bits, hardware=_cc_hardware,
        gap_kind="groups over P1 lower bound"),
    "nm": Format(
        applies=lambda l: True, encode=_nm_encode, decode=nm.decode, mask=nm.mask, reencode=_nm_reencode,
        finetune=_masked_finetune, slots=_stored_values, bits=nm.bits, hardware=_nm_hardware,
        gap_kind="kept magnitude under rows bound"),
    "permdnn": Format(
        applies=lambda l: l.kind == "linear", encode=_permdnn_encode, decode=permdnn.decode, mask=permdnn.mask,
        reencode=_permdnn_reencode, finetune=_masked_finetune, slots=_stored_values, bits=permdnn.bits,
        hardware=_permdnn_hardware, gap_kind="kept energy under row/col bound"),
    "pcnn": Format(
        applies=_is_conv_kxk, encode=_pcnn_encode, decode=pcnn.decode, mask=_pcnn_mask, reencode=_pcnn_reencode,
        finetune=_masked_finetune, slots=_stored_values, bits=pcnn.bits, hardware=_pcnn_hardware,
        gap_kind="kept energy under CP-SAT bound"),
    "penni": Format(
        applies=lambda l: l.kind == "conv", encode=_penni_encode, decode=penni.decode, mask=None, reencode=None,
        finetune=_penni_finetune, slots=lambda p: penni.params(p)["total"], bits=penni.bits,
        hardware=_penni_hardware, gap_kind=""),
}


# --- running one format at one setting ----------------------------------------------------------

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


def _weight_of(state: dict, layer) -> np.ndarray:
    """The layer's slice (its group's output channels) of a network state."""
    full = np.asarray(state[f"{layer.base_name}.weight"], dtype=np.float64)
    rows = layer.weight.shape[0]
    return full[layer.group * rows:(layer.group + 1) * rows]


def _with_layers(state: dict, layers, arrays: dict) -> dict:
    """``state`` with the given layers' weights replaced (groups merged back)."""
    from .io import to_state_dict

    new = to_state_dict(dataclasses.replace(l, weight=arrays[l.name] if l.name in arrays else _weight_of(state, l),
                                            mask=None) for l in layers)
    return {**state, **{k: w.astype(np.float32) for k, w in new.items()}}


def _decoded(fmt: Format, packed: dict, layers) -> dict:
    return {l.name: fmt.decode(packed[l.name]).reshape(l.weight.shape) for l in layers if l.name in packed}


def _train_mask(fmt: Format, packed, layer):
    """What fine-tuning holds fixed: the format's mask, nothing (PENNI), or the layer's own mask if uncovered."""
    if packed is None:
        return layer.mask
    return None if fmt.mask is None else fmt.mask(packed).reshape(layer.weight.shape)


def apply_format(layers, name: str, setting: dict, epochs: int = 5, seed: int = 0, time_limit: float = 5.0,
                 solver=None) -> FormatRun:
    """Project ``layers`` (the digits CNN's) onto format ``name`` at ``setting``, fine-tune, re-encode.

    Returns a :class:`FormatRun`; its ``packed`` layers hold the fine-tuned
    weights in the structure found before fine-tuning.
    """
    from .io import layer_masks
    from .models.digits import digits_state, evaluate_digits

    if name not in FORMATS:
        raise ArrangeError(f"unknown format {name!r}; allowed: {', '.join(FORMATS)}")
    if epochs < 0:
        raise ArrangeError(f"finetune epochs must be >= 0, got {epochs}")
    fmt, layers = FORMATS[name], list(layers)
    solver = DEFAULT_SOLVERS.get(name) if solver is None else solver
    run = FormatRun(name, dict(setting), layers)
    for layer in layers:
        if fmt.applies(layer):
            run.packed[layer.name], run.solver[layer.name] = fmt.encode(layer, setting, solver, time_limit, seed)
    base = digits_state()
    state = _with_layers(base, layers, {l.name: l.matrix.reshape(l.weight.shape) for l in layers})
    state = _with_layers(state, layers, _decoded(fmt, run.packed, layers))
    run.accuracy_projected = evaluate_digits(state)
    run.projected = dict(run.packed)
    if epochs:
        masks = layer_masks(dataclasses.replace(l, mask=_train_mask(fmt, run.packed.get(l.name), l))
                            for l in layers)
        state, run.packed = fmt.finetune(fmt, run.packed, layers, state, masks, epochs, seed)
        state = _with_layers(state, layers, _decoded(fmt, run.packed, layers))
    run.state = state
    run.accuracy = evaluate_digits(state)
    return run


# --- one table row ------------------------------------------------------------------------------

def _producer(layers, i: int):
    """(producer's total output channels, its groups) of layer i, or None for the first module."""
    base = layers[i].base_name
    before = [l for l in layers[:i] if l.base_name != base]
    if not before:
        return None
    prev = before[-1].base_name
    group = [l for l in layers if l.base_name == prev]
    return sum(l.weight.shape[0] for l in group), group[0].groups


def _folds(layers, i: int, packed) -> bool:
    """True when an N:M layer's column order folds into its producer (no stored permutation)."""
    if packed.order is None or packed.padded or layers[i].groups > 1:
        return packed.order is None
    producer = _producer(layers, i)
    if producer is None or producer[1] > 1 or packed.shape[1] % producer[0]:
        return False
    return nm.channel_order(packed.order, packed.shape[1] // producer[0]) is not None


def _gap(name: str, solver: dict) -> float | None:
    pairs = [v for v in solver.values() if v is not None]
    if not pairs:
        return None
    found, bound = (float(sum(v)) for v in zip(*pairs))
    if name == "column_combine":
        return (found - bound) / bound if bound > 0 else 0.0
    return (bound - found) / bound if bound > 0 else 0.0


def run_row(run: FormatRun, pixels: dict, rows: int = 8, cols: int = 8, dataflow: str = "ws",
            dense_accuracy: float | None = None) -> dict:
    """The comparison row of one run: compression, hardware, gap, accuracy, and the per-layer numbers."""
    fmt = FORMATS.get(run.name)
    per_layer = []
    for i, layer in enumerate(run.layers):
        R, N = layer.shape2d
        packed = run.packed.get(layer.name)
        if packed is None:
            slots, bits = R * N, {"values": R * N * VALUE_BITS, "index": 0}
        elif run.name == "nm":
            slots, bits = fmt.slots(packed), nm.bits(packed, VALUE_BITS, store_order=not _folds(run.layers, i, packed))
        else:
            slots, bits = fmt.slots(packed), fmt.bits(packed, VALUE_BITS)
        if layer.name not in pixels:
            raise ArrangeError(f"no output pixel count for layer {layer.name}; known: {', '.join(pixels)}")
        M = pixels[layer.name]
        if packed is None:
            dc, c, de, e, engine = _array_pair(hwmodel.dense_layer(M, R, N), rows, cols, dataflow) + ("array",)
        else:
            dc, c, de, e, engine = fmt.hardware(packed, layer, M, bits["values"] + bits["index"], rows, cols,
                                                dataflow)
        per_layer.append({"name": layer.name, "format": run.name if packed is not None else "dense",
                          "dense_slots": R * N, "slots": int(slots), "dense_bits": R * N * VALUE_BITS,
                          "value_bits": int(bits["values"]), "index_bits": int(bits["index"]),
                          "cycles_dense": int(dc), "cycles": int(c), "energy_dense_pj": float(de),
                          "energy_pj": float(e), "engine": engine})
    total = {k: sum(p[k] for p in per_layer) for k in ("dense_slots", "slots", "dense_bits", "value_bits",
                                                        "index_bits", "cycles_dense", "cycles",
                                                        "energy_dense_pj", "energy_pj")}
    covered = [p for p in per_layer if p["format"] != "dense"]
    return {
        "format": run.name, "setting": run.setting, "layers": [p["name"] for p in covered],
        "dense_layers": [p["name"] for p in per_layer if p["format"] == "dense"],
        "accuracy_dense": dense_accuracy, "accuracy_projected": run.accuracy_projected, "accuracy": run.accuracy,
        "matrix_compression": total["dense_slots"] / total["slots"],
        "storage_compression": total["dense_bits"] / (total["value_bits"] + total["index_bits"]),
        "covered_matrix_compression": (sum(p["dense_slots"] for p in covered) / sum(p["slots"] for p in covered)
                                       if covered else 1.0),
        **total,
        "speedup": total["cycles_dense"] / total["cycles"],
        "energy_ratio": total["energy_dense_pj"] / total["energy_pj"],
        "gap": _gap(run.name, run.solver), "gap_kind": fmt.gap_kind if fmt else "",
        "array": f"{rows}x{cols} {dataflow}", "per_layer": per_layer,
    }


def _dense_run(layers) -> FormatRun:
    from .models.digits import digits_state, evaluate_digits

    state = _with_layers(digits_state(), layers, {l.name: l.matrix.reshape(l.weight.shape) for l in layers})
    acc = evaluate_digits(state)
    return FormatRun("dense", {}, list(layers), state=state, accuracy_projected=acc, accuracy=acc)


def compare_formats(model_layers=None, formats=tuple(FORMATS), settings: dict | None = None,
                    finetune_epochs: int = 5, seed: int = 0, rows: int = 8, cols: int = 8,
                    dataflow: str = "ws", tolerance: float = 0.01, time_limit: float = 5.0,
                    solvers: dict | None = None, pixels: dict | None = None) -> list[dict]:
    """One row per format (plus the dense reference first) at matched accuracy on the digits CNN.

    Parameters
    ----------
    model_layers : the digits CNN's layers in network order (default: the
        shipped weights, :func:`arrange.models.digits.load_digits_layers`);
        their masks are honoured and held during fine-tuning.
    formats : names from :data:`FORMATS`.
    settings : format -> settings to try (default :data:`SETTINGS`); the matched
        one with the highest matrix compression is reported, ties to the earlier.
    finetune_epochs, seed : fine-tuning per setting (0 = projection only).
    rows, cols, dataflow : the systolic array; the FC engine gets ``cols`` PEs.
    tolerance : matched = fine-tuned accuracy >= dense accuracy - tolerance.
    time_limit : seconds per layer for each solver; ``solvers`` overrides
        :data:`DEFAULT_SOLVERS` per format.
    pixels : layer name -> output pixels M (default: the digits CNN's).

    Returns
    -------
    list of dict rows (see :func:`run_row`), each with ``matched`` and ``tried``
    (setting, accuracies, compressions, matched) for every setting run.

    Raises
    ------
    ArrangeError : an unknown format, an empty settings list, bad epochs.
    """
    from .compress_report import digits_pixels
    from .models.digits import load_digits_layers

    layers = list(load_digits_layers().layers if model_layers is None else model_layers)
    settings = {**SETTINGS, **(settings or {})}
    solvers = {**DEFAULT_SOLVERS, **(solvers or {})}
    pixels = digits_pixels() if pixels is None else pixels
    for name in list(formats) + sorted(set(solvers) - set(DEFAULT_SOLVERS)):
        if name not in FORMATS:
            raise ArrangeError(f"unknown format {name!r}; allowed: {', '.join(FORMATS)}")
        if not settings[name]:
            raise ArrangeError(f"format {name}: no settings to try")
    dense = _dense_run(layers)
    hw = dict(pixels=pixels, rows=rows, cols=cols, dataflow=dataflow, dense_accuracy=dense.accuracy)
    out = [dict(run_row(dense, **hw), matched=True, tried=[])]
    for name in formats:
        results = [run_row(apply_format(layers, name, s, finetune_epochs, seed, time_limit, solvers.get(name)), **hw)
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


def _table(head: list, body: list) -> list:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]


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
    lines = _table(["format", "setting", "layers", "acc projected -> fine-tuned", "matched", "matrix x",
                    "storage x", "cycles (speedup)", "energy nJ (ratio)", "solver gap"], body)
    lines += ["", f"Per image; array {rows[0]['array'] if rows else ''}; PermDNN layers on the FC engine with "
                  f"as many PEs as array columns; speedup and energy ratio against the dense layers on the "
                  f"same engines. Layers a format does not cover stay dense."]
    if details:
        tried = [[r["format"], _setting_text(t["setting"]), f"{t['accuracy_projected']:.4f}",
                  f"{t['accuracy']:.4f}", f"{t['matrix_compression']:.2f}", f"{t['storage_compression']:.2f}",
                  "yes" if t["matched"] else "no"] for r in rows for t in r["tried"]]
        lines += [""] + _table(["format", "setting", "acc projected", "acc fine-tuned", "matrix x", "storage x",
                                "matched"], tried)
    return "\n".join(lines)
