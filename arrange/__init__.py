"""Weight arrangement for sparse-DNN accelerators.

Import weights and masks, arrange them (P1 column combining, P2 fixed-ratio
grouping) with exact or heuristic solvers from :mod:`solvers`, verify, and
evaluate on :mod:`hwmodel`. See DESIGN.md for the problems and the numbers.
"""

from .errors import ArrangeError, LayerError
from .pack import pack, permute

__all__ = ["ArrangeError", "LayerError", "pack", "permute"]
