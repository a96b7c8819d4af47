"""Your own model end to end: a small transformer and a small CNN, with their own evaluator and fine-tuner.

Run (from the repository root):
    ./run python benchmarks/own_model.py [--out DIR] [--time-limit 1]

What it does, as a new user would: trains two small models here (no
downloads) and saves them under real naming schemes, a LLaMA-style sequence
classifier as ``.safetensors`` (``model.embed_tokens``,
``model.layers.N.self_attn.q_proj``, ``mlp.up_proj``, ``input_layernorm``,
``model.norm``, ``score``) and a torchvision-VGG-style CNN on the digits data
as a ``.pth`` state dict (``features.N``, ``classifier.N``, batch norms); then
runs ``arrange pack``, ``arrange compress`` and ``arrange formats`` on each
from the command line with ``--model-builder``, ``--eval`` and ``--finetune``
pointing at the functions of this file (test-set accuracy, a short Adam loop)
and ``--input-shape`` / ``--tokens`` for the hardware figures, and prints one
table: accuracy before and after, matrix and storage compression, speed-up
over dense, wall time. Norms, biases and embeddings are left out by the
layer selection (exit 0).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve()
VOCAB, TOKENS, HIDDEN, LAYERS = 32, 16, 32, 2
SEED = 0


# --- the transformer: a LLaMA-style sequence classifier ---------------------------------------------

class _Attention(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(h, h, bias=False), nn.Linear(h, h, bias=False)
        self.v_proj, self.o_proj = nn.Linear(h, h, bias=False), nn.Linear(h, h, bias=False)

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return self.o_proj(torch.softmax(q @ k.transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1) @ v)


class _MLP(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.up_proj, self.down_proj = nn.Linear(h, 4 * h, bias=False), nn.Linear(4 * h, h, bias=False)

    def forward(self, x):
        return self.down_proj(torch.relu(self.up_proj(x)))


class _Block(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.input_layernorm, self.post_attention_layernorm = nn.LayerNorm(h), nn.LayerNorm(h)
        self.self_attn, self.mlp = _Attention(h), _MLP(h)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class TinyLM(nn.Module):
    """forward(ids (B, T) int64) -> logits (B, 2): are tokens < VOCAB/2 the majority?"""

    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.model.layers = nn.ModuleList(_Block(HIDDEN) for _ in range(LAYERS))
        self.model.norm = nn.LayerNorm(HIDDEN)
        self.score = nn.Linear(HIDDEN, 2, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for block in self.model.layers:
            x = block(x)
        return self.score(self.model.norm(x).mean(dim=1))


def _sequences(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, TOKENS), generator=g)
    return ids, ((ids < VOCAB // 2).sum(dim=1) > TOKENS // 2).long()


# --- the CNN: torchvision-VGG-style on the 8x8 digits -------------------------------------------------

class TinyVGG(nn.Module):
    """features (conv, bn, relu, conv stride 2, bn, relu, conv, relu) -> classifier (linear, relu, linear)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _digits(split: str):
    from arrange.models.digits import digits_data

    X, y = digits_data(split)
    return torch.from_numpy(X), torch.from_numpy(y)


# --- the user's functions (what --model-builder, --eval and --finetune name) -------------------------

def build_lm() -> nn.Module:
    return TinyLM()


def build_cnn() -> nn.Module:
    return TinyVGG()


def _accuracy(module, x, y) -> float:
    return float((module(x).argmax(dim=1) == y).float().mean())


def eval_lm(module) -> float:
    """Test accuracy of the sequence classifier (1024 fixed sequences)."""
    return _accuracy(module, *_sequences(1024, seed=1))


def eval_cnn(module) -> float:
    """Test accuracy on the digits test split."""
    return _accuracy(module, *_digits("test"))


def _train(module, x, y, steps: int, lr: float, seed: int, batch: int = 64) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
        opt.step()


def finetune_lm(module) -> None:
    """150 Adam steps on fresh training sequences (masks registered by arrange hold the arrangement)."""
    _train(module, *_sequences(4096, seed=2), steps=150, lr=1e-3, seed=3)


def finetune_cnn(module) -> None:
    """200 Adam steps on the digits training split."""
    _train(module, *_digits("train"), steps=200, lr=1e-3, seed=4)


# --- the run ---------------------------------------------------------------------------------------

def _checkpoints(out: Path) -> dict:
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    lm = TinyLM()
    _train(lm, *_sequences(8192, seed=0), steps=600, lr=3e-3, seed=5)
    cnn = TinyVGG()
    _train(cnn, *_digits("train"), steps=600, lr=3e-3, seed=6)
    paths = {"transformer": out / "tiny_lm.safetensors", "cnn": out / "tiny_vgg.pth"}
    save_file({k: v.contiguous() for k, v in lm.eval().state_dict().items()}, str(paths["transformer"]))
    torch.save(cnn.eval().state_dict(), paths["cnn"])
    return paths


def _commands(paths: dict, out: Path, time_limit: float) -> list:
    fn = f"{HERE}"
    user = {"transformer": ["--model-builder", f"{fn}:build_lm", "--eval", f"{fn}:eval_lm",
                            "--finetune", f"{fn}:finetune_lm"],
            "cnn": ["--model-builder", f"{fn}:build_cnn", "--eval", f"{fn}:eval_cnn",
                    "--finetune", f"{fn}:finetune_cnn"]}
    shape = {"transformer": ["--tokens", str(TOKENS)], "cnn": ["--input-shape", "1,8,8"]}
    solve = ["--solver", "ffd", "--time-limit", str(time_limit)]
    runs = []
    for name, path in paths.items():
        runs.append((name, "pack", ["pack", str(path), "--sparsity", "0.7", "--gamma", "0.1", *solve, *user[name]]))
        runs.append((name, "compress", ["compress", str(path), "--sparsity", "0.8", "--scope", "global",
                                        "--subword", "4", "--alpha", "16", "--gamma", "0.15", *solve,
                                        *user[name], *shape[name], "--rows", "8", "--cols", "8"]))
        runs.append((name, "formats", ["formats", str(path), "--formats", "column_combine,nm", "--time-limit",
                                       str(time_limit), *user[name], *shape[name]]))
    return [(name, cmd, argv + ["--out", str(out / f"{name}-{cmd}")]) for name, cmd, argv in runs]


def _row(name: str, cmd: str, folder: Path, code: int, seconds: float) -> list:
    d = json.loads((folder / "report.json").read_text())
    if cmd == "pack":
        acc, t = d["accuracy"], d["total"]
        return [name, cmd, code, f"{acc['dense']:.4f} -> {acc['finetuned']:.4f}", f"{t['matrix_compression']:.2f}",
                f"{t['storage_compression']:.2f}", "-", f"{seconds:.1f}"]
    if cmd == "compress":
        stages, t = d["stages"], d["total"]
        speed = d["hardware"]["total"]["engine"]["speedup_vs_dense"]
        return [name, cmd, code, f"{stages[0]['metric']:.4f} -> {stages[-1]['metric']:.4f}",
                f"{t['matrix_compression']:.2f}", f"{t['storage_compression']:.2f}", f"{speed:.2f}",
                f"{seconds:.1f}"]
    best = max(d[1:], key=lambda r: (r["matched"], r["matrix_compression"]))
    return [name, f"formats ({best['format']}, matched: {'yes' if best['matched'] else 'no'})", code,
            f"{best['accuracy_dense']:.4f} -> {best['accuracy']:.4f}", f"{best['matrix_compression']:.2f}",
            f"{best['storage_compression']:.2f}", f"{best['speedup']:.2f}", f"{seconds:.1f}"]


def main(argv=None) -> int:
    from arrange.cli import main as arrange
    from arrange.report import markdown_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", metavar="DIR", help="checkpoints and reports go here (default: a temporary folder)")
    ap.add_argument("--time-limit", type=float, default=1.0, help="solver seconds per layer")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: more threads only contend, here and in the fine-tuning arrange runs
    out = Path(args.out or tempfile.mkdtemp(prefix="own_model_"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = _checkpoints(out)
    print(f"trained and saved {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    rows = []
    for name, cmd, argv_ in _commands(paths, out, args.time_limit):
        print("arrange " + " ".join(argv_), file=sys.stderr)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the report is read from --out
            code = arrange(argv_ + ["--json"])
        rows.append(_row(name, cmd, out / f"{name}-{cmd}", code, time.perf_counter() - start))
    print(markdown_table(["model", "command", "exit", "accuracy (dense -> final)", "matrix x", "storage x",
                          "speedup vs dense", "seconds"], rows))
    print(f"\nreports in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
