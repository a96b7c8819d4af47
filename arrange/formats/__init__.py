"""Packed formats; each module has encode(W, **params), decode(packed), bits(packed), and an ADAPTER.

- column_combine: P1 column combining (values + select index + group table)
- nm: N:M sparsity with channel permutation (P2 with n:m)
- permdnn: PermDNN permuted-diagonal blocks
- pcnn: PCNN shared kernel patterns (Sparsity Pattern Mask)
- penni: PENNI shared basis kernels with sparse coefficients

:data:`FORMATS` registers each module's :class:`~arrange.formats.base.FormatAdapter`
(how a model-wide flow drives it, :mod:`arrange.formats_compare`); a new
format is its module plus its entry here.
"""

from . import column_combine, nm, pcnn, penni, permdnn
from .base import FormatAdapter

__all__ = ["FORMATS", "FormatAdapter", "column_combine", "nm", "pcnn", "penni", "permdnn"]

#: format name -> adapter, in the order reports list them
FORMATS = {m.ADAPTER.name: m.ADAPTER for m in (column_combine, nm, permdnn, pcnn, penni)}
