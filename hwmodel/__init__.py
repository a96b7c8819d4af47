"""Systolic-array model: SCALE-Sim-exact timing, traffic and energy of dense and
packed layers, a whole-model table, and cycle-stepped functional execution.

numpy in, numpy/dataclasses out; imports neither ``arrange`` nor torch.
"""

from hwmodel.fc_engine import FCResult, fc_energy, simulate_fc
from hwmodel.energy import ACTIONS, DEFAULT_ENERGY, energy_table, layer_energy, load_energy_table
from hwmodel.functional import FunctionalResult, dense_from_packed, execute_packed
from hwmodel.kernel_patterns import simulate_pcnn, simulate_penni
from hwmodel.model import ModelReport, run_model
from hwmodel.packed import (
    LayerSpec,
    check_packed,
    column_combined_layer,
    conv_gemm_sizes,
    dense_layer,
    fixed_ratio_layer,
    layer_from_packed,
    subword_layer,
)
from hwmodel.sparse_core import simulate_sparse_gemm, sparse_core_layer
from hwmodel.simulate import Comparison, Cost, LayerResult, compare_layer, simulate_conv, simulate_gemm, simulate_layer
from hwmodel.timing import Schedule, schedule
from hwmodel.traffic import Traffic, layer_traffic
from hwmodel.validation import DATAFLOWS, HwModelError

__all__ = [
    "ACTIONS", "DATAFLOWS", "DEFAULT_ENERGY", "Comparison", "Cost", "FCResult", "fc_energy", "simulate_fc",
    "simulate_sparse_gemm", "sparse_core_layer", "simulate_pcnn", "simulate_penni", "FunctionalResult", "HwModelError",
    "LayerResult", "LayerSpec", "ModelReport", "Schedule", "Traffic", "check_packed",
    "column_combined_layer", "compare_layer", "conv_gemm_sizes", "dense_from_packed", "dense_layer",
    "energy_table", "execute_packed", "fixed_ratio_layer", "layer_energy", "layer_from_packed",
    "layer_traffic", "load_energy_table", "run_model", "schedule", "simulate_conv", "simulate_gemm",
    "simulate_layer", "subword_layer",
]
