"""PCNN pattern format: every k x k kernel keeps n weights in one of K shared patterns.

A conv layer W (O, I, kh, kw) is stored as
- ``values`` (O, I, n): each kernel's kept weights, in increasing position order
  (position = y * kw + x) of its pattern;
- ``ids`` (O, I): the pattern of each kernel, ceil(log2 K') bits each;
- ``table`` (K', kh*kw) bool: the patterns, kh*kw bits each (K' <= K patterns
  actually used).
The ids plus the table are PCNN's Sparsity Pattern Mask (SPM) index.

Method: the patterns are chosen by :func:`solvers.patterns.select_patterns`
(cardinality-constrained facility location: greedy, exact CP-SAT, or PCNN's
frequency rule); each kernel then takes its best chosen pattern exactly (the
argmax of kept energy).  :func:`choose_n` picks n per layer under a model-wide
budget of kept weights, exactly, with the multiple-choice knapsack DP of
:mod:`solvers.knapsack` (value = kept energy with the layer's K patterns).

Reference: J. Tan, L. Niu, J. K. Adams, V. Boominathan, J. T. Robinson,
R. G. Baraniuk, A. Veeraraghavan, "PCNN: Pattern-based Fine-Grained Regular
Pruning Towards Optimizing CNN Accelerators", DAC 2020,
doi:10.1109/DAC18072.2020.9218498.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hwmodel.kernel_patterns import simulate_pcnn
from hwmodel.packed import index_bits_for
from solvers import knapsack
from solvers.patterns import select_patterns
from solvers.problem import Options, ProblemError

from ..errors import ArrangeError, is_int
from .base import FormatAdapter, Hardware, check_weights, gap_under_upper_bound

__all__ = ["PCNNPacked", "ENERGIES", "kernel_energy", "encode", "decode", "bits", "mask", "reencode", "choose_n",
           "simulate", "ADAPTER"]

ENERGIES = {"square": np.square, "abs": np.abs}


@dataclass(eq=False)
class PCNNPacked:
    """A pattern-pruned conv layer; ``decode`` rebuilds the dense 4-D weights of what was kept."""

    values: np.ndarray   # (O, I, n) kept weights, in pattern position order
    ids: np.ndarray      # (O, I) int64 row of ``table`` per kernel
    table: np.ndarray    # (K', kh*kw) bool patterns
    shape: tuple         # (O, I, kh, kw)
    K: int               # patterns allowed (``table`` may hold fewer)
    stats: dict = field(default_factory=dict)  # solver, value, bound, status, gap, seconds

    @property
    def n(self) -> int:
        return self.values.shape[2]

    @property
    def num_patterns(self) -> int:
        return self.table.shape[0]


def _check_weights(W) -> np.ndarray:
    W = check_weights(W, 4, "PCNN")
    kh, kw = W.shape[2:]
    if kh * kw == 1:
        raise ArrangeError(f"PCNN needs kernels larger than 1x1, got {kh}x{kw}")
    return W


def _check_params(n, K, k2: int) -> tuple[int, int]:
    if not is_int(n) or not 1 <= n <= k2:
        raise ArrangeError(f"PCNN n must be an integer in 1..{k2} (kh*kw), got {n!r}")
    if not is_int(K) or K < 1:
        raise ArrangeError(f"PCNN K must be an integer >= 1, got {K!r}")
    return int(n), int(K)


def kernel_energy(W, energy: str = "square") -> np.ndarray:
    """Per-position energy of every kernel, (O*I, kh*kw) float64."""
    if energy not in ENERGIES:
        raise ArrangeError(f"unknown PCNN energy {energy!r}; allowed: {', '.join(ENERGIES)}")
    O, I, kh, kw = W.shape
    return ENERGIES[energy](np.asarray(W, dtype=np.float64).reshape(O * I, kh * kw))


def _select(e, n, K, solver, candidates, time_limit, seed):
    try:
        return select_patterns(e, n, K, solver=solver, candidates=candidates,
                               options=Options(time_limit=time_limit, seed=seed))
    except ProblemError as err:
        raise ArrangeError(f"PCNN: {err}") from None


def encode(W, n: int, K: int, solver="greedy", energy: str = "square", candidates: str = "topn",
           time_limit: float = 10.0, seed: int = 0) -> PCNNPacked:
    """Prune W (O, I, kh, kw) to n weights per kernel in at most K shared patterns.

    Parameters
    ----------
    W : conv weights (O, I, kh, kw) with kh * kw >= 2.
    n, K : kept weights per kernel (1..kh*kw) and patterns allowed (>= 1).
    solver : "greedy", "cpsat", "frequency" (see :data:`solvers.patterns.SOLVERS`) or a callable.
    energy : "square" (w^2, the Frobenius error) or "abs" (|w|) as the value kept.
    candidates : "topn" (the kernels' own top-n masks) or "all" (every n-subset).
    time_limit, seed : for CP-SAT.

    Returns
    -------
    PCNNPacked, with ``stats`` holding the solver's value, bound, gap and status.

    Raises
    ------
    ArrangeError
        1x1 kernels, n outside 1..kh*kw, K < 1, unknown solver, energy or candidates.

    Examples
    --------
    >>> W = np.arange(1.0, 19.0).reshape(1, 2, 3, 3)
    >>> p = encode(W, n=2, K=1)
    >>> p.table.astype(int).tolist(), p.values.tolist()
    ([[0, 0, 0, 0, 0, 0, 0, 1, 1]], [[[8.0, 9.0], [17.0, 18.0]]])
    """
    W = _check_weights(W)
    O, I, kh, kw = W.shape
    n, K = _check_params(n, K, kh * kw)
    result = _select(kernel_energy(W, energy), n, K, solver, candidates, time_limit, seed)
    table = result.patterns
    ids = result.assignment.reshape(O, I)
    values = np.take_along_axis(W.reshape(O, I, kh * kw), _positions(table, n, ids), axis=2)
    stats = {"solver": result.solver, "value": result.value, "bound": result.bound,
             "status": result.status, "gap": result.gap, "seconds": result.seconds}
    return PCNNPacked(values, ids, table, (O, I, kh, kw), K, stats)


def _positions(table: np.ndarray, n: int, ids: np.ndarray) -> np.ndarray:
    """(O, I, n) kept positions of every kernel: its pattern's n positions, in increasing order."""
    # Each pattern row has exactly n positions, so the selected flat entries reshape to (K', n).
    return np.nonzero(np.asarray(table, dtype=bool))[1].reshape(table.shape[0], n)[ids]


def decode(packed: PCNNPacked) -> np.ndarray:
    """The dense (O, I, kh, kw) weights holding exactly the kept values."""
    O, I, kh, kw = packed.shape
    table = np.asarray(packed.table, dtype=bool)
    if np.any(table.sum(axis=1) != packed.n):
        raise ArrangeError(f"PCNN pattern table rows must each hold n={packed.n} positions")
    dense = np.zeros((O, I, kh * kw), dtype=packed.values.dtype)
    np.put_along_axis(dense, _positions(table, packed.n, packed.ids), packed.values, axis=2)
    return dense.reshape(O, I, kh, kw)


def bits(packed: PCNNPacked, value_bits: int = 8) -> dict:
    """Storage: kept values, and the SPM index (a pattern id per kernel plus the pattern table)."""
    O, I, kh, kw = packed.shape
    kernels = O * I
    id_bits = index_bits_for(packed.num_patterns)
    table_bits = packed.num_patterns * kh * kw
    return {
        "values": kernels * packed.n * value_bits,
        "index": kernels * id_bits + table_bits,
        "ids": kernels * id_bits,
        "table": table_bits,
        "dense": kernels * kh * kw * value_bits,
    }


def simulate(packed: PCNNPacked, out_pixels: int, rows: int = 32, cols: int = 32, dataflow: str = "ws"):
    """The layer on the systolic array against its dense form (:func:`hwmodel.kernel_patterns.simulate_pcnn`)."""
    O, I, kh, kw = packed.shape
    return simulate_pcnn(out_pixels, O, I, kh * kw, packed.n, packed.num_patterns, rows, cols, dataflow)


def choose_n(layers, budget: int, K: int, choices=None, solver="greedy", energy: str = "square",
             time_limit: float = 10.0, seed: int = 0) -> list[int]:
    """n per layer maximising the kept energy, total kept weights <= budget (exact MCKP DP).

    ``layers`` is a sequence of conv weights; ``choices`` the n values tried (default
    1..kh*kw per layer).  The value of (layer, n) is the kept energy of that layer's
    K patterns found by ``solver``, so the choice of n is exact given those values.
    """
    if not is_int(budget) or budget < 0:
        raise ArrangeError(f"PCNN budget must be an integer >= 0 kept weights, got {budget!r}")
    costs, values, options = [], [], []
    for W in layers:
        W = _check_weights(W)
        O, I, kh, kw = W.shape
        ns = list(range(1, kh * kw + 1)) if choices is None else [int(c) for c in choices]
        for c in ns:
            _check_params(c, K, kh * kw)
        e = kernel_energy(W, energy)
        kept = [_select(e, c, K, solver, "topn", time_limit, seed).value for c in ns]
        costs.append(np.asarray(ns, dtype=np.int64) * O * I)
        values.append(np.asarray(kept))
        options.append(ns)
    try:
        picked = knapsack.solve(costs, values, int(budget))
    except ProblemError as err:
        raise ArrangeError(f"PCNN choose_n: {err}") from None
    return [ns[i] for ns, i in zip(options, picked.choice)]


def mask(packed: PCNNPacked) -> np.ndarray:
    """Bool (O, I, kh, kw): each kernel's pattern, what fine-tuning holds fixed."""
    return np.asarray(packed.table, dtype=bool)[packed.ids].reshape(packed.shape)


def reencode(packed: PCNNPacked, W) -> PCNNPacked:
    """W (fine-tuned weights, any shape of O * I * kh * kw entries) in the same patterns."""
    O, I, kh, kw = packed.shape
    values = np.take_along_axis(np.asarray(W).reshape(O, I, kh * kw),
                                _positions(packed.table, packed.n, packed.ids), axis=2)
    return dataclasses.replace(packed, values=values)


def _project(layer, setting: dict, solver, time_limit: float, seed: int):
    packed = encode(layer.matrix.reshape(layer.weight.shape), setting["n"], setting["K"], solver=solver,
                    time_limit=time_limit, seed=seed)
    return packed, (packed.stats["value"], packed.stats["bound"])


def _on_array(packed: PCNNPacked, layer, M: int, stored_bits: int, rows: int, cols: int, dataflow: str):
    c = simulate(packed, M, rows, cols, dataflow)
    return Hardware(c.dense.cost, c.packed.cost, "array")


def _is_conv_kxk(layer) -> bool:
    return layer.kind == "conv" and layer.weight.shape[2] * layer.weight.shape[3] > 1


#: PCNN in a model: convs with kernels larger than 1x1, the fixed-ratio (kh*kw, n) layout with pattern ids
ADAPTER = FormatAdapter(
    name="pcnn", project=_project, decode=decode, bits=bits, hardware=_on_array,
    settings=tuple({"n": n, "K": 8} for n in (2, 3, 4, 5, 6)), solver="cpsat", applies=_is_conv_kxk,
    mask=mask, reencode=reencode, gap=gap_under_upper_bound, gap_kind="kept energy under CP-SAT bound")
