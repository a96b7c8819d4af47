"""One conv or linear layer (one group of a grouped conv) and its matrix view.

Problem: the solvers see a layer as a 2-D matrix W (R rows = output channels,
N columns = reduction inputs) with zeros where weights are pruned; the importer,
the pruner and the exporter need to go from a weight tensor to that matrix and
back without losing the tensor's shape.

Method: DESIGN.md section 2. A conv weight (O, I/groups, kh, kw) becomes
R = O rows and N = I/groups * kh * kw columns with column index
(i * kh + y) * kw + x, which is exactly ``weight.reshape(O, -1)`` in C order;
a linear weight (out, in) is its own matrix. A mask (from an external pruning
flow or from :mod:`arrange.prune`) zeroes the entries it marks False.

Reference: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing Sparse Convolutional
Neural Networks for Efficient Systolic Array Implementations: Column Combining
Under Joint Optimization", ASPLOS 2019, doi:10.1145/3297858.3304028 (section 3,
the filter matrix).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import LayerError, is_int

__all__ = ["KINDS", "Layer", "as_mask", "check_packable", "group_name"]

#: layer kind -> number of dimensions its weight has
KINDS = {"conv": 4, "linear": 2}


def group_name(base: str, group: int, groups: int) -> str:
    """Name of one group of a grouped conv: ``conv1[g0]``; the base name when groups == 1."""
    return base if groups == 1 else f"{base}[g{group}]"


@dataclass(frozen=True, eq=False)
class Layer:
    """A conv or linear weight slice with an optional keep-mask.

    Parameters
    ----------
    name : layer name, e.g. ``features.0``; one group of a grouped conv is
        ``conv1[g0]``, ``conv1[g1]``, ... (see :func:`group_name`).
    kind : ``"conv"`` (weight (O_g, I/groups, kh, kw)) or ``"linear"`` (weight (out, in)).
    weight : float array of the slice's original shape.
    mask : bool array of the same shape (True = kept) or None (keep all).
    group, groups : which group of a grouped conv this slice is, and how many there are.

    Raises
    ------
    LayerError
        On a weight of the wrong number of dimensions, NaN/inf values, a mask of
        another shape or with values other than 0/1, or a bad group index.
    """

    name: str
    kind: str
    weight: np.ndarray
    mask: np.ndarray | None = None
    group: int = 0
    groups: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise LayerError(self.name, f"kind {self.kind!r} is not supported; allowed: {sorted(KINDS)}")
        w = np.asarray(self.weight)
        if not np.issubdtype(w.dtype, np.floating):
            if not (np.issubdtype(w.dtype, np.integer) or w.dtype == bool):
                raise LayerError(self.name, f"weight dtype {w.dtype} is not numeric")
            w = w.astype(np.float64)
        if w.ndim != KINDS[self.kind]:
            raise LayerError(self.name, f"{w.ndim}-D weight {tuple(w.shape)} for a {self.kind} layer; "
                                        f"allowed: {KINDS[self.kind]}-D")
        if not np.all(np.isfinite(w)):
            bad = "NaN" if np.isnan(w).any() else "inf"
            raise LayerError(self.name, f"weight contains {bad} ({int((~np.isfinite(w)).sum())} entries)")
        object.__setattr__(self, "weight", w)
        if self.mask is not None:
            object.__setattr__(self, "mask", as_mask(self.name, self.mask, w.shape))
        if not (is_int(self.groups) and self.groups >= 1
                and 0 <= self.group < self.groups):
            raise LayerError(self.name, f"group {self.group} of {self.groups} groups is not valid")

    @classmethod
    def from_matrix(cls, M, name: str = "matrix") -> Layer:
        """A linear layer whose matrix is ``M`` (zeros are pruned weights)."""
        M = np.asarray(M)
        return cls(name, "linear", M, None if M.dtype == bool else M != 0)

    @property
    def shape2d(self) -> tuple[int, int]:
        """(R, N): output channels by reduction inputs."""
        return self.weight.shape[0], int(np.prod(self.weight.shape[1:]))

    @property
    def base_name(self) -> str:
        """The module's name without the ``[gN]`` group suffix."""
        suffix = f"[g{self.group}]"
        return self.name[: -len(suffix)] if self.groups > 1 and self.name.endswith(suffix) else self.name

    @property
    def matrix(self) -> np.ndarray:
        """The (R, N) float64 matrix, zeros where the mask is False (a fresh array)."""
        M = self.weight.reshape(self.shape2d).astype(np.float64)
        if self.mask is not None:
            M[~self.mask.reshape(self.shape2d)] = 0.0
        return M

    @property
    def nnz(self) -> int:
        """Number of nonzero entries of :attr:`matrix`."""
        return int(np.count_nonzero(self.matrix))

    def with_matrix(self, M) -> Layer:
        """A copy holding matrix ``M`` (reshaped to the weight's shape), masked where ``M == 0``."""
        M = np.asarray(M, dtype=np.float64)
        if M.shape != self.shape2d:
            raise LayerError(self.name, f"matrix shape {M.shape} does not match the layer's {self.shape2d}")
        return replace(self, weight=M.reshape(self.weight.shape), mask=(M != 0).reshape(self.weight.shape))


def as_mask(name: str, mask, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a bool array of ``shape``; LayerError unless it holds only 0/1 (or bool)."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise LayerError(name, f"mask shape {tuple(m.shape)} does not match weight shape {tuple(shape)}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.isin(m, (0, 1)).all():
            raise LayerError(name, "mask values must be bool or 0/1")
        m = m != 0
    return m


def check_packable(layer: Layer) -> None:
    """Raise LayerError if ``layer`` has nothing to pack (no weights, or all of them zero)."""
    if layer.weight.size == 0:
        raise LayerError(layer.name, f"empty weight of shape {tuple(layer.weight.shape)}; nothing to pack")
    if layer.nnz == 0:
        raise LayerError(layer.name, "all weights are zero; nothing to pack")
