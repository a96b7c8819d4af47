"""PENNI shared-kernel format: a layer's kernels as sparse combinations of d basis kernels.

A conv layer W (O, I, kh, kw) is stored as
- ``basis`` (d, kh, kw): the shared basis kernels B;
- ``coefficients`` (O', I', d) with ``mask`` (O', I', d): sparse C, kernel
  W[o, i] ~= sum_j C[o, i, j] B[j];
- ``out_channels`` (O',), ``in_channels`` (I',): the channels kept after
  shrinking; a channel whose coefficients are all zero is removed (its kernels
  decode to zero).

Method (numpy level, :mod:`solvers.sparse_coding`): uncentred truncated SVD of
the (O*I, kh*kw) kernel matrix for the start (optimal in Frobenius norm), exact
support selection under the layer budget (global top-|C| while the basis is
orthonormal, per-kernel subset enumeration plus a multiple-choice knapsack
otherwise), then alternating least squares on coefficients and basis, then
shrinking.  Fine-tuning the network itself belongs to the pipeline.

Counting convention (:func:`params`, :func:`macs`, :func:`bits`):
- parameters = basis d*kh*kw per layer (counted, never free) + nonzero coefficients;
- MACs per output pixel = (used (input channel, basis) pairs) * kh*kw for the
  basis convolutions + nonzero coefficients for the combination (a pair is
  used when some kept output channel has a nonzero coefficient on it); multiply
  by the output pixels H'*W';
- index bits = one support bit per (kept output, kept input, basis) coefficient
  slot, O'*I'*d, plus one keep bit per original channel, O + I.

Reference: S. Li, E. Hanson, H. Li, Y. Chen, "PENNI: Pruned Kernel Sharing for
Efficient CNN Inference", ICML 2020, arXiv:2005.07133.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import hwmodel
from hwmodel.kernel_patterns import simulate_penni
from solvers import sparse_coding as sc
from solvers.problem import ProblemError

from ..errors import ArrangeError, is_int
from .base import FormatAdapter, Hardware, check_weights, gap_over_lower_bound

__all__ = ["PENNIPacked", "encode", "decode", "bits", "params", "macs", "simulate", "penni_torch_modules", "finetune",
           "ADAPTER"]


@dataclass(eq=False)
class PENNIPacked:
    """A shared-kernel layer; ``decode`` rebuilds the dense 4-D weights it represents."""

    basis: np.ndarray          # (d, kh, kw)
    coefficients: np.ndarray   # (O', I', d), zero off ``mask``
    mask: np.ndarray           # (O', I', d) bool support
    out_channels: np.ndarray   # (O',) int64 kept output channels
    in_channels: np.ndarray    # (I',) int64 kept input channels
    shape: tuple               # (O, I, kh, kw)
    stats: dict = field(default_factory=dict)  # errors per ALS step, final error, budget

    @property
    def d(self) -> int:
        return self.basis.shape[0]

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def removed_out(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.shape[0]), self.out_channels)

    @property
    def removed_in(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.shape[1]), self.in_channels)


def _budget(budget, density, kernels: int, d: int) -> int:
    if budget is not None and density is not None:
        raise ArrangeError("PENNI takes budget or density, not both")
    if density is not None:
        if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 <= density <= 1:
            raise ArrangeError(f"PENNI density must be a number in [0, 1], got {density!r}")
        return int(np.floor(density * kernels * d + 1e-9))
    if budget is None:
        return kernels * d
    if not is_int(budget) or budget < 0:
        raise ArrangeError(f"PENNI budget must be an integer >= 0 nonzero coefficients, got {budget!r}")
    return int(budget)


def _check(W, d) -> np.ndarray:
    W = check_weights(W, 4, "PENNI")
    k2 = W.shape[2] * W.shape[3]
    if not is_int(d) or not 1 <= d <= k2:
        raise ArrangeError(f"PENNI d must be an integer in 1..{k2} (kh*kw), got {d!r}")
    return W


def encode(W, d: int, budget: int | None = None, density: float | None = None, iterations: int = 3,
           reselect: bool = False, method: str = "auto", shrink: bool = True) -> PENNIPacked:
    """Encode W (O, I, kh, kw) with d basis kernels and at most ``budget`` nonzero coefficients.

    Parameters
    ----------
    W : conv weights (O, I, kh, kw).
    d : basis kernels, 1..kh*kw.
    budget, density : total nonzero coefficients, or that as a fraction of the
        O*I*d slots (floored); at most one of them; neither keeps all.
    iterations : ALS rounds after the SVD start (0 keeps the start).
    reselect : re-choose the support exactly after every basis refit.
    method : support selection, "auto", "global" (orthonormal basis) or "enumerate".
    shrink : remove channels whose coefficients are all zero.

    Returns
    -------
    PENNIPacked; ``stats["errors"]`` the squared error after each step
    (non-increasing), ``stats["error"]`` that of :func:`decode` of the result,
    ``stats["rank_bound"]`` the least error any d-kernel basis can reach
    (Eckart-Young; :func:`solvers.sparse_coding.fit`).

    Raises
    ------
    ArrangeError
        d outside 1..kh*kw, budget < 0, density outside [0, 1], both given, bad method.

    Examples
    --------
    >>> W = np.zeros((2, 2, 3, 3)); W[0, 0, 1, 1] = 2.0; W[1, 0, 1, 1] = -1.0
    >>> p = encode(W, d=1, budget=2)
    >>> p.removed_in.tolist(), p.nnz, bool(np.allclose(decode(p), W))
    ([1], 2, True)
    """
    W = _check(W, d)
    O, I, kh, kw = W.shape
    budget = _budget(budget, density, O * I, int(d))
    X = np.asarray(W, dtype=np.float64).reshape(O * I, kh * kw)
    try:
        fit = sc.fit(X, int(d), budget, iterations, reselect, method)
    except ProblemError as err:
        raise ArrangeError(f"PENNI: {err}") from None
    B, errors = fit.basis, fit.errors
    C = fit.coefficients.reshape(O, I, int(d))
    mask = fit.support.reshape(O, I, int(d))
    keep_out = np.flatnonzero(mask.any(axis=(1, 2))) if shrink else np.arange(O)
    keep_in = np.flatnonzero(mask.any(axis=(0, 2))) if shrink else np.arange(I)
    sub = np.ix_(keep_out, keep_in)
    packed = PENNIPacked(B.reshape(int(d), kh, kw), np.where(mask, C, 0.0)[sub], mask[sub],
                         keep_out.astype(np.int64), keep_in.astype(np.int64), (O, I, kh, kw))
    recon = decode(packed)
    final = float(np.sum((recon - W) ** 2))
    packed.stats = {"errors": errors, "error": final, "budget": budget, "rank_bound": fit.bound,
                    "status": fit.status,
                    "relative_error": final / max(float(np.sum(np.asarray(W, dtype=np.float64) ** 2)), 1e-300)}
    return packed


def decode(packed: PENNIPacked) -> np.ndarray:
    """The dense (O, I, kh, kw) weights sum_j C[o, i, j] B[j]; removed channels are zero."""
    O, I, kh, kw = packed.shape
    d = packed.d
    Op, Ip = packed.out_channels.size, packed.in_channels.size
    coef = np.where(packed.mask, packed.coefficients, 0.0).reshape(Op * Ip, d)
    dense = np.zeros((O, I, kh * kw))
    dense[np.ix_(packed.out_channels, packed.in_channels)] = \
        (coef @ packed.basis.reshape(d, kh * kw)).reshape(Op, Ip, kh * kw)
    return dense.reshape(O, I, kh, kw)


def params(packed: PENNIPacked) -> dict:
    """Parameter counts: basis (d*kh*kw, counted), nonzero coefficients, total, dense."""
    O, I, kh, kw = packed.shape
    basis = packed.d * kh * kw
    return {"basis": basis, "coefficients": packed.nnz, "total": basis + packed.nnz,
            "dense": O * I * kh * kw}


def macs(packed: PENNIPacked, out_pixels: int = 1) -> dict:
    """MACs over ``out_pixels`` output pixels: basis convolutions + coefficient combination."""
    O, I, kh, kw = packed.shape
    used_pairs = int(np.count_nonzero(packed.mask.any(axis=0)))  # (kept input, basis) pairs in use
    basis = used_pairs * kh * kw * out_pixels
    combine = packed.nnz * out_pixels
    return {"basis": basis, "combine": combine, "total": basis + combine,
            "dense": O * I * kh * kw * out_pixels}


def bits(packed: PENNIPacked, value_bits: int = 8) -> dict:
    """Storage: basis and nonzero coefficient values; support bitmask and channel keep bits."""
    O, I, kh, kw = packed.shape
    support = packed.out_channels.size * packed.in_channels.size * packed.d
    return {
        "values": (packed.d * kh * kw + packed.nnz) * value_bits,
        "index": support + O + I,
        "support": support,
        "channels": O + I,
        "dense": O * I * kh * kw * value_bits,
    }


def simulate(packed: PENNIPacked, out_pixels: int, rows: int = 32, cols: int = 32, dataflow: str = "ws"):
    """Basis and combination GEMMs against the dense conv (:func:`hwmodel.kernel_patterns.simulate_penni`)."""
    O, I, kh, kw = packed.shape
    pairs = max(int(np.count_nonzero(packed.mask.any(axis=0))), 1)
    return simulate_penni(out_pixels, O, I, kh * kw, max(packed.out_channels.size, 1),
                          max(packed.in_channels.size, 1), packed.d, pairs, packed.nnz, rows, cols, dataflow)


def penni_torch_modules(packed: PENNIPacked, stride=1, padding=0, bias=None):
    """torch ``nn.Sequential``: a grouped basis conv then a 1x1 coefficient conv, for fine-tuning.

    The first conv applies the d basis kernels to each of the I input channels
    (groups=I, I*d outputs, shared basis copied per channel); the second mixes
    them with the coefficients (O x I*d, zeros where the mask is off or the
    channel was removed).  Its output equals ``conv2d(x, decode(packed))`` up to
    float rounding; the pipeline trains it, re-applying the mask.
    """
    import torch
    from torch import nn

    O, I, kh, kw = packed.shape
    d = packed.d
    basis = nn.Conv2d(I, I * d, (kh, kw), stride=stride, padding=padding, groups=I, bias=False)
    combine = nn.Conv2d(I * d, O, 1, bias=bias is not None)
    coef = np.zeros((O, I, d))
    coef[np.ix_(packed.out_channels, packed.in_channels)] = np.where(packed.mask, packed.coefficients, 0.0)
    with torch.no_grad():
        basis.weight.copy_(torch.as_tensor(np.tile(packed.basis, (I, 1, 1))[:, None]))
        combine.weight.copy_(torch.as_tensor(coef.reshape(O, I * d, 1, 1)))
        if bias is not None:
            combine.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float64)))
    return nn.Sequential(basis, combine).double()


def finetune(packed: dict, layers, state: dict, masks: dict, hooks, seed: int):
    """Train basis and coefficients (support and kept channels fixed) with the rest of the network.

    PENNI's structure is no mask: each covered module's weight becomes the
    product of its groups' basis and coefficients
    (:class:`arrange.torch_layers.SharedKernels`, a torch parametrization) in
    the module ``hooks.module(state)`` builds, ``hooks.train(module, masks,
    seed)`` trains it (the other layers under ``masks``), and the trained
    basis and coefficients come back as packed layers.  Returns (state,
    packed by layer name).
    """
    if hooks.module is None or hooks.train is None:
        raise ArrangeError("PENNI fine-tuning trains basis and coefficients inside a torch module; "
                           "the hooks need module and train")
    from torch.nn.utils import parametrize

    from ..torch_layers import SharedKernels

    model = hooks.module(state)
    modules = {}
    for layer in layers:
        if layer.name in packed:
            modules.setdefault(layer.base_name, []).append(layer.name)
    for base, names in modules.items():
        parametrize.register_parametrization(model.get_submodule(base), "weight",
                                             SharedKernels([packed[n] for n in names]))
    hooks.train(model, {k: m for k, m in masks.items() if k not in modules}, seed)
    trained = {}
    for base, names in modules.items():
        kernels = model.get_submodule(base).parametrizations.weight[0]
        for n, B, C in zip(names, kernels.basis, kernels.coef):
            p = packed[n]
            coef = C.detach().double().numpy()[np.ix_(p.out_channels, p.in_channels)]
            trained[n] = dataclasses.replace(p, basis=B.detach().double().numpy().reshape(p.basis.shape),
                                             coefficients=np.where(p.mask, coef, 0.0))
        parametrize.remove_parametrizations(model.get_submodule(base), "weight", leave_parametrized=True)
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}, trained


def _project(layer, setting: dict, solver, time_limit: float, seed: int):
    packed = encode(layer.matrix.reshape(layer.weight.shape), setting["d"], density=setting["density"])
    return packed, (packed.stats["error"], packed.stats["rank_bound"])


def _on_array(packed: PENNIPacked, layer, M: int, stored_bits: int, rows: int, cols: int, dataflow: str):
    c = simulate(packed, M, rows, cols, dataflow)
    return Hardware(c.dense.cost, c.basis.cost + c.combine.cost, "array (2 GEMMs)")


def _is_conv(layer) -> bool:
    return layer.kind == "conv"


def _stored(packed: PENNIPacked) -> int:
    return params(packed)["total"]


#: PENNI in a model: convs, basis and combination GEMMs on the array, basis and coefficients fine-tuned
ADAPTER = FormatAdapter(
    name="penni", project=_project, decode=decode, bits=bits, hardware=_on_array,
    settings=tuple({"d": d, "density": f} for d, f in ((2, 0.5), (3, 0.5), (4, 0.5), (4, 1.0), (5, 1.0), (6, 1.0))),
    applies=_is_conv, finetune=finetune, slots=_stored, gap=gap_over_lower_bound,
    gap_kind="error over the rank-d (Eckart-Young) bound")
