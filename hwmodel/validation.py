"""Input checks shared by the hwmodel modules: one-line errors naming the bad field.

Every public entry point validates its arguments once, here, before any work, so
the formulas and Numba kernels can assume positive integer sizes and a known
dataflow.
"""

from __future__ import annotations

import numbers

__all__ = ["HwModelError", "DATAFLOWS", "check_int", "check_dataflow"]

#: Dataflows of SCALE-Sim 3.0.0: output, weight and input stationary.
DATAFLOWS = ("os", "ws", "is")


class HwModelError(ValueError):
    """Bad input to the hardware model; the message names the field and what is allowed."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as a Python int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise HwModelError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise HwModelError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_dataflow(dataflow) -> str:
    """Return ``dataflow`` if it is one of :data:`DATAFLOWS`, else raise."""
    if dataflow not in DATAFLOWS:
        raise HwModelError(f"dataflow must be one of {', '.join(DATAFLOWS)}; got {dataflow!r}")
    return dataflow
