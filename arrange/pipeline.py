"""Pack every layer of a model (P1) and collect the per-layer numbers of DESIGN.md section 4.

A layer that cannot be handled is a fault, recorded in ``skipped`` with a
one-line reason (any exception, not only ArrangeError; a worker that died; a
layer whose memory estimate exceeds MemAvailable); the others still complete.
Each layer is one task (:mod:`arrange.executor`: this process, ``jobs`` forked
processes or Ray), read and pruned where it runs when the model is streamed
(:class:`arrange.io.LazyLayers`), written to the :class:`arrange.store.LayerStore`
as it finishes, and skipped when the store already holds it with the same
fingerprint (resume). Ctrl-C stops the run and the report holds what finished. Tensors the layer selection left
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

import signal
import sys
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from solvers.warm import warm_up

from .errors import ArrangeError, LayerError, is_int
from .executor import available_memory, run
from .formats import column_combine
from .io import LazyLayers
from .layer import check_packable
from .pack import pack
from .prune import prune_layers
from .report import compression
from .store import fingerprint

__all__ = ["BYTES_PER_ENTRY", "GAMMA_LADDER", "LayerReport", "PackReport", "check_memory", "gamma_advice",
           "pack_layers", "pair_conflicts"]

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
    interrupted: bool = False       # Ctrl-C stopped the run: only the layers that finished are here
    stored_masks: Mapping | None = None   # keep-masks read from the store, when results are not kept

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
        if self.stored_masks is not None:
            return self.stored_masks
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


#: bytes of memory one matrix entry costs while a layer is packed: the float64 matrix, the problem's
#: copies, the bool masks and the encoded result (measured: a worker packing 11008 x 4096 at 90%
#: sparsity with auto peaked at 2.61 GB, 58 bytes per entry; benchmarks/models/model_run.py)
BYTES_PER_ENTRY = 60


def check_memory(name: str, rows: int, cols: int) -> None:
    """LayerError, with the estimate, before starting a layer that would not fit in MemAvailable."""
    need = BYTES_PER_ENTRY * rows * cols
    free = available_memory()
    if free is not None and need > free:
        raise LayerError(name, f"needs about {need / 2 ** 30:.1f} GiB to pack ({rows} x {cols} at "
                               f"~{BYTES_PER_ENTRY} bytes per entry), {free / 2 ** 30:.1f} GiB available; "
                               f"not started (free memory, use fewer --jobs, or --exclude it)")


@dataclass(frozen=True)
class _Task:
    """One layer's job: the layer (or a LazyLayers and its index, read in the worker) and the settings.

    ``settings``: alpha, gamma, time_limit, seed, value_bits, params, advise and
    sparsity (layer-scope pruning done in the task, or None), JSON-able: the
    layer's fingerprint covers them; ``solver``: the name or the object itself;
    ``known``: the fingerprint the store holds for this layer (resume), or None.
    """

    layer: object
    settings: dict
    solver: object
    known: str | None
    keys: dict


@dataclass
class _Packed:
    key: str
    row: LayerReport | None     # None: the store already holds this layer (same fingerprint)
    result: object = None
    weight_shape: tuple = ()


def _pack_task(task: _Task) -> _Packed:
    """Read (and prune) one layer, skip it if the store has it, else check, pack and report it."""
    s = task.settings
    layer = task.layer[0][task.layer[1]] if isinstance(task.layer, tuple) else task.layer
    if s["sparsity"]:
        layer = prune_layers([layer], s["sparsity"], scope="layer")[0]
    key = fingerprint(layer, s)
    if key == task.known:
        return _Packed(key, None)
    check_packable(layer)
    check_memory(layer.name, *layer.shape2d)
    W = layer.matrix
    result = pack(W, alpha=s["alpha"], gamma=s["gamma"], solver=task.solver, time_limit=s["time_limit"],
                  seed=s["seed"], name=f"layer {layer.name}", params=s["params"] or None)
    row = _layer_report(layer, W, result, s["value_bits"], task.keys)
    if s["advise"]:
        row.advice = gamma_advice(W, result, row.storage_compression, s["alpha"], s["gamma"], s["time_limit"],
                                  s["seed"], s["value_bits"])
    return _Packed(key, row, result, tuple(layer.weight.shape))


class _Interrupt:
    """SIGINT sets ``hit`` and raises KeyboardInterrupt as usual: a solver that catches it and returns
    its best answer finishes its layer, and the run still stops after it. Inside :meth:`recording`
    (a finished layer going into the report and the store) the KeyboardInterrupt waits for its end,
    so the report and the store always hold the same layers."""

    def __init__(self):
        self.hit = False
        self._old = None
        self._recording = False
        self._pending = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.hit = True
        if self._recording:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def recording(self):
        self._recording = True
        try:
            yield
        finally:
            self._recording = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _say(line: str) -> None:
    print(f"arrange: {line}", file=sys.stderr, flush=True)


def _progress_line(count: int, total: int, name: str, row: LayerReport | None, error: str | None,
                   resumed: bool) -> str:
    head = f"[{count}/{total}] {name}: "
    if error is not None:
        return head + f"failed: {error}"
    if resumed:
        return head + f"already in the store ({row.groups} groups), skipped"
    return head + (f"{row.rows} x {row.cols}, {row.groups} groups (bound {row.lower_bound}, {row.status}), "
                   f"matrix {row.matrix_compression:.2f}x, storage {row.storage_compression:.2f}x, "
                   f"{row.seconds:.1f} s")


def pack_layers(layers, alpha: int = 8, gamma: float = 0.0, solver="auto", time_limit: float = 10.0,
                seed: int = 0, value_bits: int = 8, skipped=(), progress: bool = False, not_selected=(),
                advise: bool = True, keys=None, params=None, jobs: int = 1, executor: str = "local",
                address: str | None = None, store=None, sparsity: float | None = None, keep: bool = True):
    """Pack each layer's matrix; returns (PackReport, {layer name: ColumnCombined}).

    ``layers``: a list of :class:`~arrange.layer.Layer` or an
    :class:`arrange.io.LazyLayers` (each layer then read where it is packed).
    ``skipped``: faults found before packing (e.g. ``Model.skipped``), carried
    into the report; ``not_selected``: ``Model.not_selected``, likewise.
    ``advise``: measure the gamma ladder on layers whose packing does not pay.
    ``keys``: layer name -> state-dict weight name (``Model.keys``) for the rows' ``weight``.
    ``params``: per-solver parameters (:func:`arrange.pack`).
    ``progress``: a line per finished layer on stderr.
    ``jobs``, ``executor``, ``address``: where layers run (:func:`arrange.executor.run`:
    this process, ``jobs`` local processes, or Ray tasks); the answers are the same.
    ``store``: an :class:`arrange.store.LayerStore`: each finished layer is written to it
    as it completes, and layers it already holds with the same fingerprint are not packed
    again (resume). ``sparsity``: magnitude-prune each layer (layer scope) where it is packed.
    ``keep``: keep each layer's :class:`solvers.CombineResult` in ``report.results``
    (``keep=False`` frees each one once it is stored). With a store, the packed layers
    returned and ``report.keep_masks`` are read back from it when asked for, so at most
    one layer's result need be in memory.

    Any exception of one layer is reported as one line in ``skipped`` and the
    others finish. Ctrl-C stops the run: the report then holds the layers that
    finished (``report.interrupted`` is True; a solver that returns its best
    answer on Ctrl-C finishes its layer first).
    The pruned-magnitude percentage is weighted by nonzeros in the total, as an
    approximation of the share of weights removed (exact per layer).
    """
    if not (is_int(jobs) and jobs >= 1):
        raise ArrangeError(f"jobs must be an integer >= 1, got {jobs!r}")
    lazy = isinstance(layers, LazyLayers)
    shapes = layers.shapes if lazy else list(layers)
    names = [l.name for l in shapes]
    settings = {"alpha": alpha, "gamma": gamma, "solver": solver if isinstance(solver, str) else "custom",
                "time_limit": time_limit, "seed": seed, "value_bits": value_bits, "params": params or {}}
    known = store.fingerprints() if store is not None else {}
    tasks = [_Task((layers, i) if lazy else layers[i], {**settings, "advise": advise, "sparsity": sparsity},
                   solver, known.get(name), dict(keys or {}))
             for i, name in enumerate(names)]
    if executor == "local" and jobs > 1:
        warm_up()   # once here, so the forked workers inherit the compiled kernels instead of each loading them
    rows, results, errors = {}, {}, {}
    count = 0
    interrupted = False
    with _Interrupt() as sigint:
        try:
            for done in run(_pack_task, tasks, jobs=jobs, executor=executor, address=address,
                            stop=lambda: sigint.hit):
                with sigint.recording():
                    name = names[done.index]
                    count += 1
                    resumed = False
                    if done.error is not None:
                        errors[done.index] = (name, done.error)
                        if store is not None:
                            store.fail(name, done.error)
                    else:
                        out = done.value
                        resumed = out.row is None
                        row = LayerReport(**store.lookup(name, out.key)) if resumed else out.row
                        if not resumed:
                            if store is not None:
                                store.put(name, out.key, row.as_dict(), out.result, out.weight_shape,
                                          interrupted=out.result.interrupted)
                            if keep:
                                results[name] = out.result
                        rows[done.index] = row
                    if progress:
                        _say(_progress_line(count, len(tasks), name, rows.get(done.index),
                                            errors.get(done.index, (None, None))[1], resumed))
        except KeyboardInterrupt:
            interrupted = True
        interrupted = interrupted or sigint.hit   # the last layer's solver caught it and returned its best
    reports = [rows[i] for i in sorted(rows)]
    failed = list(skipped) + [errors[i] for i in sorted(errors)]
    report = PackReport(reports, failed, settings, model_total(reports), not_selected=list(not_selected),
                        results={n: results[n] for n in names if n in results}, interrupted=interrupted)
    if store is None:
        return report, {name: r.packed for name, r in report.results.items()}
    done_names = [r.name for r in reports]
    report.stored_masks = store.keep_map(done_names)
    return report, store.packed_map(done_names)
