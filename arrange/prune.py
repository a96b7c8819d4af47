"""Unstructured magnitude pruning, per layer or global, for users without a pruning flow.

Problem: given weight matrices and a target sparsity s in [0, 1), zero the
smallest-magnitude weights so that a fraction s of the entries is zero, either in
every layer separately (``scope="layer"``) or over all layers together
(``scope="global"``, one magnitude threshold for the whole model).

Method: rank entries by |w| with a stable sort, so ties go to the lower flat
index (layer order first for ``global``) and the same input always gives the
same mask. Entries already zero or masked off rank first, so pruned weights stay
pruned and only the shortfall ``round(s * n) - zeros`` is removed.

Reference: S. Han, J. Pool, J. Tran, W. J. Dally, "Learning both Weights and
Connections for Efficient Neural Networks", NeurIPS 2015, arXiv:1506.02626.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .errors import ArrangeError
from .layer import Layer

__all__ = ["SCOPES", "magnitude_prune", "prune_layers"]

SCOPES = ("layer", "global")


def _check_sparsity(sparsity: float) -> float:
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise ArrangeError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise ArrangeError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return s


def _prune_flat(values: np.ndarray, sparsity: float) -> np.ndarray:
    """``values`` (1-D float64) with its round(sparsity * n) smallest-|v| entries zeroed."""
    k = int(sparsity * values.size + 0.5)
    out = values.copy()
    out[np.argsort(np.abs(values), kind="stable")[:k]] = 0.0
    return out


def magnitude_prune(M, sparsity: float) -> np.ndarray:
    """``M`` (float64 copy) with a fraction ``sparsity`` of its entries zeroed, smallest |w| first.

    Entries already zero count toward the target; ties are broken by flat index.

    Examples
    --------
    >>> magnitude_prune([[1.0, -3.0], [0.5, 2.0]], 0.5).tolist()
    [[0.0, -3.0], [0.0, 2.0]]
    """
    s = _check_sparsity(sparsity)
    M = np.asarray(M, dtype=np.float64)
    return _prune_flat(M.ravel(), s).reshape(M.shape)


def prune_layers(layers, sparsity: float, scope: str = "layer") -> list[Layer]:
    """New layers whose masks zero the smallest weights to reach ``sparsity``.

    Parameters
    ----------
    layers : iterable of :class:`Layer` (e.g. ``Model.layers``).
    sparsity : target fraction of zero entries, in [0, 1); per layer for
        ``scope="layer"``, over all entries of all layers for ``scope="global"``.
    scope : ``"layer"`` or ``"global"``.

    Returns
    -------
    list of Layer with ``mask = matrix != 0``; weights already masked stay masked;
    each weight keeps its dtype (pruning only zeroes entries, so that is exact).

    Raises
    ------
    ArrangeError
        If sparsity is outside [0, 1) or scope is not one of :data:`SCOPES`.
    """
    s = _check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ArrangeError(f"unknown pruning scope {scope!r}; allowed: {', '.join(SCOPES)}")
    layers = list(layers)
    if scope == "layer":
        return [_pruned(l, magnitude_prune(l.matrix, s)) for l in layers]
    mats = [l.matrix for l in layers]
    flat = _prune_flat(np.concatenate([M.ravel() for M in mats]) if mats else np.zeros(0), s)
    ends = np.cumsum([M.size for M in mats])
    return [_pruned(l, part.reshape(M.shape))
            for l, M, part in zip(layers, mats, np.split(flat, ends[:-1]))]


def _pruned(layer: Layer, M: np.ndarray) -> Layer:
    new = layer.with_matrix(M)
    return replace(new, weight=new.weight.astype(layer.weight.dtype, copy=False))
