"""Compile (or load from Numba's cache) every built-in solver's kernels before a clock starts.

Problem: Numba compiles a kernel on its first call in a process, which can
take seconds; inside a time limit that would cut the search short, so the
first call after an install would give another answer than the hundredth.

Method: :func:`warm_up` runs every built-in solver that has kernels once on
tiny instances of each kind (P1 with and without a conflict budget, chosen so
the starters miss the bound and the searches run; the P1 LP bound; P2 at
k = 2 and k = 4; PermDNN), with a generous limit, the first time a front door
is called in a process; the front doors start their clock after it.  CP-SAT
needs no warming (no Numba) and the portfolios only call the other solvers'
kernels, so ``cpsat`` and ``auto`` are left out.  With ``cache=True`` the
compiled code is written next to the sources, so later processes only load
it (``./run`` setup fills the cache once after installing).
"""

from __future__ import annotations

import numpy as np

__all__ = ["warm_up"]

_warm = False


def _p1_instances():
    from .problem import CombineProblem

    rng = np.random.default_rng(1)
    W = rng.random((8, 24)) * (rng.random((8, 24)) < 0.35)
    return [CombineProblem.from_weights(W, alpha=4, gamma=g) for g in (0.0, 0.25)]


def _p2_instances():
    from .problem import GroupProblem

    W = np.abs(np.random.default_rng(1).standard_normal((4, 8)))
    return [GroupProblem.from_weights(W, k=k, n=n) for k, n in ((4, 2), (2, 1))]


def warm_up() -> None:
    """Run every built-in solver once per process (no-op after the first call)."""
    global _warm
    if _warm:
        return
    _warm = True
    from . import combine, group, permdiag
    from .budget import Budget
    from .combine._kernels import pruned_magnitude
    from .combine.cpsat import feasible_groups
    from .combine.lp_bound import lp_bound
    from .combine.reduce import analyse
    from .group.lp_bound import lp_bound as group_lp_bound
    from .problem import Options

    options = Options(time_limit=60.0)
    skip = ("cpsat", "auto")
    builtin = {"p1": dict(combine.SOLVERS), "p2": dict(group.SOLVERS)}
    for problem in _p1_instances():
        for name in builtin["p1"]:
            if name not in skip:
                labels = combine.solve(problem, name, options).labels
        keep, (col_ptr, col_rows, _, _) = problem.incidence     # auto's score kernel
        pruned_magnitude(labels[keep], int(labels.max()) + 1, col_ptr, col_rows, problem.column_magnitudes,
                         problem.shape[0])
        lp_bound(problem, combine.solve(problem, "ffd", options).labels, options)
        if problem.budget == 0:
            analyse(problem)                 # the components and adjacency kernels cpsat and auto use
            feasible_groups(problem)
    for problem in _p2_instances():
        for name, spec in builtin["p2"].items():
            if name not in skip and spec.supports(problem):
                group.solve(problem, name, options)
        group_lp_bound(problem, np.arange(problem.shape[1]), Budget.start(options.time_limit))
    E = np.random.default_rng(2).random((4, 4))
    permdiag.solve(permdiag.PermDiagProblem.from_weights(E, 2), "assign", options)

