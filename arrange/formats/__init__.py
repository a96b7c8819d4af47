"""Packed formats; each module has encode(W, **params), decode(packed), bits(packed)."""

from . import column_combine

__all__ = ["column_combine"]
