"""N:M format with an input-channel permutation (2:4 and others).

The columns of an R x N matrix are padded with zero columns to a multiple of m
and reordered by a permutation found for P2 with k = m (:func:`arrange.permute`);
every run of m consecutive permuted columns is a group, and in each (row,
group) cell the n largest |W| are kept (ties: the earlier position).  Stored:
- ``values`` (R, G * n): the kept weights, group by group, ascending position;
- ``indices`` (R, G * n): position of each inside its group, ceil(log2 m) bits
  (held in the smallest integer dtype that reaches m - 1);
- ``order`` (N_pad,): permuted position -> original column (>= N: padding), or
  None when unpermuted; ceil(log2 N_pad) bits per entry if stored.

The permutation need not be stored when it is folded into the network: the
producer of this layer's inputs gets its outputs (rows, bias) permuted the same
way (:func:`permute_producer`) and this layer runs its columns in permuted order
(:func:`decode_permuted`), so the two-layer function is unchanged.

Every encoding is checked by :func:`verify` (indices inside their groups and
increasing, each cell's n largest kept, decode equal to the kept matrix) before
it is returned.

Reference: J. Pool, C. Yu, "Channel Permutations for N:M Sparsity", NeurIPS
2021 (NVIDIA Apex ASP, apex/contrib/sparsity); A. Mishra et al., "Accelerating
Sparse Deep Neural Networks", arXiv:2104.08378 (2:4 on the A100).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hwmodel.packed import index_bits_for
from hwmodel.sparse_core import sparse_core_layer
from solvers import efficacy

from ..errors import ArrangeError, VerificationError, is_int
from ..solve import pad_columns
from ..solve import permute as solve_p2
from .base import FormatAdapter, check_weights, gap_under_upper_bound, index_dtype, on_array

__all__ = [
    "NMPacked", "encode", "encode_order", "decode", "decode_permuted", "bits", "mask", "values_at", "verify",
    "reencode", "folds", "permute_producer", "permute_consumer", "expand_channel_order", "channel_order", "ADAPTER",
]


@dataclass(eq=False)
class NMPacked:
    """A packed layer; ``decode`` rebuilds the dense matrix (original column order)."""

    values: np.ndarray      # (R, G * n)
    indices: np.ndarray     # (R, G * n) position within the group, 0..m-1 (index_dtype(m))
    n: int
    m: int
    shape: tuple            # (R, N) before padding
    order: np.ndarray | None = None   # (N_pad,) permuted position -> original column
    padded: int = 0         # zero columns appended to reach a multiple of m
    kept: float = 0.0       # kept magnitude (P2 objective) and its references
    identity_kept: float = 0.0
    upper_bound: float = 0.0
    rows_bound: float = 0.0
    solver: str = ""

    @property
    def num_groups(self) -> int:
        return self.values.shape[1] // self.n

    @property
    def efficacy(self) -> float:
        """(kept - kept_identity) / (rows bound - kept_identity), as Apex reports it."""
        return efficacy(self.kept, self.identity_kept, self.rows_bound)


def _check_nm(n, m) -> tuple[int, int]:
    for name, v in (("n", n), ("m", m)):
        if not is_int(v):
            raise ArrangeError(f"nm: {name} must be an integer, got {v!r}")
    if m < 2 or not 1 <= n < m:
        raise ArrangeError(f"nm: expected 1 <= n < m and m >= 2, got n={n}, m={m}")
    return int(n), int(m)


def encode_order(W, n: int, m: int, order=None) -> NMPacked:
    """Keep the top n of every m consecutive columns of W[:, order] (order None = identity)."""
    n, m = _check_nm(n, m)
    W = check_weights(W, 2, "nm")
    padded, extra = pad_columns(W, m)
    R, Np = padded.shape
    perm = np.arange(Np) if order is None else np.asarray(order, dtype=np.int64)
    if not np.array_equal(np.sort(perm), np.arange(Np)):
        raise ArrangeError(f"nm: order must be a permutation of 0..{Np - 1}")
    cells = padded[:, perm].reshape(R, Np // m, m)
    # Stable sort: among equal magnitudes the earlier position is kept.
    top = np.sort(np.argsort(-np.abs(cells), axis=2, kind="stable")[:, :, :n], axis=2)
    values = np.take_along_axis(cells, top, axis=2).reshape(R, -1)
    packed = NMPacked(values, top.reshape(R, -1).astype(index_dtype(m)), n, m, W.shape,
                      None if order is None else perm, extra)
    verify(W, packed)
    return packed


def encode(W, n: int = 2, m: int = 4, permute: bool = True, solver="auto",
           time_limit: float = 10.0, seed: int = 0) -> NMPacked:
    """n:m sparsity of W with the column permutation of P2 (k = m) that keeps the most magnitude.

    ``permute=False`` is plain n:m pruning in the given order.  Returns
    :class:`NMPacked` with the P2 ``kept``, ``identity_kept``, ``upper_bound`` and
    ``efficacy``.  Raises ArrangeError on bad n, m or matrix (one line).
    """
    n, m = _check_nm(n, m)
    result = solve_p2(W, k=m, n=n, solver=solver if permute else "identity",
                      time_limit=time_limit, seed=seed)
    packed = encode_order(W, n, m, result.order if permute else None)
    packed.kept, packed.identity_kept = result.kept, result.identity_kept
    packed.upper_bound, packed.rows_bound, packed.solver = result.upper_bound, result.rows_bound, result.solver
    return packed


def _positions(packed: NMPacked) -> np.ndarray:
    """(R, G * n) permuted-order column of every stored value."""
    G = packed.num_groups
    base = np.repeat(np.arange(G) * packed.m, packed.n)
    return base[None, :] + packed.indices.astype(np.int64)


def values_at(packed: NMPacked, W) -> np.ndarray:
    """W's entries at the packed layer's stored slots, laid out like ``packed.values``.

    Re-encodes weights changed on the same mask (e.g. after fine-tuning); slots
    on padding columns read zero.
    """
    padded, _ = pad_columns(np.asarray(W).reshape(packed.shape), packed.m)
    order = np.arange(padded.shape[1]) if packed.order is None else packed.order
    return np.take_along_axis(padded[:, order], _positions(packed), axis=1)


def decode_permuted(packed: NMPacked) -> np.ndarray:
    """The R x N_pad matrix in permuted column order: what the hardware runs."""
    R = packed.shape[0]
    dense = np.zeros((R, packed.num_groups * packed.m), dtype=packed.values.dtype)
    np.put_along_axis(dense, _positions(packed), packed.values, axis=1)
    return dense


def _unpermute(packed: NMPacked, permuted: np.ndarray) -> np.ndarray:
    out = np.empty_like(permuted)
    out[:, np.arange(permuted.shape[1]) if packed.order is None else packed.order] = permuted
    return out[:, :packed.shape[1]]


def decode(packed: NMPacked) -> np.ndarray:
    """The dense R x N matrix in the original column order holding exactly the kept weights."""
    return _unpermute(packed, decode_permuted(packed))


def mask(packed: NMPacked) -> np.ndarray:
    """Bool R x N in original order: True on the n kept slots of every m-group (permuted order).

    Usable as ``torch.nn.utils.prune.custom_from_mask(layer, "weight", torch.from_numpy(mask))``
    for a Linear layer (R = out_features, N = in_features).
    """
    R = packed.shape[0]
    permuted = np.zeros((R, packed.num_groups * packed.m), dtype=bool)
    np.put_along_axis(permuted, _positions(packed), True, axis=1)
    return _unpermute(packed, permuted)


def verify(W, packed: NMPacked) -> None:
    """Check ``packed`` against W; raise :class:`~arrange.errors.VerificationError` on any fault.

    Works on the (row, group, position) cells directly, not through the
    position arithmetic :func:`decode` uses, so a wrapped or shifted index
    cannot pass: every index lies in 0..m-1 and increases within its cell,
    the stored values are W's at those positions and are its n largest
    magnitudes there, and decode returns exactly those entries.
    """
    W = np.asarray(W)
    R, N = packed.shape
    n, m, G = packed.n, packed.m, packed.num_groups
    Np = G * m
    if W.shape != (R, N) or Np != N + packed.padded or packed.indices.shape != (R, G * n):
        raise VerificationError(f"nm: packed {R}x{N} ({G} groups of {m}, {packed.padded} padding) "
                                f"does not fit a {W.shape[0]}x{W.shape[1]} matrix")
    idx = packed.indices.astype(np.int64).reshape(R, G, n)
    if idx.min(initial=0) < 0 or idx.max(initial=0) >= m:
        raise VerificationError(f"nm: a position index lies outside 0..{m - 1}")
    if np.any(np.diff(idx, axis=2) <= 0):
        raise VerificationError("nm: positions within a group are not strictly increasing")
    perm = np.arange(Np) if packed.order is None else np.asarray(packed.order)
    if not np.array_equal(np.sort(perm), np.arange(Np)):
        raise VerificationError(f"nm: order is not a permutation of 0..{Np - 1}")
    padded = np.zeros((R, Np), dtype=W.dtype)
    padded[:, :N] = W
    cells = padded[:, perm].reshape(R, G, m)
    kept = np.take_along_axis(cells, idx, axis=2)
    if not np.array_equal(kept.reshape(R, -1), packed.values):
        raise VerificationError("nm: stored values are not the matrix entries at their positions")
    dropped = np.abs(cells).astype(np.float64)
    np.put_along_axis(dropped, idx, -1.0, axis=2)
    if np.any(np.abs(kept).min(axis=2) < dropped.max(axis=2)):
        raise VerificationError(f"nm: a group does not keep its {n} largest magnitudes")
    expected_cells = np.zeros_like(cells)
    np.put_along_axis(expected_cells, idx, kept, axis=2)
    expected = np.empty_like(padded)
    expected[:, perm] = expected_cells.reshape(R, Np)
    if not np.array_equal(decode(packed), expected[:, :N]):
        raise VerificationError("nm: decode differs from the kept entries")


def bits(packed: NMPacked, value_bits: int = 8, store_order: bool = True) -> dict:
    """Storage in bits: values, in-group indices, and the permutation unless folded.

    ``store_order=False`` when the permutation is folded into the producer
    (:func:`permute_producer`) and costs no storage.
    """
    R, N = packed.shape
    slots = packed.values.size
    Np = N + packed.padded
    perm = Np * index_bits_for(Np) if store_order and packed.order is not None else 0
    return {
        "values": slots * value_bits,
        "index": slots * index_bits_for(packed.m) + perm,
        "positions": slots * index_bits_for(packed.m),
        "permutation": perm,
        "dense": R * N * value_bits,
    }


def _channel_order(order, channels: int) -> np.ndarray:
    order = np.asarray(order, dtype=np.int64)
    if order.shape != (channels,) or not np.array_equal(np.sort(order), np.arange(channels)):
        raise ArrangeError(f"nm: order must be a permutation of the {channels} channels, "
                           f"got shape {order.shape}; fold only unpadded layers")
    return order


def permute_producer(weight_a, bias_a, order):
    """Producer A (out x ...) with its outputs reordered: (A[order], bias[order]).

    If the consumer B runs its input columns in ``order`` (B[:, order]), then
    B[:, order] f(A[order] x + b[order]) = B f(A x + b) for any elementwise f.
    Works for conv weights too (axis 0 = output channels).  ``bias_a`` may be None.
    """
    weight_a = np.asarray(weight_a)
    order = _channel_order(order, weight_a.shape[0])
    return weight_a[order], None if bias_a is None else np.asarray(bias_a)[order]


def permute_consumer(weight_b, order) -> np.ndarray:
    """Consumer B (out x in) with its input columns in ``order``: B[:, order]."""
    weight_b = np.asarray(weight_b)
    return weight_b[:, _channel_order(order, weight_b.shape[1])]


def expand_channel_order(order, positions: int) -> np.ndarray:
    """Consumer column order for a producer channel order, columns blocked (channel, position).

    A conv consumer's columns are (channel, y, x) (``positions`` = kh*kw); a
    linear layer after a flatten has (channel, y, x) of the feature map
    (``positions`` = H*W); after a linear layer ``positions`` = 1.  Permuting
    the producer's outputs by ``order`` (:func:`permute_producer`) matches the
    consumer's columns in the returned order (:func:`permute_consumer`).
    """
    if not is_int(positions) or positions < 1:
        raise ArrangeError(f"nm: positions per channel must be an integer >= 1, got {positions!r}")
    order = np.asarray(order, dtype=np.int64)
    order = _channel_order(order, order.size)
    return (order[:, None] * int(positions) + np.arange(int(positions))).ravel()


def channel_order(order, positions: int) -> np.ndarray | None:
    """The channel order a column order expands from (:func:`expand_channel_order`), or None if none does."""
    order = np.asarray(order, dtype=np.int64)
    if positions < 1 or order.size % positions:
        return None
    channels = order[::positions] // positions
    if not np.array_equal(np.sort(channels), np.arange(channels.size)):
        return None
    return channels if np.array_equal(expand_channel_order(channels, positions), order) else None


def reencode(packed: NMPacked, W) -> NMPacked:
    """Weights changed on the same mask (fine-tuned) in the same order and positions."""
    return dataclasses.replace(packed, values=values_at(packed, W).astype(packed.values.dtype))


def _producer(layers, i: int):
    """(producer's total output channels, its groups) of layer i, or None for the first module."""
    base = layers[i].base_name
    before = [l for l in layers[:i] if l.base_name != base]
    if not before:
        return None
    prev = before[-1].base_name
    group = [l for l in layers if l.base_name == prev]
    return sum(l.weight.shape[0] for l in group), group[0].groups


def folds(layers, i: int, packed: NMPacked) -> bool:
    """True when layer i's column order folds into its producer (no stored permutation).

    It folds when the layer is ungrouped and unpadded, the module before it in
    ``layers`` (network order) is a single-group producer, and the order is a
    channel order of that producer expanded over its positions (:func:`channel_order`).
    """
    if packed.order is None or packed.padded or layers[i].groups > 1:
        return packed.order is None
    producer = _producer(layers, i)
    if producer is None or producer[1] > 1 or packed.shape[1] % producer[0]:
        return False
    return channel_order(packed.order, packed.shape[1] // producer[0]) is not None


def _project(layer, setting: dict, solver, time_limit: float, seed: int):
    packed = encode(layer.matrix, setting["n"], setting["m"], solver=solver, time_limit=time_limit, seed=seed)
    return packed, (packed.kept, packed.upper_bound)


def _storage(packed: NMPacked, layers, i: int, value_bits: int) -> dict:
    return bits(packed, value_bits, store_order=not folds(layers, i, packed))


def _on_sparse_core(packed: NMPacked, layer, M: int, stored_bits: int, rows: int, cols: int, dataflow: str):
    spec = sparse_core_layer(M, *layer.shape2d, packed.n, packed.m, nnz=int(np.count_nonzero(packed.values)))
    return on_array(spec, rows, cols, dataflow, "sparse core")


#: N:M in a model: P2 with k = m on every layer, the sparse core (K' = n ceil(K/m)), masked fine-tuning
ADAPTER = FormatAdapter(
    name="nm", project=_project, decode=decode, bits=bits, hardware=_on_sparse_core,
    settings=({"n": 1, "m": 8}, {"n": 1, "m": 4}, {"n": 2, "m": 8}, {"n": 2, "m": 4}), solver="apex-swap",
    mask=mask, reencode=reencode, storage=_storage, gap=gap_under_upper_bound,
    gap_kind="kept magnitude under rows bound")
