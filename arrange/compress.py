"""Tight compression of one layer: quantise, prune, arrange, pack (DESIGN.md sections 3-4).

Problem: given a layer's weight matrix and a target, produce the packed
arrangement that a systolic array runs, with its compression numbers.

Method (Tight Compression): unstructured magnitude pruning of the weights;
symmetric per-row quantisation to b bits; optionally the subword view
(s-bit subwords of the sign-magnitude integers, each a column with a shift) and
subword-level pruning of the smallest contributions |subword| * 2^shift; then
the arrangement, either P1 (min-width combining, alpha/gamma, variable width)
or P2 (fixed-ratio grouping, k columns per group keep their top n per row),
both ranking subwords by contribution so a cell keeps the one worth most;
the result is packed, verified, and decoded back to the effective weights the
network now computes with. Arrangement-aware pruning spends part of the
sparsity budget on the conflicts the arrangement prunes anyway.

References: Y. Chen, Z. Zhu, Y. Jiang, C.-Y. Tsui, "Tight Compression", DAC 2020
and IEEE TCAD 2022 (doi:10.1109/TCAD.2022.3178047); H. T. Kung, B. McDanel,
S. Q. Zhang, "Column Combining", ASPLOS 2019 (doi:10.1145/3297858.3304028).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hwmodel.packed import index_bits_for

from . import defaults as D
from .errors import ArrangeError, LayerError
from .formats import column_combine
from .pack import pack, permute
from .prune import magnitude_prune
from .quant import Subwords, check_widths, from_subwords, prune_subwords, quantize, to_subwords

__all__ = ["CompressConfig", "LayerOutcome", "compress_matrix", "project_to_slots", "rates", "group_keep",
           "contributions", "PROBLEMS", "load_scores", "layer_score"]

PROBLEMS = ("p1", "p2")


@dataclass(frozen=True)
class CompressConfig:
    """Everything that decides a compression; validated on construction."""

    sparsity: float = D.COMPRESS_SPARSITY   # weight-level unstructured sparsity
    scope: str = "layer"            # "layer" or "global" pruning
    bits: int = D.BITS              # weight bit width b
    subword: int | None = D.SUBWORD  # subword width s; None arranges whole weights
    subword_sparsity: float = 0.0   # fraction of nonzero subwords pruned (over a whole schedule in joint)
    problem: str = "p1"             # "p1" (alpha, gamma) or "p2" (k, n)
    alpha: int = D.ALPHA
    gamma: float = D.GAMMA
    k: int = 8
    n: int = 1
    solver: str = D.SOLVER
    params: dict = field(default_factory=dict, hash=False)   # per-solver parameters (arrange.pack)
    time_limit: float = D.TIME_LIMIT  # per layer
    scores: dict = field(default_factory=dict, hash=False, repr=False)  # p2: layer name -> score (see layer_score)
    arrangement_aware: bool = False
    baseline: bool = True           # also pack with greedy-cc at weight level (column combining)
    seed: int = D.SEED

    def __post_init__(self):
        for name in ("sparsity", "subword_sparsity"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ArrangeError(f"{name.replace('_', ' ')} must be in [0, 1), got {v!r}")
        if self.scope not in ("layer", "global"):
            raise ArrangeError(f"scope must be 'layer' or 'global', got {self.scope!r}")
        if self.problem not in PROBLEMS:
            raise ArrangeError(f"problem must be one of {PROBLEMS}, got {self.problem!r}")
        check_widths(self.bits, self.subword if self.subword is not None else 1)
        if self.problem == "p1" and (not isinstance(self.alpha, int) or self.alpha < 1):
            raise ArrangeError(f"alpha must be an integer >= 1, got {self.alpha!r}")
        if self.problem == "p1" and not self.gamma >= 0:
            raise ArrangeError(f"gamma must be >= 0, got {self.gamma!r}")
        if self.problem == "p2" and not (isinstance(self.k, int) and isinstance(self.n, int)
                                         and 1 <= self.n < self.k):
            raise ArrangeError(f"p2 needs integers 1 <= n < k, got k={self.k!r}, n={self.n!r}")
        if not self.time_limit > 0:
            raise ArrangeError(f"time limit must be > 0, got {self.time_limit!r}")
        if self.scores and self.problem != "p2":
            raise ArrangeError("scores rank entries for p2 (fixed-ratio grouping); use --problem p2")

    @property
    def value_bits(self) -> int:
        """Stored width of one packed value: b, or sign + s for a subword."""
        return self.bits if self.subword is None else self.subword + 1

    @property
    def slot_bits(self) -> int:
        """Width one array slot carries for the matrix compression rate (b or s)."""
        return self.bits if self.subword is None else self.subword


@dataclass(eq=False)
class LayerOutcome:
    """A compressed layer: numbers for the report and arrays for execution and export."""

    name: str
    rows: int
    cols: int
    weight_nnz: int                 # after weight pruning, before arrangement
    arranged_cols: int              # columns the arrangement saw (N, or N*b/s subword columns)
    arranged_nnz: int               # nonzeros it saw
    packed_cols: int                # G (P1) or arranged_cols / k * n (P2)
    bound: float                    # P1 lower bound on groups; P2 upper bound on kept magnitude
    objective: float                # P1 groups; P2 kept magnitude
    status: str
    solver: str
    matrix_compression: float       # (R * N * b) / (R * packed_cols * slot_bits)
    storage_compression: float      # dense bits / (value bits + index bits)
    bits: dict
    pruned_pct: float               # % of the pre-arrangement magnitude (subword contributions) it pruned
    seconds: float
    weights: np.ndarray             # effective float weights (R, N) after everything
    scale: np.ndarray               # (R,) quantisation scale
    allowed: np.ndarray             # bool (R, arranged_cols): entries the packing keeps
    packed: object = None           # ColumnCombined over the arranged columns (P1), or None (P2)
    order: np.ndarray | None = None
    baseline_cols: int | None = None
    baseline_compression: float | None = None
    stats: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        if self.bound == 0:
            return 0.0
        return abs(self.objective - self.bound) / abs(self.bound)


def _arranged_matrix(W: np.ndarray, cfg: CompressConfig):
    """Quantise, and for subwords split and subword-prune.

    Returns (M, C, Quantized, Subwords or None): M holds the stored integers
    (weights or signed subwords); C ranks them for the arrangement by what they
    contribute, |subword| * 2^shift, so a cell never keeps a low nibble over a
    high one.
    """
    Q = quantize(W, cfg.bits)
    if cfg.subword is None:
        return Q.q, Q.q, Q, None
    sw = to_subwords(Q.q, cfg.bits, cfg.subword)
    if cfg.subword_sparsity:
        sw = prune_subwords(sw, cfg.subword_sparsity)
    return sw.values, contributions(sw), Q, sw


def contributions(sw: Subwords) -> np.ndarray:
    """sign * |subword| * 2^shift: each subword entry's share of its weight."""
    return sw.values.astype(np.int64) << sw.shifts[None, :].astype(np.int64)


def _weights(kept: np.ndarray, Q, sw: Subwords | None) -> np.ndarray:
    q = kept if sw is None else from_subwords(Subwords(kept, sw.shifts, sw.source, sw.bits, sw.subword))
    return q * Q.scale[:, None]


def group_keep(M: np.ndarray, order: np.ndarray, k: int, n: int) -> np.ndarray:
    """Bool mask: in each (row, run of k permuted columns) the n largest |M| (ties: lower column)."""
    R, N = M.shape
    cells = np.abs(M[:, order]).reshape(R, N // k, k)
    # stable argsort on -|M| ranks equal magnitudes by position, i.e. by permuted column
    rank = np.argsort(np.argsort(-cells, axis=2, kind="stable"), axis=2, kind="stable")
    keep_perm = ((rank < n) & (cells > 0)).reshape(R, N)
    keep = np.zeros_like(keep_perm)
    keep[:, order] = keep_perm
    return keep


def _p1(M, C, cfg: CompressConfig, name: str):
    r = pack(C, alpha=cfg.alpha, gamma=cfg.gamma, solver=cfg.solver, time_limit=cfg.time_limit,
             seed=cfg.seed, name=name, params=cfg.params)
    kept = np.where(r.pruned, 0, M)
    # after conflict pruning every cell holds at most one entry, so this encodes exactly the kept ones
    packed = column_combine.encode_groups(kept, r.groups, cfg.alpha)
    b = column_combine.bits(packed, value_bits=cfg.value_bits)
    return dict(kept=kept, packed_cols=r.num_groups, bound=r.lower_bound, objective=r.num_groups,
                status=r.status, solver=r.solver, packed=packed, order=None,
                values_bits=b["values"], index_bits=b["index"], seconds=r.seconds)


def load_scores(path) -> dict:
    """Per-layer P2 scores from a .npz/.pt/.safetensors/.npy file: layer name (or state-dict key) -> array."""
    from .io import read_arrays

    return read_arrays(path)


def layer_score(name: str, W: np.ndarray, Q, sw: Subwords | None, cfg: CompressConfig):
    """The score matrix over the arranged columns of layer ``name``, or None when it has none.

    The file's entry is a matrix of the layer's size (e.g. |W| * ||X_j||), or
    one value per input channel (e.g. ||X_j||; repeated over a conv's kernel
    positions), which scales |W|. A subword carries its share of its weight's
    score, |subword| * 2^shift / |q|.
    """
    S = cfg.scores.get(name, cfg.scores.get(f"{name}.weight"))
    if S is None:
        return None
    R, N = W.shape
    S = np.asarray(S, dtype=np.float64)
    if S.ndim == 1 and S.size and N % S.size == 0 and S.size != R * N:
        S = np.abs(W) * np.repeat(S, N // S.size)[None, :]
    elif S.size == R * N:
        S = S.reshape(R, N)
    else:
        raise LayerError(name, f"score of shape {S.shape} fits neither the weight ({R}, {N}) nor its {N} columns")
    if sw is None:
        return S
    q = np.abs(Q.q)[:, sw.source]
    return np.where(q > 0, S[:, sw.source] * np.abs(contributions(sw)) / np.maximum(q, 1), 0.0)


def _p2(M, C, cfg: CompressConfig, name: str, score=None):
    r = permute(C, k=cfg.k, n=cfg.n, solver=cfg.solver, time_limit=cfg.time_limit, seed=cfg.seed,
                name=name, params=cfg.params, score=score)
    R, N = M.shape
    keep = r.keep_mask
    packed_cols = (N + r.padded) // cfg.k * cfg.n
    index = R * packed_cols * index_bits_for(cfg.k) + (N + r.padded) * index_bits_for(N + r.padded)
    return dict(kept=np.where(keep, M, 0), packed_cols=packed_cols, bound=r.upper_bound,
                objective=r.kept, status=r.status, solver=r.solver, packed=None, order=r.order,
                values_bits=R * packed_cols * cfg.value_bits, index_bits=index, seconds=r.seconds)



def rates(cfg: CompressConfig, R: int, N: int, packed_cols: int, values_bits: int, index_bits: int) -> dict:
    """Both compression rates of DESIGN.md section 4 and the bit counts behind them."""
    dense_bits = R * N * cfg.bits
    return {
        "matrix_compression": (N * cfg.bits) / (packed_cols * cfg.slot_bits),
        "storage_compression": dense_bits / (values_bits + index_bits),
        "bits": {"dense": dense_bits, "values": values_bits, "index": index_bits},
    }


def _arrange(name: str, W: np.ndarray, cfg: CompressConfig):
    if not np.any(W):
        raise LayerError(name, "all weights are zero after pruning; nothing to pack")
    M, C, Q, sw = _arranged_matrix(W, cfg)
    if not np.any(M):
        raise LayerError(name, "all weights quantise to zero; nothing to pack")
    if cfg.problem == "p1":
        return M, C, Q, sw, _p1(M, C, cfg, f"layer {name}")
    return M, C, Q, sw, _p2(M, C, cfg, f"layer {name}", layer_score(name, W, Q, sw, cfg))


#: bisection steps of arrangement-aware pruning
AWARE_STEPS = 5


def _aware(name: str, W: np.ndarray, cfg: CompressConfig):
    """Arrangement-aware pruning: magnitude-prune less, let the arrangement's own pruning fill the budget.

    Bisects the magnitude sparsity s_lo in [0, s] for the smallest one whose
    final sparsity (magnitude pruning plus what the arrangement prunes) still
    reaches the budget s, so the weights the arrangement drops anyway are not
    paid for twice.
    """
    target = cfg.sparsity * W.size
    lo, hi = 0.0, cfg.sparsity
    best = _arrange(name, magnitude_prune(W, hi), cfg)
    for _ in range(AWARE_STEPS):
        mid = (lo + hi) / 2
        trial = _arrange(name, magnitude_prune(W, mid), cfg)
        kept = _weights(trial[4]["kept"], trial[2], trial[3])
        if W.size - np.count_nonzero(kept) >= target:
            best, hi = trial, mid
        else:
            lo = mid
    return best


def compress_matrix(name: str, W, cfg: CompressConfig, prune: bool = True) -> LayerOutcome:
    """Compress one (R, N) weight matrix; ``prune=False`` when weights are already pruned.

    ``seconds`` is the wall time of the whole call (pruning, quantisation, the
    arrangement and the baseline); the solver's own time is ``stats["solver_seconds"]``.
    """
    start = time.perf_counter()
    W = np.asarray(W, dtype=np.float64)
    R, N = W.shape
    if prune and cfg.arrangement_aware and cfg.sparsity:
        M, C, Q, sw, out = _aware(name, W, cfg)
    else:
        M, C, Q, sw, out = _arrange(name, magnitude_prune(W, cfg.sparsity) if prune else W, cfg)
    kept = out["kept"]
    before = float(np.abs(C).sum())
    pruned = before - float(np.abs(np.where(kept != 0, C, 0)).sum())
    base_cols = base_cx = None
    stats = {"solver_seconds": out["seconds"]}
    if cfg.baseline:
        base = pack(Q.q, alpha=cfg.alpha, gamma=cfg.gamma, solver="greedy-cc",
                    time_limit=cfg.time_limit, seed=cfg.seed, name=f"layer {name}")
        base_cols, base_cx = base.num_groups, N / base.num_groups
        stats["baseline_nnz"] = int(np.count_nonzero(base.keep_mask))  # its work: what its conflicts leave
    return LayerOutcome(
        name=name, rows=R, cols=N, weight_nnz=int(np.count_nonzero(Q.q)), arranged_cols=M.shape[1],
        arranged_nnz=int(np.count_nonzero(M)), packed_cols=out["packed_cols"], bound=out["bound"],
        objective=out["objective"], status=out["status"], solver=out["solver"],
        **rates(cfg, R, N, out["packed_cols"], out["values_bits"], out["index_bits"]),
        pruned_pct=100.0 * pruned / before, seconds=time.perf_counter() - start,
        weights=_weights(kept, Q, sw), scale=Q.scale, allowed=kept != 0, packed=out["packed"],
        order=out["order"], baseline_cols=base_cols, baseline_compression=base_cx,
        stats=stats,
    )


def _representable(bits: int, subword: int) -> dict:
    """For each subset of subword slots (a bitmask), the sorted magnitudes it can represent."""
    t = bits // subword
    qmax = 2 ** (bits - 1) - 1
    mags = np.arange(qmax + 1)
    parts = (mags[:, None] >> (np.arange(t) * subword)[None, :]) & (2 ** subword - 1)
    used = (parts > 0) @ (1 << np.arange(t))
    return {m: mags[(used & ~m) == 0] for m in range(2 ** t)}


def project_to_slots(q: np.ndarray, allowed: np.ndarray, bits: int, subword: int) -> np.ndarray:
    """Nearest integers whose nonzero subwords lie only in the allowed slots.

    After fine-tuning, a weight may only use the subword slots its packing kept,
    so the packing stays valid; ties round toward zero.
    """
    t = bits // subword
    R, N = q.shape
    slots = allowed.reshape(R, N, t) @ (1 << np.arange(t))
    table = _representable(bits, subword)
    mag = np.abs(q)
    out = np.zeros_like(mag)
    for m, values in table.items():
        sel = slots == m
        if not sel.any():
            continue
        idx = np.clip(np.searchsorted(values, mag[sel]), 1, len(values) - 1) if len(values) > 1 else 0
        if len(values) == 1:
            out[sel] = values[0]
            continue
        lo, hi = values[idx - 1], values[idx]
        out[sel] = np.where(mag[sel] - lo <= hi - mag[sel], lo, hi)
    return (np.sign(q) * out).astype(np.int32)
