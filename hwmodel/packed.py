"""Layer descriptions for the array model: dense and packed (column-combined,
fixed-ratio (k, n) groups, subword) layers, and checks of packed arrays.

Problem: to compare a packed arrangement with the dense layer on the same
array, the timing, traffic and energy models need only a few numbers per
layer: the GEMM sizes, the reduction length actually mapped onto the array
after packing, the number of input streams each packed column carries, the bit
widths of stored values, indices and activations, and how many multiply-
accumulates are useful (have a nonzero weight).

Method: a frozen :class:`LayerSpec` holding those numbers, with one small
constructor per format.  The array maps the packed matrix like a dense one
whose reduction length is ``K_packed``: a combined column (column combining,
alpha = fan-in) or a group of a fixed-ratio layout receives ``fan_in`` input
streams and each cell holds a packed value and a select index naming the
stream its weight belongs to; a subword cell also applies a shift, and the
partial products of one weight's subwords meet in the same accumulation chain.

Subword cells on the array: a PE built for b-bit weights splits into b/s
s-bit lanes (its b x a multiplier into b/s s x a multipliers, as fusible PEs
do), so one PE holds ``lanes`` consecutive packed subword columns of the same
filter and adds their products into one partial sum.  The layer then occupies
``ceil(K_packed / lanes)`` array positions along the reduction, while dense and
whole-weight layers run the same PEs in b-bit mode.  ``lanes=1`` models an
array that gives each subword a whole PE.  Lanes enter the closed-form timing,
traffic and energy; the cycle-stepped :mod:`hwmodel.functional` runs one
packed column per PE.

References: H. T. Kung, B. McDanel, S. Q. Zhang, "Packing sparse convolutional
neural networks for efficient systolic array implementations: column combining
under joint optimization", ASPLOS 2019, doi:10.1145/3297858.3304028;
X. Chen, J. Zhu, J. Jiang, C.-Y. Tsui, "Tight compression: compressing CNN
model tightly through unstructured pruning and simulated annealing based
permutation", DAC 2020, doi:10.1109/DAC18072.2020.9218701; H. Sharma et al.,
"Bit Fusion: bit-level dynamically composable architecture for accelerating
deep neural networks", ISCA 2018, doi:10.1109/ISCA.2018.00069 (PEs whose
multipliers split into narrower lanes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hwmodel.timing import ceil_div
from hwmodel.validation import HwModelError, check_int

__all__ = [
    "LayerSpec",
    "dense_layer",
    "column_combined_layer",
    "fixed_ratio_layer",
    "subword_layer",
    "conv_gemm_sizes",
    "check_packed",
    "layer_from_packed",
    "index_bits_for",
]


def index_bits_for(fan_in: int) -> int:
    """Bits of a select index choosing among ``fan_in`` streams: ceil(log2 fan_in)."""
    return math.ceil(math.log2(fan_in)) if fan_in > 1 else 0


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the array sees it (GEMM naming: M pixels, N filters, K reduction).

    Attributes
    ----------
    M : output pixels (rows of the im2col input matrix).
    N : filters (output channels).
    K : dense reduction length (input channels * kernel height * kernel width).
    K_packed : reduction length mapped on the array after packing: G combined
        columns, n * ceil(K / k) for (k, n) groups, G_sub subword groups.  Equal
        to K for a dense layer.
    fan_in : input streams per packed column (alpha, or k); 1 for dense.
    weight_bits : bits of a dense weight (b).
    act_bits : bits of an activation.
    value_bits : bits of one stored packed value (b for weights; s + 1 for a
        sign-magnitude s-bit subword).
    index_bits : metadata bits stored with each packed value (select index,
        which for subwords also names the shift).
    subword_bits : s for a subword layer, else None.
    useful_macs : multiply-accumulates with a nonzero weight, in dense-weight
        units: M * (nonzero weights).  Utilisation and ops/J count these, so a
        dense and a packed form of the same pruned layer are compared on the
        same work.
    ifmap_words : activations fetched from DRAM (H * W * channels for a conv);
        M * K when not given.
    name : label in tables.
    lanes : packed cells one PE holds (subword lanes of a b-bit PE, at most
        weight_bits / subword_bits); 1 for every layer that is not subword.
    """

    M: int
    N: int
    K: int
    K_packed: int
    fan_in: int = 1
    weight_bits: int = 8
    act_bits: int = 8
    value_bits: int = 8
    index_bits: int = 0
    subword_bits: int | None = None
    useful_macs: int | None = None
    ifmap_words: int | None = None
    name: str = ""
    lanes: int = 1

    def __post_init__(self):
        for field in ("M", "N", "K", "K_packed", "fan_in", "weight_bits", "act_bits", "value_bits"):
            check_int(field, getattr(self, field))
        check_int("index_bits", self.index_bits, minimum=0)
        if self.subword_bits is not None:
            check_int("subword_bits", self.subword_bits)
            if self.weight_bits % self.subword_bits:
                raise HwModelError(
                    f"subword_bits must divide weight_bits={self.weight_bits}, got {self.subword_bits}")
        max_lanes = self.weight_bits // self.subword_bits if self.subword_bits else 1
        check_int("lanes", self.lanes)
        if self.lanes > max_lanes:
            raise HwModelError(f"lanes must be <= weight_bits / subword_bits = {max_lanes} "
                               f"(1 without subwords), got {self.lanes}")
        if self.useful_macs is None:
            object.__setattr__(self, "useful_macs", self.M * self.N * self.K)
        check_int("useful_macs", self.useful_macs, minimum=0)
        # every useful weight occupies at least one stored cell
        cap = self.M * self.N * min(self.K, self.K_packed)
        if self.useful_macs > cap:
            raise HwModelError(f"useful_macs must be <= M*N*min(K, K_packed)={cap}, got {self.useful_macs}")
        if self.ifmap_words is None:
            object.__setattr__(self, "ifmap_words", self.M * self.K)
        check_int("ifmap_words", self.ifmap_words)

    @property
    def packed(self) -> bool:
        """True unless this is a plain dense layer."""
        return self.K_packed != self.K or self.fan_in != 1 or self.subword_bits is not None

    @property
    def K_array(self) -> int:
        """Array positions along the reduction: ceil(K_packed / lanes)."""
        return ceil_div(self.K_packed, self.lanes)

    @property
    def weight_storage_bits(self) -> int:
        """Stored weight bits including index metadata: N * K_packed * (value + index bits)."""
        return self.N * self.K_packed * (self.value_bits + self.index_bits)

    def dense(self) -> LayerSpec:
        """The same layer stored densely (the baseline on the same array)."""
        return replace(self, K_packed=self.K, fan_in=1, value_bits=self.weight_bits,
                       index_bits=0, subword_bits=None, lanes=1)


def _useful(M: int, N: int, K: int, K_packed: int, nnz) -> int:
    """M * nnz, nnz defaulting to every stored cell holding a weight: N * min(K, K_packed)."""
    return M * (N * min(K, K_packed) if nnz is None else check_int("nnz", nnz, minimum=0))


def dense_layer(M, N, K, weight_bits=8, act_bits=8, nnz=None, ifmap_words=None, name="") -> LayerSpec:
    """A dense layer; ``nnz`` nonzero weights (default N * K) set the useful MACs."""
    return LayerSpec(M, N, K, K, 1, weight_bits, act_bits, weight_bits, 0, None,
                     _useful(M, N, K, K, nnz), ifmap_words, name)


def column_combined_layer(M, N, K, groups, alpha, weight_bits=8, act_bits=8, nnz=None,
                          ifmap_words=None, name="") -> LayerSpec:
    """Column combining: K columns packed into ``groups`` combined columns of fan-in <= ``alpha``."""
    alpha, groups = check_int("alpha", alpha), check_int("groups", groups)
    return LayerSpec(M, N, K, groups, alpha, weight_bits, act_bits, weight_bits,
                     index_bits_for(alpha), None, _useful(M, N, K, groups, nnz), ifmap_words, name)


def fixed_ratio_layer(M, N, K, k, n=1, weight_bits=8, act_bits=8, nnz=None,
                      ifmap_words=None, name="") -> LayerSpec:
    """Fixed-ratio groups: every k permuted columns keep n values per row (n:k, e.g. 2:4)."""
    k, n = check_int("k", k), check_int("n", n)
    if n > k:
        raise HwModelError(f"n must be <= k={k}, got {n}")
    K_packed = n * ceil_div(K, k)
    return LayerSpec(M, N, K, K_packed, k, weight_bits, act_bits, weight_bits,
                     index_bits_for(k), None, _useful(M, N, K, K_packed, nnz), ifmap_words, name)


def subword_layer(M, N, K, groups, alpha, weight_bits=8, subword_bits=4, act_bits=8, nnz=None,
                  ifmap_words=None, name="", lanes=None) -> LayerSpec:
    """Subword packing: (weight_bits/subword_bits) * K subword columns in ``groups`` groups.

    Each stored value is a sign-magnitude subword (subword_bits + 1 bits); the
    select index of fan-in ``alpha`` names the subword column, hence its shift.
    ``lanes`` subword cells share a PE (default weight_bits / subword_bits:
    b-bit PEs split into s-bit lanes; 1: one subword per PE).
    """
    alpha, groups = check_int("alpha", alpha), check_int("groups", groups)
    subword_bits = check_int("subword_bits", subword_bits)
    if lanes is None:
        check_int("weight_bits", weight_bits)
        lanes = max(1, weight_bits // subword_bits)
    return LayerSpec(M, N, K, groups, alpha, weight_bits, act_bits, subword_bits + 1,
                     index_bits_for(alpha), subword_bits, _useful(M, N, K, groups, nnz),
                     ifmap_words, name, lanes)


def conv_gemm_sizes(ifmap_h, ifmap_w, kernel_h, kernel_w, channels, filters, stride=1):
    """(M, N, K, ifmap_words) of a convolution as SCALE-Sim lowers it (no padding added).

    Output size ceil((H - kh + s) / s) as in SCALE-Sim's ``topology_utils``;
    pass the padded ifmap size for a padded convolution.
    """
    H, W = check_int("ifmap_h", ifmap_h), check_int("ifmap_w", ifmap_w)
    kh, kw = check_int("kernel_h", kernel_h), check_int("kernel_w", kernel_w)
    C, F, s = check_int("channels", channels), check_int("filters", filters), check_int("stride", stride)
    if kh > H or kw > W:
        raise HwModelError(f"kernel {kh}x{kw} must fit in the ifmap {H}x{W}")
    oh, ow = ceil_div(H - kh + s, s), ceil_div(W - kw + s, s)
    return oh * ow, F, kh * kw * C, H * W * C


def check_packed(values, select, groups, shifts=None):
    """Validate and convert a packed layer's arrays once.

    Parameters
    ----------
    values : (N, G) int array, packed value of filter n in packed column g.
    select : (N, G) int array, which stream of group g the value belongs to.
    groups : (G, alpha) int array of input-column indices, padded with -1 at the end.
    shifts : (N, G) int array of left shifts (subword layers) or None for zeros.

    Returns
    -------
    (values, select, groups, shifts, group_sizes) as contiguous int64 arrays.

    Raises
    ------
    HwModelError
        On shape mismatches, an empty or badly padded group, a negative shift,
        or a select index outside its group.
    """
    values = np.ascontiguousarray(values, dtype=np.int64)
    select = np.ascontiguousarray(select, dtype=np.int64)
    groups = np.ascontiguousarray(groups, dtype=np.int64)
    if values.ndim != 2:
        raise HwModelError(f"values must be a 2-D (filters x groups) array, got shape {values.shape}")
    if select.shape != values.shape:
        raise HwModelError(f"select must have the shape of values {values.shape}, got {select.shape}")
    if groups.ndim != 2 or groups.shape[0] != values.shape[1] or groups.shape[1] < 1:
        raise HwModelError(f"groups must be a ({values.shape[1]}, alpha) array, got shape {groups.shape}")
    if shifts is None:
        shifts = np.zeros_like(values)
    shifts = np.ascontiguousarray(shifts, dtype=np.int64)
    if shifts.shape != values.shape:
        raise HwModelError(f"shifts must have the shape of values {values.shape}, got {shifts.shape}")
    if (shifts < 0).any() or (shifts > 62).any():
        raise HwModelError("shifts must lie in [0, 62]")
    sizes = (groups >= 0).sum(axis=1)
    valid = groups >= 0
    if (groups < -1).any() or (valid[:, 1:] & ~valid[:, :-1]).any():
        raise HwModelError("groups must hold column indices >= 0 followed only by -1 padding")
    if (sizes == 0).any():
        raise HwModelError(f"groups must be non-empty; group {int(np.argmin(sizes))} has no column")
    bad = (select < 0) | (select >= sizes[None, :])
    if bad.any():
        n, g = map(int, np.argwhere(bad)[0])
        raise HwModelError(
            f"select[{n}, {g}]={int(select[n, g])} points outside group {g} of size {int(sizes[g])}")
    return values, select, groups, shifts, sizes.astype(np.int64)


def layer_from_packed(values, select, groups, M, K, shifts=None, weight_bits=8, act_bits=8,
                      subword_bits=None, name="", lanes=1) -> LayerSpec:
    """A :class:`LayerSpec` measured from packed arrays (useful MACs from the nonzeros).

    Nonzero weights are the distinct (filter, input column) pairs holding a
    nonzero value, so the subwords of one weight count once.  ``lanes`` as in
    :class:`LayerSpec` (packed columns g * lanes ... g * lanes + lanes - 1 share a PE).
    """
    values, select, groups, shifts, _ = check_packed(values, select, groups, shifts)
    K = check_int("K", K)
    if groups.max() >= K:
        raise HwModelError(f"groups must hold column indices < K={K}, got {int(groups.max())}")
    n_idx, g_idx = np.nonzero(values)
    cols = groups[g_idx, select[n_idx, g_idx]]
    nnz = np.unique(n_idx * K + cols).size
    N, G = values.shape
    alpha = groups.shape[1]
    value_bits = weight_bits if subword_bits is None else subword_bits + 1
    return LayerSpec(check_int("M", M), N, K, G, alpha, weight_bits, act_bits, value_bits,
                     index_bits_for(alpha), subword_bits, M * nnz, None, name, lanes)
