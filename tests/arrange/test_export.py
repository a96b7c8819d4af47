"""Hardware export: hex files, manifest, and the loader's exact round trip."""

import json

import numpy as np
import pytest

import arrange
from arrange.errors import ArrangeError
from arrange.export import ExportLayer, export_layers, fixed_ratio_packed, hex_lines, load_export
from arrange.formats import column_combine
from arrange.layer import Layer
from arrange.quant import from_subwords, quantize, to_subwords


def test_hex_lines_twos_complement():
    """Words are fixed-width hex, negatives in two's complement."""
    assert hex_lines(np.array([[1, -1], [-128, 127]]), 8) == "01\nff\n80\n7f\n"
    assert hex_lines(np.array([-3]), 5) == "1d\n"


def _conv_layer(rng):
    w = rng.normal(size=(4, 2, 3, 3)) * (rng.random((4, 2, 3, 3)) < 0.4)
    w[0, 0, 0, 0] = 1.0
    return Layer("conv[g1]", "conv", w, group=1, groups=2), Layer("conv[g0]", "conv", -w, group=0, groups=2)


@pytest.mark.parametrize("subword", [None, 4, 2])
def test_export_roundtrip(singletons, tmp_path, subword):
    """load_export rebuilds exactly the dequantised weights the packed layers encode."""
    rng = np.random.default_rng(3)
    items, expected = [], {}
    for layer in _conv_layer(rng):
        Q = quantize(layer.matrix, bits=8)
        if subword is None:
            M, q_of = Q.q, lambda d: d
        else:
            sw = to_subwords(Q.q, bits=8, subword=subword)
            M = sw.values
            q_of = lambda d, sw=sw: from_subwords(type(sw)(d, sw.shifts, sw.source, 8, subword))
        r = arrange.pack(M, alpha=4, solver=singletons)
        packed = column_combine.encode_groups(M, r.groups, 4)
        items.append(ExportLayer(layer, packed, Q.scale, 8, subword))
        q = q_of(column_combine.decode(packed).astype(np.int32))
        expected[layer.group] = (q * Q.scale[:, None]).reshape(layer.weight.shape)
    export_layers(items, str(tmp_path))
    state = load_export(str(tmp_path))
    assert list(state) == ["conv.weight"]
    assert np.array_equal(state["conv.weight"], np.concatenate([expected[0], expected[1]]))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["layers"][0]
    assert entry["files"]["values"]["width"] == (8 if subword is None else subword + 1)
    lines = (tmp_path / entry["files"]["values"]["file"]).read_text().split()
    assert len(lines) == np.prod(entry["files"]["values"]["shape"])


def test_load_export_refuses_bad_folder(tmp_path):
    """A folder without a manifest is refused in one line."""
    with pytest.raises(ArrangeError, match="cannot read export"):
        load_export(str(tmp_path))


def test_fixed_ratio_lanes_roundtrip():
    """A (k, n) packing written as n lanes per group decodes to exactly the kept matrix."""
    from arrange.compress import group_keep

    rng = np.random.default_rng(5)
    M = rng.integers(-7, 8, size=(6, 10))
    order = rng.permutation(12)                       # 10 columns padded to 12 for k = 4
    padded = np.concatenate([M, np.zeros((6, 2), dtype=M.dtype)], axis=1)
    kept = np.where(group_keep(padded, order, 4, 2)[:, :10], M, 0)
    packed = fixed_ratio_packed(kept, order, 4, 2)
    assert packed.values.shape == (6, 6) and packed.alpha == 4
    assert np.array_equal(column_combine.decode(packed), kept)
    with pytest.raises(ArrangeError, match="more than n=1"):
        fixed_ratio_packed(kept, order, 4, 1)
