"""Weight arrangement for sparse-DNN accelerators.

Import weights and masks, arrange them (P1 column combining, P2 fixed-ratio
grouping) with exact or heuristic solvers from :mod:`solvers`, verify, and
evaluate on :mod:`hwmodel`. See DESIGN.md for the problems and the numbers.
"""

from .errors import ArrangeError, LayerError
from .io import Model, layer_masks, load_model, to_state_dict
from .layer import Layer, check_packable
from .pack import pack, permute
from .prune import magnitude_prune, prune_layers

__all__ = ["ArrangeError", "LayerError", "Layer", "Model", "check_packable", "layer_masks",
           "load_model", "magnitude_prune", "pack", "permute", "prune_layers", "to_state_dict"]
