"""The error types: bad input (one line naming the layer and the fault), and a wrong packed result.

:func:`is_int` is the integer test those one-line parameter errors share.
"""

from __future__ import annotations

import numbers

__all__ = ["ArrangeError", "LayerError", "VerificationError", "is_int"]


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools (``True`` is no block size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class ArrangeError(ValueError):
    """Bad input: a file, a parameter, a layer. The CLI prints it and exits with code 2."""


class LayerError(ArrangeError):
    """A single layer cannot be handled; the others still complete."""

    def __init__(self, layer: str, problem: str):
        self.layer = layer
        self.problem = problem
        super().__init__(f"layer {layer}: {problem}")


class VerificationError(AssertionError):
    """A packed result is wrong: a bug in a solver or encoder, never user error."""
