"""What the packed formats share: the adapter protocol, input checks and index widths.

Every module of :mod:`arrange.formats` has ``encode``, ``decode`` and ``bits``
(DESIGN.md section 6) and ends with an ``ADAPTER``, a :class:`FormatAdapter`
saying how a whole-model flow (:mod:`arrange.formats_compare`) drives it: which
layers it covers, how it projects a layer at one setting and with which
solver, how it maps onto hardware, what fine-tuning holds fixed and how the
trained weights go back into the same structure.  :data:`arrange.formats.FORMATS`
registers the adapters; adding a format is its module plus one line there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

import hwmodel

from ..errors import ArrangeError

__all__ = ["VALUE_BITS", "FormatAdapter", "Hardware", "on_array", "check_weights", "index_dtype",
           "gap_over_lower_bound", "gap_under_upper_bound", "every_layer", "stored_values"]

#: stored width of one weight value in the comparisons (int8)
VALUE_BITS = 8


class Hardware(NamedTuple):
    """One layer, dense and packed, on the engine that runs the format."""

    dense: hwmodel.Cost
    packed: hwmodel.Cost
    engine: str


def on_array(spec, rows: int, cols: int, dataflow: str, engine: str = "array") -> Hardware:
    """A packed :class:`hwmodel.LayerSpec` and its dense form on the same systolic array."""
    c = hwmodel.compare_layer(spec, rows, cols, dataflow)
    return Hardware(c.dense.cost, c.packed.cost, engine)


def every_layer(layer) -> bool:
    """Coverage of a format that applies to conv and linear layers alike."""
    return True


def stored_values(packed) -> int:
    """Stored values of a format whose packed object holds them in ``values``."""
    return packed.values.size


def gap_over_lower_bound(found: float, bound: float) -> float:
    """(found - bound) / bound for a minimisation (0 when the bound is 0)."""
    return (found - bound) / bound if bound > 0 else 0.0


def gap_under_upper_bound(found: float, bound: float) -> float:
    """(bound - found) / bound for a maximisation (0 when the bound is 0)."""
    return (bound - found) / bound if bound > 0 else 0.0


@dataclass(frozen=True)
class FormatAdapter:
    """How a model-wide flow drives one format (see the module docstring).

    project(layer, setting, solver, time_limit, seed) -> (packed, (found, bound) or None)
    decode(packed) -> the kept weights (reshaped to the layer by the caller)
    bits(packed, value_bits) -> {"values", "index", ...} bits
    hardware(packed, layer, M, stored_bits, rows, cols, dataflow) -> :class:`Hardware`
    settings: settings a comparison tries, roughly strongest (most compressed) first
    solver: the default solver name (None: the format has no solver choice)
    applies(layer) -> bool: the layers the format covers (the others stay dense)
    mask(packed) -> bool structure in the layer's shape that fine-tuning holds,
        or None when the structure is no mask (then ``finetune`` is required)
    reencode(packed, weights) -> packed: trained weights in the same structure
    finetune(packed by layer, layers, state, masks, hooks, seed) -> (state,
        packed by layer): the format's own fine-tuning, None for masked fine-tuning
    storage(packed, layers, i, value_bits) -> bits of layer i in its model
        (e.g. an N:M order folded into the producer), None for ``bits``
    slots(packed) -> stored values; gap(found, bound) -> the solver's gap, None
        for no bound; gap_kind says against what.
    """

    name: str
    project: Callable
    decode: Callable
    bits: Callable
    hardware: Callable
    settings: tuple
    solver: str | None = None
    applies: Callable = every_layer
    mask: Callable | None = None
    reencode: Callable | None = None
    finetune: Callable | None = None
    storage: Callable | None = None
    slots: Callable = stored_values
    gap: Callable | None = None
    gap_kind: str = ""

    def __post_init__(self):
        if self.mask is None and self.finetune is None:
            raise ValueError(f"format {self.name}: without a mask it needs its own finetune")
        if self.mask is not None and self.reencode is None:
            raise ValueError(f"format {self.name}: a mask format needs reencode")

    def storage_bits(self, packed, layers, i: int, value_bits: int = VALUE_BITS) -> dict:
        """Bits of ``packed``, layer ``i`` of ``layers``."""
        if self.storage is not None:
            return self.storage(packed, layers, i, value_bits)
        return self.bits(packed, value_bits)


def check_weights(W, ndim: int, what: str) -> np.ndarray:
    """W as an array if it is a non-empty, real-valued ``ndim``-D array; else one-line ArrangeError.

    ``what`` names the format in the message (2-D: a matrix; 4-D: conv weights).
    """
    W = np.asarray(W)
    expected = "conv weights (O, I, kh, kw)" if ndim == 4 else f"a {ndim}-D matrix"
    if W.ndim != ndim or W.size == 0:
        got = "empty" if W.ndim == ndim else f"{W.ndim}-D"
        raise ArrangeError(f"{what} expects {expected}, got {got} shape {W.shape}")
    if not (np.issubdtype(W.dtype, np.floating) or np.issubdtype(W.dtype, np.integer)):
        raise ArrangeError(f"{what} expects real numeric weights, got dtype {W.dtype}")
    return W


def index_dtype(count: int) -> np.dtype:
    """The smallest signed integer dtype holding every index 0..count-1.

    Storage only: the bit cost a format reports is ceil(log2 count) per index
    (:func:`hwmodel.packed.index_bits_for`), whatever the array's dtype.

    >>> [str(index_dtype(c)) for c in (8, 128, 129, 40000)]
    ['int8', 'int8', 'int16', 'int32']
    """
    for dtype in (np.int8, np.int16, np.int32):
        if count - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)
