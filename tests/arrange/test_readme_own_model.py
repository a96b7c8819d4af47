"""The README's "Your own model" section: its Python blocks run as written."""

import re
from pathlib import Path

import pytest

from arrange.cli import main

torch = pytest.importorskip("torch")
import checkpoints  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list:
    text = README.read_text()
    section = text[text.index("## Your own model\n"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    """The 20-line example prunes with torch, arranges, fine-tunes under the masks and saves."""
    (example,) = [b for b in _blocks() if "arrange_module" in b]
    assert len(example.strip().splitlines()) <= 24
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert "verified: 2 layers" in capsys.readouterr().out
    state = torch.load(tmp_path / "arranged.pt", weights_only=True)
    assert set(state) >= {"0.weight", "4.weight"}


def test_masks_snippet_installs_the_cli_masks(bert_checkpoint, tmp_path, monkeypatch, capsys):
    """`arrange pack ... --out out/mine` then the README's loop puts every mask on the model."""
    (snippet,) = [b for b in _blocks() if "masks.pt" in b]
    path, _ = bert_checkpoint
    monkeypatch.chdir(tmp_path)
    assert main(["pack", str(path), "--sparsity", "0.8", "--gamma", "0.1", "--solver", "ffd",
                 "--time-limit", "2", "--out", "out/mine"]) == 0
    capsys.readouterr()
    model = checkpoints.bert()
    exec(compile(snippet, "README.md", "exec"), {"torch": torch, "prune": torch.nn.utils.prune, "model": model})
    masked = [n for n, _ in model.named_buffers() if n.endswith("weight_mask")]
    assert len(masked) == 13 and all("embeddings" not in n for n in masked)
