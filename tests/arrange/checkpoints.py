"""Small real-looking checkpoints built in-process (no downloads), for any test that needs one.

- :class:`TinyBert`: a BERT-style encoder whose state-dict names are Hugging
  Face's (``embeddings.word_embeddings.weight``, ``embeddings.LayerNorm.weight``,
  ``encoder.layer.0.attention.self.query.weight``, ``pooler.dense.weight``, the
  ``embeddings.position_ids`` buffer); :func:`save_bert` writes it as safetensors.
- :class:`TinyResNet`: a torchvision-style conv net (``conv1``, ``bn1`` with
  running statistics, ``layer1.0.conv1`` grouped, ``fc``); :func:`save_convnet`
  writes its state dict as ``.pth``.
- :func:`prune_global`: the same net pruned with ``prune.global_unstructured``
  (L1) over its conv and linear weights, so its state dict holds
  ``weight_orig`` / ``weight_mask``; :func:`save_pruned_convnet` writes it.

Every builder seeds its own initialisation and leaves the global RNG as it was.
"""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

HIDDEN, VOCAB, POSITIONS = 32, 60, 16


def _seeded(build, seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


class _Dense(nn.Module):
    """HF's ``*.output`` block: a dense layer and, optionally, a LayerNorm."""

    def __init__(self, n_in: int, n_out: int, norm: bool):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        if norm:
            self.LayerNorm = nn.LayerNorm(n_out)


class _SelfAttention(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)


class _Attention(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.self = _SelfAttention(h)
        self.output = _Dense(h, h, norm=True)


class _Layer(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.attention = _Attention(h)
        self.intermediate = _Dense(h, 4 * h, norm=False)
        self.output = _Dense(4 * h, h, norm=True)


class _Embeddings(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, h)
        self.position_embeddings = nn.Embedding(POSITIONS, h)
        self.token_type_embeddings = nn.Embedding(2, h)
        self.LayerNorm = nn.LayerNorm(h)
        self.register_buffer("position_ids", torch.arange(POSITIONS)[None])


class TinyBert(nn.Module):
    """A 2-layer BERT-style encoder; forward(ids (B, T) int64) -> pooled (B, HIDDEN)."""

    def __init__(self, layers: int = 2, h: int = HIDDEN):
        super().__init__()
        self.embeddings = _Embeddings(h)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Layer(h) for _ in range(layers))
        self.pooler = _Dense(h, h, norm=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embeddings
        pos = e.position_ids[:, : ids.shape[1]]
        h = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(pos)
                        + e.token_type_embeddings(torch.zeros_like(ids)))
        for layer in self.encoder.layer:
            a = layer.attention
            q, k, v = a.self.query(h), a.self.key(h), a.self.value(h)
            att = torch.softmax(q @ k.transpose(1, 2) / h.shape[-1] ** 0.5, dim=-1) @ v
            h = a.output.LayerNorm(h + a.output.dense(att))
            h = layer.output.LayerNorm(h + layer.output.dense(torch.relu(layer.intermediate.dense(h))))
        return torch.tanh(self.pooler.dense(h[:, 0]))


class TinyResNet(nn.Module):
    """conv1/bn1, one basic block (its first conv grouped), global pooling, fc; input (B, 3, 8, 8)."""

    def __init__(self, width: int = 16, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        block = nn.Module()
        block.conv1 = nn.Conv2d(width, width, 3, padding=1, groups=2, bias=False)
        block.bn1 = nn.BatchNorm2d(width)
        block.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        block.bn2 = nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(block)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        b = self.layer1[0]
        x = torch.relu(x + b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x))))))
        return self.fc(x.mean(dim=(2, 3)))


def bert(seed: int = 0) -> TinyBert:
    return _seeded(TinyBert, seed).eval()


def convnet(seed: int = 0) -> TinyResNet:
    return _seeded(TinyResNet, seed).eval()


def prunable(module: nn.Module) -> list:
    """(module, "weight") for every conv and linear layer, as prune.global_unstructured takes them."""
    return [(m, "weight") for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_global(module: nn.Module, amount: float = 0.7) -> nn.Module:
    """Global L1 unstructured pruning of every conv and linear weight (weight_orig / weight_mask)."""
    prune.global_unstructured(prunable(module), pruning_method=prune.L1Unstructured, amount=amount)
    return module


def save_bert(path, seed: int = 0) -> TinyBert:
    model = bert(seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model


def save_convnet(path, seed: int = 0) -> TinyResNet:
    model = convnet(seed)
    torch.save(model.state_dict(), path)
    return model


def save_pruned_convnet(path, seed: int = 0, amount: float = 0.7) -> TinyResNet:
    model = prune_global(convnet(seed), amount)
    torch.save(model.state_dict(), path)
    return model


def decoded_weights(rows, packed) -> dict:
    """State-dict weight name -> the (rows, cols) matrix of the full weight the packing decodes to, from
    report rows (dicts or LayerReports: name, weight, conv_group, conv_groups) and layer name ->
    ColumnCombined; a grouped conv's blocks stacked in output-channel order."""
    import numpy as np

    from arrange.formats import column_combine

    parts: dict = {}
    for row in rows:
        row = row if isinstance(row, dict) else row.as_dict()
        parts.setdefault(row["weight"], [None] * row["conv_groups"])[row["conv_group"]] = column_combine.decode(
            packed[row["name"]])
    return {key: np.concatenate(blocks) for key, blocks in parts.items() if all(b is not None for b in blocks)}
