"""The error types: bad input (one line naming the layer and the fault), and a wrong packed result."""

from __future__ import annotations

__all__ = ["ArrangeError", "LayerError", "VerificationError"]


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
