"""Run SCALE-Sim 3.0.0 on single layers; executed by the .venv-scalesim interpreter.

Reads a JSON list of layers on stdin, each {"name", "kind": "gemm" | "conv",
"dims": [M, N, K] or [ifmap_h, ifmap_w, kernel_h, kernel_w, channels, filters, stride],
"rows", "cols", "dataflow"}, runs each as its own one-layer SCALE-Sim run
(CALC bandwidth, i.e. stall-free, large SRAMs, no traces) and prints a JSON
list of {"name", "total_cycles", "sram_ifmap_reads", "sram_filter_reads",
"sram_ofmap_writes", "seconds"}.  Needs only the standard library and scalesim.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import time

CONFIG = """[general]
run_name = run

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 65536
FilterSramSzkB: 65536
OfmapSramSzkB: 65536
IfmapOffset: 0
FilterOffset: 100000000
OfmapOffset: 200000000
Bandwidth: 10
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
FilterCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

GEMM_HEADER = "Layer, M, N, K,\n"
CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
LAYOUT_HEADER = "Layer name," + ",".join(f"f{i}" for i in range(20)) + ",\n"


def run_layer(layer, work):
    """One SCALE-Sim run of one layer in directory ``work``; returns the result dict."""
    from scalesim.scale_sim import scalesim

    cfg = os.path.join(work, "scale.cfg")
    topo = os.path.join(work, "topo.csv")
    layout = os.path.join(work, "layout.csv")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(rows=layer["rows"], cols=layer["cols"], dataflow=layer["dataflow"]))
    gemm = layer["kind"] == "gemm"
    with open(topo, "w") as f:
        f.write(GEMM_HEADER if gemm else CONV_HEADER)
        f.write("L0, " + ", ".join(str(d) for d in layer["dims"]) + ",\n")
    with open(layout, "w") as f:
        f.write(LAYOUT_HEADER + "L0," + ",".join(["1"] * 20) + ",\n")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                       layout=layout, input_type_gemm=gemm)
        sim.run_scale(top_path=work)
    seconds = time.perf_counter() - t0
    with open(os.path.join(work, "run", "COMPUTE_REPORT.csv")) as f:
        compute = [x.strip() for x in f.readlines()[1].split(",")]
    with open(os.path.join(work, "run", "DETAILED_ACCESS_REPORT.csv")) as f:
        detail = [x.strip() for x in f.readlines()[1].split(",")]
    return {"name": layer["name"], "total_cycles": int(compute[2]),
            "sram_ifmap_reads": int(detail[3]), "sram_filter_reads": int(detail[6]),
            "sram_ofmap_writes": int(detail[9]), "seconds": seconds}


def main():
    out = []
    for layer in json.load(sys.stdin):
        with tempfile.TemporaryDirectory() as work:
            out.append(run_layer(layer, work))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
