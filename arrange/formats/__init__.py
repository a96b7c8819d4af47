"""Packed formats; each module has encode(W, **params), decode(packed), bits(packed).

- column_combine: P1 column combining (values + select index + group table)
- nm: N:M sparsity with channel permutation (P2 with n:m)
- permdnn: PermDNN permuted-diagonal blocks
- pcnn: PCNN shared kernel patterns (Sparsity Pattern Mask)
- penni: PENNI shared basis kernels with sparse coefficients
"""

from . import column_combine, nm, pcnn, penni, permdnn

__all__ = ["column_combine", "nm", "pcnn", "penni", "permdnn"]
