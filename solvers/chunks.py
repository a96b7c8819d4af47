"""Running a Numba kernel in chunks, so a Python loop can watch the clock and Ctrl-C.

A kernel cannot read the wall clock, so long searches run as repeated calls of
a kernel that does a bounded number of steps; between calls Python checks the
work budget and the deadline (and a KeyboardInterrupt can land). A kernel that
charges work stops itself at the step where the budget runs out, so the chunk
size only decides how often the clock is read: the steps, and so the answer,
are the same for any chunking unless the wall-clock cap cuts in.
"""

from __future__ import annotations

import time
from typing import Callable

from .budget import Budget

__all__ = ["run_in_chunks"]

# A kernel call should return within about this many seconds, so the deadline and Ctrl-C
# are noticed; chunks start small and are resized from the last call's time (at most doubled).
_CALL_SECONDS = 0.02


def run_in_chunks(steps: Callable[[int, int], tuple], cap: int, max_chunk: int, budget: Budget) -> tuple:
    """Call ``steps(it, n) -> (it, left)`` until nothing is left (0), ``cap`` steps, or ``budget`` is exhausted.

    Returns the last (it, left); ``left`` is whatever the caller counts down
    (a search's excess, a constructive heuristic's unplaced columns).
    """
    it, total, chunk = 0, 1, min(64, max_chunk)
    while it < cap and total > 0 and not budget.exhausted:
        start = time.perf_counter()
        it, total = steps(it, min(chunk, cap - it))
        seconds = max(time.perf_counter() - start, 1e-6)
        chunk = int(min(2 * chunk, max_chunk, max(1, chunk * _CALL_SECONDS / seconds)))
    return it, total
