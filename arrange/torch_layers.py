"""Torch layers that train with a structure: PermDNN permuted-diagonal blocks, PENNI shared kernels.

Problem: train a fully connected layer whose weight is, by construction, made
of p x p permuted-diagonal blocks (one fixed shift per block), so it needs no
projection after training and compresses exactly p-fold.

Method: the parameters are the stored values themselves, shaped (R/p, N/p, p)
as in :class:`arrange.formats.permdnn.PermDiag`; the forward pass scatters them
into the dense matrix at the fixed positions of the structure (a gradient flows
to the values only) and applies ``torch.nn.functional.linear``.  Shifts are
drawn from a seeded generator unless given; a trained layer converts to the
packed format with :meth:`PermDiagLinear.to_packed` and back with
:meth:`PermDiagLinear.from_packed` (including row/column permutations).

:class:`SharedKernels` is the PENNI counterpart as a parametrization: a conv
weight computed from shared basis kernels and masked coefficients
(:func:`arrange.formats.penni.finetune` trains them).

This is the only module besides the import/accuracy code that imports torch;
``arrange/__init__`` does not import it.

Reference: C. Deng et al., "PermDNN: Efficient Compressed DNN Architecture with
Permuted Diagonal Matrices", MICRO 2018, doi:10.1109/MICRO.2018.00024 (training
from scratch with the permuted-diagonal structure, section 3).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .errors import ArrangeError, is_int
from .formats import permdnn

__all__ = ["PermDiagLinear", "SharedKernels"]


class PermDiagLinear(nn.Module):
    """y = x W^T + b with W (out x in) made of p x p permuted-diagonal blocks.

    Parameters
    ----------
    in_features, out_features : sizes; not multiples of p are padded inside
        (the padded rows/columns are dropped from W).
    p : block size (>= 1); each output keeps ceil(in/p) inputs.
    bias : learn an additive bias.
    shifts : (ceil(out/p), ceil(in/p)) ints in [0, p), or None for random ones.
    seed : seeds the shifts and the initial values.
    """

    def __init__(self, in_features: int, out_features: int, p: int, bias: bool = True,
                 shifts=None, seed: int = 0, row_order=None, col_order=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features), ("p", p)):
            if not is_int(v) or v < 1:
                raise ArrangeError(f"PermDiagLinear: {name} must be an integer >= 1, got {v!r}")
        self.in_features, self.out_features, self.p = int(in_features), int(out_features), int(p)
        Rb, Nb = math.ceil(out_features / p), math.ceil(in_features / p)
        rng = np.random.default_rng(seed)
        if shifts is None:
            shifts = rng.integers(p, size=(Rb, Nb))
        shifts = np.asarray(shifts, dtype=np.int64)
        if shifts.shape != (Rb, Nb) or shifts.min() < 0 or shifts.max() >= p:
            raise ArrangeError(f"PermDiagLinear: shifts must be ({Rb}, {Nb}) ints in [0, {p}), "
                               f"got shape {shifts.shape}")
        rows, cols = permdnn.positions(shifts, p, row_order, col_order)
        # Values that land in padding never reach W; they keep their place so the
        # parameter has the packed format's shape.
        inside = (rows < out_features) & (cols < in_features)
        self.register_buffer("shifts", torch.from_numpy(shifts))
        self.register_buffer("_flat", torch.from_numpy(np.flatnonzero(inside)))
        self.register_buffer("_index", torch.from_numpy(rows[inside] * in_features + cols[inside]))
        self._orders = (None if row_order is None else np.asarray(row_order, dtype=np.int64),
                        None if col_order is None else np.asarray(col_order, dtype=np.int64))
        bound = 1.0 / math.sqrt(Nb)  # fan-in of an output: one input per block column
        gen = torch.Generator().manual_seed(int(seed))
        self.values = nn.Parameter((torch.rand((Rb, Nb, p), generator=gen) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(out_features, generator=gen) * 2 - 1) * bound) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """The dense (out x in) matrix: values at the structure's positions, zeros elsewhere."""
        flat = self.values.new_zeros(self.out_features * self.in_features)
        flat = flat.index_put((self._index,), self.values.reshape(-1)[self._flat])
        return flat.view(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def to_packed(self) -> permdnn.PermDiag:
        """The trained layer as a :class:`~arrange.formats.permdnn.PermDiag`."""
        R, N = self.out_features, self.in_features
        p = self.p
        Rb, Nb = self.shifts.shape
        packed = permdnn.PermDiag(self.values.detach().cpu().numpy().copy(), self.shifts.cpu().numpy().copy(),
                                  p, (R, N), self._orders[0], self._orders[1], (Rb * p - R, Nb * p - N))
        # Values in padding are not part of the layer; store them as zeros.
        packed.values.reshape(-1)[np.setdiff1d(np.arange(packed.values.size), self._flat.cpu().numpy())] = 0
        return packed

    @classmethod
    def from_packed(cls, packed: permdnn.PermDiag, bias=None) -> "PermDiagLinear":
        """A layer holding a packed matrix (e.g. a projected trained layer) for fine-tuning."""
        R, N = packed.shape
        layer = cls(N, R, packed.p, bias=bias is not None, shifts=packed.shifts,
                    row_order=packed.row_order, col_order=packed.col_order)
        with torch.no_grad():
            layer.values.copy_(torch.as_tensor(packed.values, dtype=layer.values.dtype))
            if bias is not None:
                layer.bias.copy_(torch.as_tensor(np.asarray(bias), dtype=layer.bias.dtype))
        return layer

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, " \
               f"bias={self.bias is not None}"


class SharedKernels(nn.Module):
    """torch parametrization: a conv weight as sum_j (C * mask)[o, i, j] B[j], one (B, C) per group.

    ``parts`` are the :class:`~arrange.formats.penni.PENNIPacked` groups of one
    module, in group order; the basis ``B`` and the coefficients ``C`` (zero
    and held there off the support and on removed channels) are the
    parameters, and the original weight is replaced, not used.
    """

    def __init__(self, parts):
        super().__init__()
        self.basis, self.coef, self.shapes = nn.ParameterList(), nn.ParameterList(), []
        for g, p in enumerate(parts):
            O, I, kh, kw = p.shape
            C, M = np.zeros((O, I, p.d)), np.zeros((O, I, p.d))
            C[np.ix_(p.out_channels, p.in_channels)] = np.where(p.mask, p.coefficients, 0.0)
            M[np.ix_(p.out_channels, p.in_channels)] = p.mask
            self.basis.append(nn.Parameter(torch.as_tensor(p.basis.reshape(p.d, -1), dtype=torch.float32)))
            self.coef.append(nn.Parameter(torch.as_tensor(C, dtype=torch.float32)))
            self.register_buffer(f"mask{g}", torch.as_tensor(M, dtype=torch.float32))
            self.shapes.append(p.shape)

    def forward(self, original):
        return torch.cat([torch.einsum("oid,dk->oik", C * getattr(self, f"mask{g}"), B).reshape(shape)
                          for g, (B, C, shape) in enumerate(zip(self.basis, self.coef, self.shapes))])
