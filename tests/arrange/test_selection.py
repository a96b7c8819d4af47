"""Layer selection on real checkpoint layouts: what is arranged, what is left out and why, and faults apart."""

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.io import load_model, selection_summary, weight_masks

torch = pytest.importorskip("torch")
import checkpoints  # noqa: E402  (tests/arrange, put on the path by conftest)

BERT_LINEAR = {f"encoder.layer.{i}.{m}" for i in range(2) for m in (
    "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
    "intermediate.dense", "output.dense")} | {"pooler.dense"}
BERT_EMBEDDINGS = {f"embeddings.{e}_embeddings.weight" for e in ("word", "position", "token_type")}


def _kinds(model) -> dict:
    return {n.name: n.kind for n in model.not_selected}


def test_bert_safetensors_arranges_linear_layers_only(bert_checkpoint):
    """HF BERT names: every Linear weight arranged; embeddings, LayerNorms, biases and buffers left out, no fault."""
    path, _ = bert_checkpoint
    model = load_model(path)
    assert {l.name for l in model.layers} == BERT_LINEAR
    assert all(l.kind == "linear" for l in model.layers)
    assert model.skipped == []
    kinds = _kinds(model)
    assert {k for k, v in kinds.items() if v == "embedding"} == BERT_EMBEDDINGS
    norms = {k for k, v in kinds.items() if v == "norm"}
    assert "embeddings.LayerNorm.weight" in norms and "encoder.layer.1.output.LayerNorm.bias" in norms
    assert len(norms) == 2 * (1 + 2 * 2)  # weight and bias of 5 LayerNorms
    assert kinds["encoder.layer.0.attention.self.query.bias"] == "bias"
    assert kinds["embeddings.position_ids"] == "buffer"
    assert model.keys["encoder.layer.0.attention.self.query"] == "encoder.layer.0.attention.self.query.weight"
    reason = next(n.reason for n in model.not_selected if n.name == "embeddings.word_embeddings.weight")
    assert "embedding" in reason and "include" in reason


def test_module_source_classifies_by_type_like_the_file(bert_checkpoint):
    """An nn.Module (Embedding, LayerNorm by type) gives the same layers and the same reasons' kinds as its file."""
    path, module = bert_checkpoint
    from_file, from_module = load_model(path), load_model(module)
    assert {l.name for l in from_module.layers} == {l.name for l in from_file.layers}
    assert _kinds(from_module) == _kinds(from_file)
    for a in from_module.layers:
        np.testing.assert_array_equal(a.matrix, from_file.layer(a.name).matrix)


@pytest.mark.parametrize("family, names, layers", [
    ("gpt2", {"transformer.wte.weight": (50, 8), "transformer.wpe.weight": (16, 8),
              "transformer.h.0.ln_1.weight": (8,), "transformer.h.0.ln_1.bias": (8,),
              "transformer.h.0.mlp.c_fc.weight": (8, 32), "transformer.ln_f.weight": (8,),
              "lm_head.weight": (50, 8)}, {"transformer.h.0.mlp.c_fc", "lm_head"}),
    ("llama", {"model.embed_tokens.weight": (50, 8), "model.layers.0.input_layernorm.weight": (8,),
               "model.layers.0.self_attn.q_proj.weight": (8, 8), "model.layers.0.mlp.down_proj.weight": (8, 16),
               "model.layers.0.post_attention_layernorm.weight": (8,), "model.norm.weight": (8,),
               "lm_head.weight": (50, 8)},
     {"model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj", "lm_head"}),
    ("torchvision", {"conv1.weight": (4, 3, 3, 3), "bn1.weight": (4,), "bn1.bias": (4,),
                     "bn1.running_mean": (4,), "bn1.running_var": (4,), "bn1.num_batches_tracked": (),
                     "fc.weight": (10, 4), "fc.bias": (10,)}, {"conv1", "fc"}),
    ("t5 and neox", {"shared.weight": (50, 8), "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
                     (32, 2), "gpt_neox.embed_in.weight": (50, 8), "embed_out.weight": (50, 8),
                     "encoder.final_layer_norm.weight": (8,)}, {"embed_out"}),
])
def test_checkpoint_families(family, names, layers):
    """GPT-2, LLaMA, torchvision, T5 and GPT-NeoX names: embeddings and norms out, lm_head/embed_out in."""
    rng = np.random.default_rng(0)
    sd = {k: rng.normal(size=s) for k, s in names.items()}
    model = load_model(sd)
    assert {l.name for l in model.layers} == layers, family
    assert model.skipped == []
    kinds = _kinds(model)
    assert set(kinds) == set(names) - {model.keys[l] for l in layers}
    for key, kind in kinds.items():
        expected = "embedding" if len(names[key]) == 2 else "norm" if "norm" in key or "ln" in key or "bn" in key \
            else "bias"
        assert kind == expected, key


def test_one_dimensional_weights_are_never_layers():
    """A 1-D tensor named like a weight is left out (not a fault) whatever its name, and include cannot change it."""
    sd = {"scale.weight": np.ones(4), "fc.weight": np.ones((2, 4))}
    model = load_model(sd, include="*")
    assert [l.name for l in model.layers] == ["fc"] and model.skipped == []
    assert _kinds(model) == {"scale.weight": "1-D"}


def test_include_and_exclude_patterns():
    """include picks exactly what it matches (embeddings too); exclude wins; patterns may name layers or keys."""
    rng = np.random.default_rng(1)
    sd = {"embeddings.word_embeddings.weight": rng.normal(size=(20, 4)), "enc.0.q.weight": rng.normal(size=(4, 4)),
          "enc.1.q.weight": rng.normal(size=(4, 4)), "head.weight": rng.normal(size=(3, 4)),
          "head.bias": np.zeros(3)}
    model = load_model(sd, include=["enc.*", "*word_embeddings*"], exclude="enc.1.*")
    assert [l.name for l in model.layers] == ["embeddings.word_embeddings", "enc.0.q"]
    assert model.layer("embeddings.word_embeddings").kind == "linear"
    kinds = _kinds(model)
    assert kinds == {"enc.1.q.weight": "excluded", "head.weight": "not included", "head.bias": "bias"}
    assert [l.name for l in load_model(sd, exclude="head").layers] == ["enc.0.q", "enc.1.q"]


@pytest.mark.parametrize("kw, message", [
    ({"include": "encoder.*"}, "include pattern 'encoder.\\*' matches no tensor"),
    ({"exclude": ["fc", "nope"]}, "exclude pattern 'nope' matches no tensor"),
    ({"include": [""]}, "non-empty strings"),
])
def test_patterns_that_match_nothing_are_errors(kw, message):
    """A pattern matching no tensor (a typo, most often) is a one-line ArrangeError naming it."""
    with pytest.raises(ArrangeError, match=message) as err:
        load_model({"fc.weight": np.eye(3)}, **kw)
    assert "\n" not in str(err.value)


def test_faults_and_selection_stay_apart():
    """A NaN weight is a fault (skipped); a LayerNorm is left out (not_selected); excluding the fault clears it."""
    bad = np.ones((3, 3))
    bad[0, 0] = np.nan
    sd = {"a.weight": np.eye(3), "b.weight": bad, "b.LayerNorm.weight": np.ones(3), "c.weight": np.ones((2, 2, 2))}
    model = load_model(sd)
    assert [n for n, _ in model.skipped] == ["b", "c"]
    assert "NaN" in dict(model.skipped)["b"] and "exclude 'c.weight'" in dict(model.skipped)["c"]
    assert _kinds(model) == {"b.LayerNorm.weight": "norm"}
    clean = load_model(sd, exclude=["b.weight", "c"])
    assert clean.skipped == [] and [l.name for l in clean.layers] == ["a"]
    assert _kinds(clean) == {"b.weight": "excluded", "b.LayerNorm.weight": "norm", "c.weight": "excluded"}
    assert selection_summary(clean.not_selected).startswith("not arranged (selection, not errors): 1 norm, 2 excluded")


def test_pruned_module_keys_and_grouped_masks_merge_back():
    """weight_orig layers are keyed by their `.weight` name; a grouped conv's per-group masks merge to the full shape."""
    net = checkpoints.prune_global(checkpoints.convnet(), 0.6)
    model = load_model(net)
    assert [l.name for l in model.layers] == ["conv1", "layer1.0.conv1[g0]", "layer1.0.conv1[g1]",
                                              "layer1.0.conv2", "fc"]
    assert model.keys["layer1.0.conv1"] == "layer1.0.conv1.weight"
    keep = {l.name: l.matrix != 0 for l in model.layers}
    masks = weight_masks(model.layers, keep, model.keys)
    assert set(masks) == {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "fc.weight"}
    for key, mask in masks.items():
        sub = net.get_submodule(key.rsplit(".", 1)[0])
        np.testing.assert_array_equal(mask, sub.weight_mask.numpy() != 0)
    del keep["layer1.0.conv1[g1]"]
    assert "layer1.0.conv1.weight" not in weight_masks(model.layers, keep, model.keys)
