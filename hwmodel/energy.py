"""Per-action energy table and the energy of one layer on the array.

Problem: turn the actions a layer performs (multiplies by operand width,
accumulates, register-file accesses, select multiplexers, subword shifts, SRAM
and DRAM bits) into picojoules, with a default that cites its sources and can
be overridden from a JSON file.

Method: energy = sum over actions of count * cost.  Every stored cell is
multiplied for every pixel (no zero skipping), so a layer executes
M * N * K_packed MACs (one per subword lane for a subword layer).  A multiply
of a-bit by b-bit operands costs ``mult_8x8 * a * b / 64`` (array multipliers
grow with the product of the widths; 32x32 then gives 3.2 pJ against
Horowitz's 3.1).  Each MAC adds into a 32-bit accumulator and makes
``fan_in + 1`` register-file accesses (the ``fan_in`` input words passing
through the cell, the weight); each PE reads and writes its partial sum once a
cycle (2 accesses, shared by its lanes).  A cell of fan-in alpha selects with
an alpha:1 multiplexer of (alpha - 1) 2:1 mux bits per activation bit; a
subword cell shifts its product through ceil(log2(b / s)) barrel-shifter
stages of (s + act_bits) 2:1 mux bits.  SRAM and DRAM costs are per 64-bit
access, charged per bit moved.

Default table (45 nm; pJ):

=================  ======  ==========================================================
action             pJ      source
=================  ======  ==========================================================
mult_8x8           0.2     Horowitz, ISSCC 2014: 8-bit multiply
add_32             0.1     Horowitz, ISSCC 2014: 32-bit add
rf_access          0.3     Eyeriss: register file = 1x a MAC (mult_8x8 + add_32)
sram_access_64b    10.0    Horowitz, ISSCC 2014: 8 KB SRAM, 64-bit read
dram_access_64b    1950.0  Horowitz, ISSCC 2014: DRAM 1.3-2.6 nJ per 64-bit access, midpoint
mux2_bit           0.002   estimate: one 2:1 mux bit ~ half a full-adder bit (8-bit add 0.03 pJ)
=================  ======  ==========================================================

References: M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, doi:10.1109/ISSCC.2014.6757323; Y.-H. Chen, J. Emer, V. Sze,
"Eyeriss: a spatial architecture for energy-efficient dataflow for
convolutional neural networks", ISCA 2016, doi:10.1109/ISCA.2016.40.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from types import MappingProxyType

from hwmodel.packed import LayerSpec
from hwmodel.traffic import Traffic
from hwmodel.validation import HwModelError

__all__ = ["DEFAULT_ENERGY", "ACTIONS", "energy_table", "load_energy_table", "layer_energy"]

#: Default per-action energies in pJ (45 nm), see the module docstring for sources.
DEFAULT_ENERGY = MappingProxyType({
    "mult_8x8": 0.2,
    "add_32": 0.1,
    "rf_access": 0.3,
    "sram_access_64b": 10.0,
    "dram_access_64b": 1950.0,
    "mux2_bit": 0.002,
})

#: Actions every energy table must price.
ACTIONS = tuple(DEFAULT_ENERGY)


def energy_table(table=None) -> dict:
    """Validated copy of an energy table (a mapping action -> pJ); None gives the default.

    Keys starting with "_" are ignored so a JSON file can carry comments/sources.

    Raises
    ------
    HwModelError
        On missing or unknown actions, or a cost that is not a finite number >= 0.
    """
    if table is None:
        return dict(DEFAULT_ENERGY)
    if not hasattr(table, "items"):
        raise HwModelError(f"energy table must be a mapping action -> pJ, got {type(table).__name__}")
    table = {k: v for k, v in table.items() if not str(k).startswith("_")}
    missing = [a for a in ACTIONS if a not in table]
    if missing:
        raise HwModelError(f"energy table is missing actions: {', '.join(missing)}")
    unknown = sorted(set(table) - set(ACTIONS))
    if unknown:
        raise HwModelError(f"energy table has unknown actions: {', '.join(map(str, unknown))}; "
                           f"allowed: {', '.join(ACTIONS)}")
    for action, cost in table.items():
        if isinstance(cost, bool) or not isinstance(cost, numbers.Real) or not math.isfinite(cost) or cost < 0:
            raise HwModelError(f"energy table action {action} must be a finite number >= 0, got {cost!r}")
    return {a: float(table[a]) for a in ACTIONS}


def load_energy_table(path: str | os.PathLike) -> dict:
    """Read and validate an energy table from a JSON object file {action: pJ}."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise HwModelError(f"energy table file {path} is not valid JSON: {exc.msg}") from None
    return energy_table(data)


def layer_energy(spec: LayerSpec, traffic: Traffic, table: dict) -> dict:
    """Energy breakdown in pJ of ``spec`` with ``traffic``; ``table`` from :func:`energy_table`.

    Returns a dict with keys "mac", "rf", "mux", "shift", "sram", "dram".
    """
    macs = spec.M * spec.N * spec.K_packed
    pe_cycles = spec.M * spec.N * spec.K_array
    mult_bits = spec.subword_bits or spec.weight_bits
    per_mac = table["mult_8x8"] * mult_bits * spec.act_bits / 64 + table["add_32"]
    mux_bits = (spec.fan_in - 1) * spec.act_bits
    shift_bits = 0
    if spec.subword_bits:
        stages = math.ceil(math.log2(spec.weight_bits // spec.subword_bits))
        shift_bits = stages * (spec.subword_bits + spec.act_bits)
    return {
        "mac": macs * per_mac,
        "rf": (macs * (spec.fan_in + 1) + pe_cycles * 2) * table["rf_access"],
        "mux": macs * mux_bits * table["mux2_bit"],
        "shift": macs * shift_bits * table["mux2_bit"],
        "sram": sum(traffic.sram_bits.values()) / 64 * table["sram_access_64b"],
        "dram": sum(traffic.dram_bits.values()) / 64 * table["dram_access_64b"],
    }
