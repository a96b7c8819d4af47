"""Energy table (default, file override, errors) and the whole-model table."""

import json

import pytest

from hwmodel import (
    ACTIONS, DEFAULT_ENERGY, HwModelError, column_combined_layer, dense_layer, energy_table,
    load_energy_table, run_model, schedule, simulate_gemm, simulate_layer, subword_layer,
)


def test_default_table_values():
    """The default table carries the cited 45 nm figures."""
    t = energy_table()
    assert (t["mult_8x8"], t["add_32"], t["sram_access_64b"]) == (0.2, 0.1, 10.0)
    assert 1300 <= t["dram_access_64b"] <= 2600
    assert set(t) == set(ACTIONS)


def test_single_mac_energy():
    """A 1x1x1 GEMM spends one 8x8 multiply, one 32-bit add and 4 RF accesses on compute."""
    e = simulate_gemm(1, 1, 1, 1, 1, "os").energy_pj
    assert e["mac"] == pytest.approx(0.2 + 0.1)
    assert e["rf"] == pytest.approx(4 * 0.3)
    assert e["mux"] == 0 and e["shift"] == 0


def test_override_from_file(tmp_path):
    """A JSON table replaces the default; keys starting with _ are comments."""
    table = dict(DEFAULT_ENERGY, dram_access_64b=0.0, _source="test")
    path = tmp_path / "e.json"
    path.write_text(json.dumps(table))
    r = simulate_gemm(8, 8, 8, 4, 4, "ws", energy=load_energy_table(path))
    assert r.energy_pj["dram"] == 0.0
    assert simulate_gemm(8, 8, 8, 4, 4, "ws").energy_pj["dram"] > 0


def test_missing_actions(tmp_path):
    """A table without some actions names every missing one."""
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"mult_8x8": 0.2, "add_32": 0.1}))
    with pytest.raises(HwModelError, match="^energy table is missing actions: rf_access, sram_access_64b, "
                                           "dram_access_64b, mux2_bit$"):
        load_energy_table(path)


@pytest.mark.parametrize("change,msg", [
    ({"mul": 1.0}, "unknown actions: mul"),
    ({"rf_access": -1.0}, "action rf_access must be a finite number >= 0"),
])
def test_bad_table_entries(change, msg):
    """Unknown actions and negative costs are rejected by name."""
    with pytest.raises(HwModelError, match=msg):
        energy_table(dict(DEFAULT_ENERGY, **change))


def test_packed_costs_mux_and_shift():
    """Combined cells pay for their select mux, subword cells for their shift; dense pays neither."""
    cc = run_model([column_combined_layer(64, 32, 256, groups=32, alpha=8, nnz=32 * 30)]).comparisons[0]
    assert cc.packed.energy_pj["mux"] > 0 and cc.dense.energy_pj["mux"] == 0
    sw = run_model([subword_layer(64, 32, 256, groups=64, alpha=8)]).comparisons[0]
    assert sw.packed.energy_pj["shift"] > 0 and sw.dense.energy_pj["shift"] == 0


def test_subword_lanes_share_a_pe():
    """Two 4-bit lanes per 8-bit PE: half the array positions along the reduction, the same
    lane MACs and per-lane stream and weight accesses, one partial-sum read/write per PE."""
    one = simulate_layer(subword_layer(64, 32, 256, groups=64, alpha=8, lanes=1), 16, 16, "ws")
    two = simulate_layer(subword_layer(64, 32, 256, groups=64, alpha=8), 16, 16, "ws")
    assert two.spec.lanes == 2 and two.spec.K_array == 32 and one.spec.K_array == 64
    assert two.cycles == schedule(64, 32, 32, 16, 16, "ws").cycles < one.cycles
    assert two.energy_pj["mac"] == one.energy_pj["mac"]
    macs, rf = 64 * 32 * 64, DEFAULT_ENERGY["rf_access"]
    assert one.energy_pj["rf"] - two.energy_pj["rf"] == pytest.approx(2 * 64 * 32 * 32 * rf)
    assert two.energy_pj["rf"] == pytest.approx((macs * 9 + 64 * 32 * 32 * 2) * rf)
    assert two.utilization * two.cycles == pytest.approx(one.utilization * one.cycles)


def test_run_model_totals():
    """The total row sums cycles and energy and recomputes ratios from the sums."""
    layers = [dense_layer(100, 64, 27, name="conv1"),
              column_combined_layer(100, 64, 576, groups=72, alpha=8, nnz=64 * 70, name="conv2")]
    rep = run_model(layers, 16, 16, "os")
    assert [r["name"] for r in rep.rows] == ["conv1", "conv2"]
    assert rep.rows[0]["speedup"] == 1.0
    assert rep.total["cycles_packed"] == sum(r["cycles_packed"] for r in rep.rows)
    assert rep.total["energy_dense_pj"] == pytest.approx(sum(r["energy_dense_pj"] for r in rep.rows))
    assert rep.total["speedup"] == rep.total["cycles_dense"] / rep.total["cycles_packed"]
    assert len(rep.to_markdown().splitlines()) == 2 + 3


def test_run_model_rejects_bad_layers():
    """An empty model or a non-LayerSpec entry is rejected."""
    with pytest.raises(HwModelError, match="at least one"):
        run_model([])
    with pytest.raises(HwModelError, match=r"layers\[0\] must be a LayerSpec"):
        run_model([(1, 2, 3)])
