"""Random numbers for the Numba kernels: an explicit xorshift64 state, never global.

Every search draws from a state array it is given (``uint64``, length 1,
made by :func:`new_state` from the seed and a per-algorithm salt), so the same
seed gives the same stream whatever ran before, in any process, and however
the search is split into kernel calls.

Reference: G. Marsaglia, "Xorshift RNGs", J. Statistical Software 8(14), 2003,
doi:10.18637/jss.v008.i14.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["new_state", "rand_below", "rand_unit"]


def new_state(seed: int, salt: int) -> np.ndarray:
    """A nonzero xorshift64 state for ``seed`` (>= 0) and an algorithm's ``salt``."""
    x = (np.uint64(salt) ^ np.uint64(seed + 1)) or np.uint64(0x9E3779B97F4A7C15)
    return np.array([x], dtype=np.uint64)


@njit(cache=True)
def rand_below(state, n):
    """Uniform int in [0, n) from a xorshift64 state (uint64 array of length 1)."""
    x = state[0]
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    state[0] = x
    return np.int64(x % np.uint64(n))


@njit(cache=True)
def rand_unit(state):
    """Uniform float in [0, 1) from the same xorshift64 state."""
    return rand_below(state, 1 << 53) / float(1 << 53)
