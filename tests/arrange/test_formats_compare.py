"""Tests for the side-by-side format comparison on the digits CNN (arrange.formats_compare)."""

import argparse
import json
import math

import numpy as np
import pytest

from arrange.errors import ArrangeError
from arrange.formats import nm
from arrange.formats_compare import FORMATS, apply_format, compare_formats, format_markdown, run_row
from arrange.models.digits import digits_data, digits_forward, digits_pixels, digits_state

# Small settings and deterministic solvers: the structure, not the quality, is under test.
CASES = {
    "column_combine": ({"sparsity": 0.7, "alpha": 8, "gamma": 0.1}, "ffd"),
    "nm": ({"n": 2, "m": 4}, "apex-swap"),
    "permdnn": ({"p": 4}, "assign"),
    "pcnn": ({"n": 3, "K": 4}, "greedy"),
    "penni": ({"d": 3, "density": 0.5}, None),
}


@pytest.fixture(scope="module")
def runs(digits_layers):
    return {name: apply_format(digits_layers, name, setting, epochs=1, seed=0, time_limit=0.5, solver=solver)
            for name, (setting, solver) in CASES.items()}


def _state_weight(run, layer):
    full = run.state[f"{layer.base_name}.weight"]
    rows = layer.weight.shape[0]
    return np.asarray(full[layer.group * rows:(layer.group + 1) * rows], dtype=np.float64)


def _structure(name, packed):
    """The arrays that define a packed layer's structure (not its values)."""
    if name == "column_combine":
        return [packed.table, np.where(packed.values != 0, packed.select, -1)]
    if name == "nm":
        return [packed.order, packed.indices]
    if name == "permdnn":
        return [packed.shifts, packed.row_order, packed.col_order]
    if name == "pcnn":
        return [packed.ids, packed.table]
    return [packed.mask, packed.out_channels, packed.in_channels]


def _check_column_combine(packed, W):
    assert packed.num_groups * packed.shape[0] == packed.values.size
    for g in range(packed.num_groups):
        cols = packed.table[g][packed.table[g] >= 0]
        assert cols.size <= packed.alpha
        assert (np.count_nonzero(W[:, cols], axis=1) <= 1).all()


def _check_nm(packed, W):
    padded = np.zeros((W.shape[0], packed.num_groups * packed.m))
    padded[:, :W.shape[1]] = W
    order = np.arange(padded.shape[1]) if packed.order is None else packed.order
    cells = padded[:, order].reshape(W.shape[0], -1, packed.m)
    assert (np.count_nonzero(cells, axis=2) <= packed.n).all()


def _check_permdnn(packed, W):
    p = packed.p
    Rp, Np = packed.padded_shape
    full = np.zeros((Rp, Np))
    full[:W.shape[0], :W.shape[1]] = W
    rows = np.arange(Rp) if packed.row_order is None else packed.row_order
    cols = np.arange(Np) if packed.col_order is None else packed.col_order
    blocks = full[np.ix_(rows, cols)].reshape(Rp // p, p, Np // p, p)
    for i in range(Rp // p):
        for j in range(Np // p):
            k = packed.shifts[i, j]
            allowed = np.roll(np.eye(p, dtype=bool), k, axis=1)   # (c, (c + k) mod p)
            assert not np.any(blocks[i, :, j, :][~allowed])


def _check_pcnn(packed, W):
    O, I, kh, kw = packed.shape
    support = W.reshape(O * I, kh * kw) != 0
    table = np.asarray(packed.table, dtype=bool)
    assert table.shape[0] <= packed.K and (table.sum(axis=1) == packed.n).all()
    # every kernel's nonzeros lie inside its own pattern, one of the <= K shared ones
    assert not np.any(support & ~table[packed.ids.ravel()])


def _check_penni(packed, W):
    O, I, kh, kw = packed.shape
    X = W.reshape(O * I, kh * kw)
    B = packed.basis.reshape(packed.d, -1)
    coef, *_ = np.linalg.lstsq(B.T, X.T, rcond=None)
    assert np.allclose(B.T @ coef, X.T, atol=1e-9)
    assert packed.nnz <= int(np.floor(0.5 * O * I * packed.d + 1e-9))


CHECKS = {"column_combine": _check_column_combine, "nm": _check_nm, "permdnn": _check_permdnn,
          "pcnn": _check_pcnn, "penni": _check_penni}


@pytest.mark.parametrize("name", list(CASES))
def test_decoded_weights_have_the_format_structure(runs, digits_layers, name):
    """Every covered layer the network runs equals decode(packed), which has the format's structure."""
    run = runs[name]
    assert run.packed, "the format covers some layer"
    for layer in digits_layers:
        W = _state_weight(run, layer)
        if layer.name not in run.packed:
            assert not FORMATS[name].applies(layer)
            continue
        packed = run.packed[layer.name]
        decoded = np.asarray(FORMATS[name].decode(packed), dtype=np.float64).reshape(layer.weight.shape)
        assert np.allclose(W, decoded, atol=1e-6)   # the state is float32
        CHECKS[name](packed, decoded.reshape(layer.shape2d) if name in ("column_combine", "nm", "permdnn")
                     else decoded)


@pytest.mark.parametrize("name", list(CASES))
def test_fine_tuning_keeps_the_structure(runs, name):
    """Re-encoding after fine-tuning keeps the groups / order / shifts / patterns / support found before."""
    run = runs[name]
    for layer_name, packed in run.packed.items():
        for before, after in zip(_structure(name, run.projected[layer_name]), _structure(name, packed)):
            assert (before is None and after is None) or np.array_equal(before, after)


def test_coverage_rules(runs):
    """PermDNN covers the linear layers only, PCNN and PENNI the convs, the others every layer."""
    assert sorted(runs["permdnn"].packed) == ["fc1", "fc2"]
    convs = ["conv1", "conv2[g0]", "conv2[g1]", "conv3"]
    assert sorted(runs["pcnn"].packed) == convs and sorted(runs["penni"].packed) == convs
    assert len(runs["nm"].packed) == len(runs["column_combine"].packed) == 6


def _slots(name, packed):
    """Stored values, counted from the packed object's defining sizes."""
    if name == "column_combine":
        return packed.shape[0] * packed.num_groups
    if name == "nm":
        return packed.shape[0] * math.ceil(packed.shape[1] / packed.m) * packed.n
    if name == "permdnn":
        R, N = packed.shape
        return math.ceil(R / packed.p) * math.ceil(N / packed.p) * packed.p
    if name == "pcnn":
        return packed.shape[0] * packed.shape[1] * packed.n
    return packed.d * packed.shape[2] * packed.shape[3] + int(np.count_nonzero(packed.coefficients))


@pytest.mark.parametrize("name", list(CASES))
def test_row_numbers_are_consistent(runs, digits_layers, name):
    """Matrix compression = dense slots / packed slots; totals, speedup and energy ratio add up."""
    run = runs[name]
    row = run_row(run, digits_pixels(), rows=8, cols=8)
    dense = sum(l.shape2d[0] * l.shape2d[1] for l in digits_layers)
    stored = sum(_slots(name, run.packed[l.name]) if l.name in run.packed else l.shape2d[0] * l.shape2d[1]
                 for l in digits_layers)
    assert row["matrix_compression"] == pytest.approx(dense / stored)
    assert row["dense_bits"] == 8 * dense
    assert row["storage_compression"] == pytest.approx(row["dense_bits"] / (row["value_bits"] + row["index_bits"]))
    assert row["cycles"] == sum(p["cycles"] for p in row["per_layer"])
    assert row["speedup"] == pytest.approx(row["cycles_dense"] / row["cycles"])
    assert row["energy_ratio"] == pytest.approx(row["energy_dense_pj"] / row["energy_pj"])
    assert row["layers"] == sorted(run.packed, key=[l.name for l in digits_layers].index)
    assert row["accuracy"] == run.accuracy and 0 <= row["accuracy"] <= 1


def test_pcnn_storage_counted_independently(runs):
    """PCNN bits: int8 values, ceil(log2 K') bits per kernel id, and the K' x 9 pattern table."""
    run = runs["pcnn"]
    row = run_row(run, digits_pixels())
    for entry in row["per_layer"]:
        if entry["format"] == "dense":
            assert entry["index_bits"] == 0 and entry["value_bits"] == entry["dense_bits"]
            continue
        p = run.packed[entry["name"]]
        O, I, kh, kw = p.shape
        K = p.table.shape[0]
        assert entry["value_bits"] == O * I * p.n * 8
        assert entry["index_bits"] == O * I * (math.ceil(math.log2(K)) if K > 1 else 0) + K * kh * kw


def test_gaps_are_against_bounds(runs):
    """P1 groups >= lower bound; kept <= bound for N:M, PermDNN, PCNN; PENNI's error >= the rank bound."""
    row = {n: run_row(r, digits_pixels()) for n, r in runs.items()}
    for name in ("column_combine", "nm", "permdnn", "pcnn", "penni"):
        assert row[name]["gap"] is not None and row[name]["gap"] >= -1e-9
    for found, bound in list(runs["column_combine"].solver.values()) + list(runs["penni"].solver.values()):
        assert found >= bound
    for found, bound in runs["nm"].solver.values():
        assert found <= bound + 1e-9


def test_nm_order_folds_only_into_a_linear_producer(runs):
    """fc2's N:M order folds into fc1's rows (no permutation bits); fc1 after conv3 stores its own."""
    run = runs["nm"]
    per_layer = {p["name"]: p for p in run_row(run, digits_pixels())["per_layer"]}
    fc2 = run.packed["fc2"]
    assert per_layer["fc2"]["index_bits"] == fc2.values.size * 2
    fc1 = run.packed["fc1"]
    if nm.channel_order(fc1.order, 4) is None:
        assert per_layer["fc1"]["index_bits"] == fc1.values.size * 2 + 128 * 7


def test_nm_folding_on_conv3_to_fc1_preserves_the_network():
    """conv3 outputs permuted by a channel order and fc1 run in the expanded column order: same logits."""
    state = {k: np.asarray(v, dtype=np.float64) for k, v in digits_state().items()}
    X, _ = digits_data("test")
    channels = np.random.default_rng(3).permutation(32)
    order = nm.expand_channel_order(channels, 4)   # fc1 columns are conv3's (channel, y, x), 2x2 map
    packed = nm.encode_order(state["fc1.weight"], 2, 4, order)
    assert np.array_equal(nm.decode_permuted(packed), nm.permute_consumer(nm.decode(packed), order))
    plain = dict(state, **{"fc1.weight": nm.decode(packed)})
    w3, b3 = nm.permute_producer(state["conv3.weight"], state["conv3.bias"], channels)
    folded = dict(state, **{"conv3.weight": w3, "conv3.bias": b3, "fc1.weight": nm.decode_permuted(packed)})
    a, b = digits_forward(plain, X), digits_forward(folded, X)
    assert np.allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))


def test_expand_channel_order_round_trip():
    """channel_order inverts expand_channel_order and rejects orders that split a channel."""
    order = nm.expand_channel_order([2, 0, 1], 3)
    assert order.tolist() == [6, 7, 8, 0, 1, 2, 3, 4, 5]
    assert nm.channel_order(order, 3).tolist() == [2, 0, 1]
    assert nm.channel_order(np.array([1, 0, 2, 3, 4, 5]), 3) is None
    assert nm.channel_order(np.arange(5), 2) is None
    with pytest.raises(ArrangeError, match="positions"):
        nm.expand_channel_order([0, 1], 0)
    with pytest.raises(ArrangeError, match="permutation"):
        nm.expand_channel_order([0, 0], 2)


def _small_compare(seed):
    return compare_formats(formats=("nm", "pcnn"), settings={"nm": ({"n": 2, "m": 4},), "pcnn": ({"n": 4, "K": 4},)},
                           finetune_epochs=1, seed=seed, time_limit=0.5,
                           solvers={"nm": "apex-swap", "pcnn": "greedy"})


def test_compare_is_deterministic_and_tabulates():
    """Same seed, same rows; the dense reference comes first with compression and speedup 1."""
    a, b = _small_compare(0), _small_compare(0)
    assert json.dumps(a, default=float) == json.dumps(b, default=float)
    assert [r["format"] for r in a] == ["dense", "nm", "pcnn"]
    dense = a[0]
    assert dense["matrix_compression"] == dense["storage_compression"] == dense["speedup"] == 1.0
    assert dense["accuracy"] == pytest.approx(354 / 359)
    for r in a[1:]:
        assert r["matched"] == (r["accuracy"] >= dense["accuracy"] - 0.01)
        assert len(r["tried"]) == 1
    table = format_markdown(a)
    assert table.count("\n| ") == 3 and "| nm | n=2, m=4 |" in table
    assert format_markdown(a, details=True).count("\n| ") == 3 + 1 + 2   # header, one setting per format


def test_compare_rejects_unknown_format():
    """An unknown format name is refused before any work, naming the allowed ones."""
    with pytest.raises(ArrangeError, match="unknown format 'csr'; allowed: column_combine"):
        compare_formats(formats=("csr",))
    with pytest.raises(ArrangeError, match="unknown format 'csc'"):
        compare_formats(formats=("nm",), solvers={"csc": "auto"})


def test_cli_formats_writes_report(tmp_path, capsys):
    """`arrange formats digits --formats pcnn --epochs 0 --out DIR` prints the table and writes both files."""
    from arrange import cli_formats
    from arrange.cli import main

    assert main(["formats", "digits", "--formats", "pcnn", "--epochs", "0", "--time-limit", "0.2",
                 "--out", str(tmp_path)]) == 0
    assert "| pcnn |" in capsys.readouterr().out
    parser = argparse.ArgumentParser()
    cli_formats.add_parser(parser.add_subparsers(dest="command"))
    rows = json.loads((tmp_path / "report.json").read_text())
    assert [r["format"] for r in rows] == ["dense", "pcnn"] and len(rows[1]["tried"]) == 5
    assert (tmp_path / "report.md").read_text().startswith("# Formats")
    with pytest.raises(ArrangeError, match="needs --eval"):  # another model: with your evaluator only
        cli_formats.run(parser.parse_args(["formats", "model.pt"]))
    with pytest.raises(ArrangeError, match="FORMAT=NAME"):
        cli_formats.run(parser.parse_args(["formats", "digits", "--solver", "tabu"]))
    assert main(["formats", "model.pt"]) == 2
    assert "needs --eval" in capsys.readouterr().err


def test_masks_of_uncovered_layers_are_held(digits_layers):
    """A pruned model's layers the format does not cover keep their zeros through fine-tuning."""
    from arrange.prune import prune_layers

    pruned = prune_layers(digits_layers, 0.5)
    run = apply_format(pruned, "pcnn", {"n": 4, "K": 4}, epochs=1, seed=0, solver="greedy")
    for layer in pruned:
        if layer.kind == "linear":
            W = _state_weight(run, layer)
            assert np.array_equal(W != 0, layer.matrix != 0)
