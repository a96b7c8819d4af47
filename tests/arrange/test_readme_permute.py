"""The README's transformer-block permutation snippet runs as written and keeps the block's function."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def _silu(x):
    return x / (1.0 + np.exp(-x))


def _block(W: dict, x: np.ndarray, heads: int):
    """Attention (no mask) then a gated MLP; returns the attention output, the MLP's activation and the result."""
    T, d = x.shape
    hd = d // heads
    q, k, v = x @ W["q"].T, x @ W["k"].T, x @ W["v"].T
    att = np.empty((T, d))
    for h in range(heads):
        s = slice(h * hd, (h + 1) * hd)
        a = q[:, s] @ k[:, s].T / np.sqrt(hd)
        a = np.exp(a - a.max(axis=1, keepdims=True))
        att[:, s] = (a / a.sum(axis=1, keepdims=True)) @ v[:, s]
    y = att @ W["o"].T
    act = _silu(y @ W["gate"].T) * (y @ W["up"].T)
    return att, act, act @ W["down"].T


def test_readme_permute_snippet_keeps_the_block_function():
    """Run the snippet on a random block: same outputs with the input gathered by the q/k/v order, and 2:4 down."""
    text = README.read_text()
    section = text[text.index("### P2 with your own scores"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rng = np.random.default_rng(0)
    d, f, heads, T = 32, 48, 2, 20
    shapes = {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "gate": (f, d), "up": (f, d), "down": (d, f)}
    W = {name: rng.standard_normal(shape) / np.sqrt(shape[1]) for name, shape in shapes.items()}
    x = rng.standard_normal((T, d)) * rng.uniform(0.2, 3.0, size=d)   # uneven channel norms
    att, act, out = _block(W, x, heads)
    norm = {"attn": np.linalg.norm(x, axis=0), "o": np.linalg.norm(att, axis=0), "down": np.linalg.norm(act, axis=0)}
    scope = {"W": {name: w.copy() for name, w in W.items()}, "heads": heads, "norm": norm}
    exec(compile(code, "README.md", "exec"), scope)
    Wp, qkv, o, r = scope["W"], scope["qkv"], scope["o"], scope["r"]
    assert sorted(qkv.tolist()) == list(range(d)) and sorted(o.tolist()) == list(range(d))
    assert not np.array_equal(qkv, np.arange(d))          # the search moved channels
    hd = d // heads
    assert all(set(o[h * hd:(h + 1) * hd] // hd) == {h} for h in range(heads))   # o stays within heads
    _, _, out_p = _block(Wp, x[:, qkv], heads)
    np.testing.assert_allclose(out_p, out, rtol=1e-9, atol=1e-9)
    # down_24 is 2:4 in the permuted order: every run of 4 columns keeps at most 2 per row
    down = scope["down_24"]
    assert ((down != 0).reshape(d, f // 4, 4).sum(axis=2) <= 2).all()
    assert np.count_nonzero(down) == d * f // 2
