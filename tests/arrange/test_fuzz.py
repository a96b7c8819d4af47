"""Fuzzing the front doors: any input gives a checked result or a one-line ArrangeError, nothing else."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import arrange
from arrange import ArrangeError
from arrange.pack import pad_columns
from solvers import CombineProblem, GroupProblem, check_labels, kept_magnitude
from solvers.combine import SOLVERS as P1_SOLVERS
from solvers.group import SOLVERS as P2_SOLVERS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)



def mostly(valid, odd):
    """Usually (4 in 5) an ordinary value, else an extreme or a wrong type (as users have passed)."""
    return st.tuples(st.integers(0, 4), valid, odd).map(lambda t: t[2] if t[0] == 4 else t[1])


ODD_INTS = st.one_of(st.integers(-3, 40), st.sampled_from([2 ** 31, 2 ** 63, 2 ** 70, 10 ** 9, 1.5, True, None, "4",
                                                           float("nan")]))
INTS = mostly(st.integers(1, 12), ODD_INTS)
GROUP_SIZES = mostly(st.integers(2, 8), ODD_INTS)
KEEPS = mostly(st.integers(1, 3), ODD_INTS)
FLOATS = mostly(st.floats(0.0, 0.6), st.sampled_from([-0.1, 1e300, float("inf"), float("nan"), True, None, "0.1"]))
LIMITS = mostly(st.sampled_from([0.05, 0.2]), st.sampled_from([0, -1, 1e300, float("inf"), True, "1"]))


@st.composite
def matrices(draw):
    """Small matrices: float, int or bool, sparse or dense, occasionally NaN, huge or empty."""
    R = draw(mostly(st.integers(1, 9), st.just(0)))
    N = draw(mostly(st.integers(1, 16), st.just(0)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    kind = draw(mostly(st.sampled_from(["float", "int", "bool"]), st.sampled_from(["huge", "nan", "1d", "list"])))
    density = draw(mostly(st.sampled_from([0.2, 0.6, 1.0]), st.just(0.0)))
    W = rng.standard_normal((R, N)) * (rng.random((R, N)) < density)
    if kind == "int":
        W = np.round(W * 3).astype(np.int64)
    elif kind == "bool":
        W = W != 0
    elif kind == "huge":
        W = W * 1e307
    elif kind == "nan" and W.size:
        W[0, 0] = np.nan
    elif kind == "1d":
        W = W.ravel()
    elif kind == "list":
        W = W.tolist()
    return W


@SETTINGS
@given(W=matrices(), alpha=INTS, gamma=FLOATS, solver=st.sampled_from(sorted(P1_SOLVERS) + ["nope"]),
       time_limit=LIMITS, seed=INTS)
def test_pack_gives_a_checked_result_or_a_one_line_error(W, alpha, gamma, solver, time_limit, seed):
    """arrange.pack: the answer passes the checker and decodes, or ArrangeError with one line."""
    try:
        result = arrange.pack(W, alpha=alpha, gamma=gamma, solver=solver, time_limit=time_limit, seed=seed)
    except ArrangeError as exc:
        assert "\n" not in str(exc) and str(exc)
        event("error")
        return
    event("packed")
    problem = CombineProblem.from_weights(W, alpha=alpha, gamma=gamma)
    pruned = check_labels(problem, result.labels)
    assert np.array_equal(pruned, result.pruned)
    assert result.lower_bound <= result.num_groups


@SETTINGS
@given(W=matrices(), k=GROUP_SIZES, n=KEEPS, solver=st.sampled_from(sorted(P2_SOLVERS) + ["nope"]),
       time_limit=LIMITS, seed=INTS)
def test_permute_gives_a_checked_result_or_a_one_line_error(W, k, n, solver, time_limit, seed):
    """arrange.permute: a valid permutation whose kept magnitude is recomputed exactly, or ArrangeError."""
    try:
        result = arrange.permute(W, k=k, n=n, solver=solver, time_limit=time_limit, seed=seed)
    except ArrangeError as exc:
        assert "\n" not in str(exc) and str(exc)
        event("error")
        return
    event("permuted")
    padded, _ = pad_columns(np.asarray(W), k)
    problem = GroupProblem.from_weights(padded, k=k, n=n)
    assert kept_magnitude(problem, result.order) == result.kept
    assert result.kept <= result.upper_bound + 1e-9 * max(1.0, result.upper_bound)
