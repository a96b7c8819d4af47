"""Optional cross-check against SCALE-Sim 3.0.0, skipped when .venv-scalesim is absent."""

import json
import os
import subprocess

import pytest

from hwmodel import simulate_conv, simulate_gemm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = os.path.join(ROOT, ".venv-scalesim", "bin", "python")
DRIVER = os.path.join(ROOT, "benchmarks", "hwmodel", "scalesim_driver.py")

LAYERS = [
    {"name": "g1", "kind": "gemm", "dims": [13, 7, 21], "rows": 4, "cols": 8},
    {"name": "g2", "kind": "gemm", "dims": [40, 33, 9], "rows": 8, "cols": 4},
    {"name": "c1", "kind": "conv", "dims": [9, 9, 3, 3, 4, 6, 2], "rows": 8, "cols": 8},
]


@pytest.mark.skipif(not os.path.exists(PY), reason="SCALE-Sim venv not installed "
                    "(bash benchmarks/hwmodel/setup_scalesim.sh)")
def test_cycles_match_scalesim():
    """SCALE-Sim's Total Cycles equal our cycles - 1 on small layers, every dataflow."""
    batch = [dict(layer, dataflow=df) for layer in LAYERS for df in ("os", "ws", "is")]
    proc = subprocess.run([PY, DRIVER], input=json.dumps(batch), capture_output=True, text=True,
                          check=True, timeout=300)
    for layer, theirs in zip(batch, json.loads(proc.stdout)):
        fn = simulate_gemm if layer["kind"] == "gemm" else simulate_conv
        ours = fn(*layer["dims"], rows=layer["rows"], cols=layer["cols"], dataflow=layer["dataflow"])
        assert ours.scalesim_cycles == theirs["total_cycles"], layer
        assert ours.sram_reads["ifmap"] == theirs["sram_ifmap_reads"], layer
        assert ours.sram_reads["filter"] == theirs["sram_filter_reads"], layer
