"""Fixtures for tests/arrange: small checkpoints written to a temporary folder (see checkpoints.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # checkpoints.py, whatever the import mode


@pytest.fixture
def bert_checkpoint(tmp_path):
    """(path of a BERT-style .safetensors with Hugging Face names, the module it was saved from)."""
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    import checkpoints

    path = tmp_path / "bert.safetensors"
    return path, checkpoints.save_bert(path)


@pytest.fixture
def convnet_checkpoint(tmp_path):
    """(path of a torchvision-style conv net's state dict .pth, the module)."""
    pytest.importorskip("torch")
    import checkpoints

    path = tmp_path / "convnet.pth"
    return path, checkpoints.save_convnet(path)


@pytest.fixture
def pruned_checkpoint(tmp_path):
    """(path of the conv net pruned with prune.global_unstructured, saved with weight_orig/weight_mask, the module)."""
    pytest.importorskip("torch")
    import checkpoints

    path = tmp_path / "pruned.pth"
    return path, checkpoints.save_pruned_convnet(path)
