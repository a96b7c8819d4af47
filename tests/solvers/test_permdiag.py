"""PermDNN core: best shift per block, exact enumeration, assignment search, bounds."""

import itertools

import numpy as np
import pytest

from solvers import Options, ProblemError
from solvers import permdiag as pd


def brute_block_best(E, p):
    """Per-block best kept energy and shift by explicit loops."""
    Rb, Nb = E.shape[0] // p, E.shape[1] // p
    best = np.zeros((Rb, Nb))
    shift = np.zeros((Rb, Nb), dtype=int)
    for i in range(Rb):
        for j in range(Nb):
            scores = [sum(E[i * p + c, j * p + (c + k) % p] for c in range(p)) for k in range(p)]
            shift[i, j] = int(np.argmax(scores))
            best[i, j] = max(scores)
    return shift, best


def brute_permuted(E, p):
    """Best kept energy over every row and column permutation."""
    R, N = E.shape
    return max(pd.kept_energy(E, p, list(r), list(c))[1]
               for r in itertools.permutations(range(R)) for c in itertools.permutations(range(N)))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_best_shifts_match_brute_force(p):
    """The vectorised best shift per block equals an explicit loop over the p diagonals."""
    E = np.random.default_rng(p).random((2 * p, 3 * p))
    shifts, kept = pd.best_shifts(E, p)
    ref_shift, ref_best = brute_block_best(E, p)
    assert np.array_equal(shifts, ref_shift)
    assert kept == pytest.approx(ref_best.sum())


def test_best_shift_ties_pick_smallest():
    """A block whose diagonals all tie gets shift 0."""
    shifts, kept = pd.best_shifts(np.ones((3, 3)), 3)
    assert shifts.tolist() == [[0]] and kept == 3.0


def test_shift_energy_known_values():
    """Shift k keeps (c, (c + k) mod p): a hand-checked 2x2 block."""
    E = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert pd.shift_energy(E, 2)[0, 0].tolist() == [5.0, 5.0]
    E = np.array([[1.0, 9.0], [3.0, 4.0]])
    assert pd.shift_energy(E, 2)[0, 0].tolist() == [5.0, 12.0]


@pytest.mark.parametrize("n,p", [(4, 2), (6, 2), (6, 3), (8, 4)])
def test_canonical_orders_count_and_validity(n, p):
    """The enumeration yields arrangement_count distinct permutations."""
    orders = pd.canonical_orders(n, p)
    assert orders.shape == (pd.arrangement_count(n, p), n)
    assert all(np.array_equal(np.sort(o), np.arange(n)) for o in orders)
    assert len({tuple(o) for o in orders}) == orders.shape[0]


@pytest.mark.parametrize("shape,p,seed", [((4, 4), 2, 0), ((4, 6), 2, 1), ((3, 6), 3, 2)])
def test_exact_matches_brute_force_over_permutations(shape, p, seed):
    """The symmetry-reduced enumeration finds the optimum over all R! x N! orders."""
    W = np.random.default_rng(seed).standard_normal(shape)
    r = pd.solve(pd.PermDiagProblem.from_weights(W, p), "exact", Options(time_limit=10))
    assert r.status == "optimal"
    assert r.kept == pytest.approx(brute_permuted(W ** 2, p))
    assert r.kept == pytest.approx(pd.kept_energy(W ** 2, p, r.row_order, r.col_order)[1])


@pytest.mark.parametrize("solver", sorted(pd.SOLVERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_every_solver_valid_and_not_worse_than_unpermuted(solver, seed):
    """Each solver returns permutations keeping >= the unpermuted projection and <= the bound."""
    W = np.random.default_rng(seed).standard_normal((4, 8))
    r = pd.solve(pd.PermDiagProblem.from_weights(W, 4), solver, Options(time_limit=2, seed=seed))
    assert np.array_equal(np.sort(r.row_order), np.arange(4))
    assert np.array_equal(np.sort(r.col_order), np.arange(8))
    assert r.identity_kept - 1e-9 <= r.kept <= r.upper_bound + 1e-9
    assert r.kept == pytest.approx(pd.kept_energy(W ** 2, 4, r.row_order, r.col_order)[1])


def test_assign_improves_random_and_is_deterministic():
    """On a random 16x16, p=4 matrix the search gains energy, and the same seed repeats."""
    W = np.random.default_rng(5).standard_normal((16, 16))
    problem = pd.PermDiagProblem.from_weights(W, 4)
    a = pd.solve(problem, "assign", Options(time_limit=10, seed=3))
    b = pd.solve(problem, "assign", Options(time_limit=10, seed=3))
    assert a.kept > a.identity_kept
    assert np.array_equal(a.row_order, b.row_order) and np.array_equal(a.col_order, b.col_order)


def test_assign_recovers_small_planted_structure():
    """A hidden 8x8, p=2 permuted-diagonal matrix is found with all its energy."""
    rng = np.random.default_rng(0)
    W = np.zeros((8, 8))
    for i in range(4):
        for j in range(4):
            k = rng.integers(2)
            for c in range(2):
                W[2 * i + c, 2 * j + (c + k) % 2] = 1 + rng.random()
    W = W[rng.permutation(8)][:, rng.permutation(8)]
    r = pd.solve(pd.PermDiagProblem.from_weights(W, 2), "assign", Options(time_limit=10))
    assert r.kept == pytest.approx(r.total)
    assert r.status == "optimal"


def test_upper_bound_is_min_of_row_and_column_bounds():
    """Rows keep N/p and columns R/p entries: a hand-checked bound."""
    W = np.array([[3.0, 0, 0, 0], [2.0, 0, 0, 0]])
    # rows: each keeps top 2 -> 9 + 4; columns: each keeps top 1 -> 9.
    assert pd.upper_bound(pd.PermDiagProblem.from_weights(W, 2)) == 9.0


def test_bad_inputs_raise_one_line_errors():
    """p < 1, shapes not divisible by p, unknown solvers and oversize exact runs are refused."""
    with pytest.raises(ProblemError, match="p >= 1"):
        pd.PermDiagProblem.from_weights(np.ones((2, 2)), 0)
    with pytest.raises(ProblemError, match="not a multiple of p=2"):
        pd.PermDiagProblem.from_weights(np.ones((3, 2)), 2)
    problem = pd.PermDiagProblem.from_weights(np.ones((4, 4)), 2)
    with pytest.raises(ProblemError, match="allowed: assign, auto, exact, identity"):
        pd.solve(problem, "nope")
    with pytest.raises(ProblemError, match="use solver 'assign'"):
        pd.solve(pd.PermDiagProblem.from_weights(np.ones((16, 16)), 4), "exact")


def test_assign_same_seed_same_answer_when_the_budget_binds():
    """A time limit far below what the kicks would use: the work budget derived from it,
    not the clock, ends the search, so two runs give the same orders."""
    E = np.random.default_rng(3).standard_normal((256, 256)) ** 2
    problem = pd.PermDiagProblem(E, 8)
    # On a fresh install the first call compiles and loads, which a short limit would cut.
    pd.solve(pd.PermDiagProblem(E[:16, :16], 8), "assign", Options(time_limit=60.0))
    opts = Options(time_limit=0.5, seed=1)
    a, b = pd.solve(problem, "assign", opts), pd.solve(problem, "assign", opts)
    assert np.array_equal(a.row_order, b.row_order) and np.array_equal(a.col_order, b.col_order)
    assert a.stopped_by == "budget" and not a.interrupted
