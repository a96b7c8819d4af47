"""The solver contract: no hidden state, one result base, plugins, parameters, limits at the front door."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import solvers
from solvers import Budget, CombineProblem, GroupProblem, InvalidSolution, Options, Outcome, ProblemError
from solvers import combine, group, permdiag, patterns
from solvers.budget import OPS_PER_SECOND
from solvers.registry import Solver, load_solver, register


def _mask(seed: int = 0, R: int = 64, N: int = 128, density: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((R, N)) < density


def _summary(result) -> tuple:
    return (result.num_groups, result.lower_bound, result.status, result.labels.tobytes(),
            result.bound_kind, result.stopped_by)


def test_results_do_not_depend_on_which_solvers_ran_before():
    """The issue's instance: ffd's bound is the same run first or after auto, for every solver order."""
    for seed in (0, 1):
        first = CombineProblem.from_weights(_mask(seed), alpha=16)
        second = CombineProblem.from_weights(_mask(seed), alpha=16)
        names = ["ffd", "auto", "dsatur", "cpsat", "tabu"]
        options = Options(time_limit=2.0, seed=3)
        forward = {n: _summary(combine.solve(first, n, options)) for n in names}
        backward = {n: _summary(combine.solve(second, n, options)) for n in reversed(names)}
        assert forward == backward
        # and on one problem object run twice through the whole list
        again = {n: _summary(combine.solve(first, n, options)) for n in names}
        assert again == forward


def test_p2_results_do_not_depend_on_call_history():
    """Every P2 solver gives the same order whether run before or after the others."""
    W = np.abs(np.random.default_rng(2).standard_normal((16, 32)))
    names = ["auto", "lns", "anneal", "tabu", "apex-swap", "cpsat"]
    options = Options(time_limit=1.0, seed=5)
    a = {n: group.solve(GroupProblem.from_weights(W, 4, 2), n, options).order.tolist() for n in names}
    b = {n: group.solve(GroupProblem.from_weights(W, 4, 2), n, options).order.tolist() for n in reversed(names)}
    assert a == b


def test_every_result_exports_one_row_with_the_shared_fields():
    """P1, P2, PermDNN and PCNN results share objective/bound/sense/gap/status fields and as_row()."""
    p1 = combine.solve(CombineProblem.from_weights(_mask(R=16, N=32), alpha=4), "ffd")
    p2 = group.solve(GroupProblem.from_weights(np.arange(1.0, 33.0).reshape(4, 8), 4, 2), "lns")
    pd = permdiag.solve(permdiag.PermDiagProblem.from_weights(np.arange(16.0).reshape(4, 4), 2), "assign")
    pc = patterns.select_patterns(np.random.default_rng(0).random((20, 9)), n=3, K=2)
    shared = {"solver", "status", "objective", "bound", "bound_kind", "sense", "gap", "seconds", "iterations",
              "ops", "stopped_by", "interrupted", "fallback"}
    for result, sense in ((p1, "min"), (p2, "max"), (pd, "max"), (pc, "max")):
        row = result.as_row()
        assert shared <= set(row)
        assert row["sense"] == sense and row["objective"] == pytest.approx(result.objective)
        assert all(isinstance(v, (int, float, str, bool)) for v in row.values())
        if sense == "min":
            assert result.objective >= result.bound
        else:
            assert result.objective <= result.bound + 1e-9
    assert p1.num_groups == p1.objective and p1.lower_bound == p1.bound
    assert p2.kept == p2.objective and p2.upper_bound == p2.bound and p2.as_row()["efficacy"] == p2.efficacy
    assert pd.kept == pd.objective and pc.value == pc.objective


def test_keep_masks_are_the_surviving_nonzeros():
    """P1 keep_mask = nonzeros minus conflict-pruned ones; P2 keep_mask keeps n per (row, group) cell."""
    W = np.random.default_rng(4).standard_normal((12, 24)) * _mask(4, 12, 24, 0.4)
    p1 = combine.solve(CombineProblem.from_weights(W, alpha=4, gamma=0.2), "ffd")
    assert np.array_equal(p1.keep_mask, (W != 0) & ~p1.pruned)
    p2 = group.solve(GroupProblem.from_weights(W, 4, 2), "lns")
    kept = np.abs(W)[p2.keep_mask].sum()
    assert kept == pytest.approx(p2.kept)
    per_cell = p2.keep_mask[:, p2.order].reshape(12, 6, 4).sum(axis=2)
    assert per_cell.max() <= 2


def _one_per_column(problem, options, budget):
    """Every nonempty column alone (a valid, poor P1 answer)."""
    labels = np.full(problem.shape[1], -1, dtype=np.int64)
    labels[problem.nonempty] = np.arange(problem.nonempty.size)
    budget.spend(1.0)
    return Outcome(labels, iterations=1)


def test_a_registered_plugin_runs_through_the_checked_front_door():
    """register() adds a solver; solve() checks its answer and reports it under its name."""
    table = dict(combine.SOLVERS)
    spec = register(table, Solver("singletons", _one_per_column, "every column alone"))
    with pytest.raises(ProblemError, match="already registered"):
        register(table, spec)
    problem = CombineProblem.from_weights(_mask(R=8, N=16, density=0.3), alpha=4)
    result = combine.solve(problem, spec)
    assert result.solver == "singletons" and result.num_groups == problem.nonempty.size
    # ops: the solver's own spending plus the bounds' pairwise tests, charged to the same budget
    bound_budget = Budget.start(1.0)
    solvers.combine_lower_bound(problem, bound_budget)
    assert result.ops == 1.0 + bound_budget.spent and result.iterations == 1


def test_a_plugin_that_returns_a_wrong_answer_is_caught():
    """An answer that breaks the rules raises InvalidSolution, never passes as a result."""
    def everything_in_one(problem, options, budget):
        return Outcome(np.where(problem.mask.any(axis=0), 0, -1))

    problem = CombineProblem.from_weights(np.eye(3) + np.eye(3, k=1), alpha=2)
    with pytest.raises(InvalidSolution):
        combine.solve(problem, everything_in_one)


def test_unsupported_problems_get_the_solvers_own_reason():
    """supports() decides, before any work: matching on k = 4 says why, as a one-line error."""
    problem = GroupProblem.from_weights(np.ones((4, 8)), 4, 2)
    assert not group.SOLVERS["matching"].supports(problem)
    with pytest.raises(ProblemError, match="matching solves k=2 only"):
        group.solve(problem, "matching")
    assert group.SOLVERS["lns"].supports(problem)


def test_module_and_file_solvers_load_by_name(tmp_path, monkeypatch):
    """'module:function' and 'file.py:function' give the user's solver; bad specs are one-line errors."""
    code = textwrap.dedent('''
        import numpy as np
        from solvers import Outcome

        def singletons(problem, options):
            """every column alone"""
            labels = np.full(problem.shape[1], -1, dtype=np.int64)
            labels[problem.nonempty] = np.arange(problem.nonempty.size)
            return Outcome(labels)
    ''')
    (tmp_path / "my_solvers.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = CombineProblem.from_weights(_mask(R=8, N=16, density=0.3), alpha=4)
    by_module = combine.solve(problem, "my_solvers:singletons")
    by_file = combine.solve(problem, f"{tmp_path / 'my_solvers.py'}:singletons")
    assert by_module.solver == by_file.solver == "singletons"
    assert by_module.num_groups == by_file.num_groups == problem.nonempty.size
    assert load_solver("my_solvers:singletons").summary == "every column alone"
    for bad, message in (("my_solvers:nope", "has no attribute"), ("no_such_module_xyz:f", "cannot import"),
                         (f"{tmp_path / 'missing.py'}:f", "does not exist")):
        with pytest.raises(ProblemError, match=message):
            combine.solve(problem, bad)
    sys.modules.pop("my_solvers", None)


def test_solver_parameters_reach_the_solver_and_are_checked():
    """params={'tabu': {...}} changes what tabu does; unknown names and wrong types are one-line errors."""
    problem = CombineProblem.from_weights(_mask(1, 32, 64, 0.15), alpha=8)
    frozen = combine.solve(problem, "tabu", Options(time_limit=2.0, params={"tabu": {"base_iters": 0,
                                                                                  "per_column": 0}}))
    assert frozen.iterations == 0
    free = combine.solve(problem, "tabu", Options(time_limit=2.0))
    assert free.iterations > 0
    # the portfolio's tabu stage reads the same parameters
    auto = combine.solve(problem, "auto", Options(time_limit=2.0, params={"tabu": {"base_iters": 0,
                                                                                "per_column": 0}}))
    assert auto.num_groups >= auto.lower_bound
    for params, message in (({"tabu": {"tenure": 3}}, "unknown parameter tabu.tenure"),
                            ({"tabu": {"base_iters": 1.5}}, "Expected int for TabuParams.base_iters"),
                            ({"nosuch": {"x": 1}}, "unknown solver 'nosuch'"),
                            ({"ffd": {"x": 1}}, "takes no parameters")):
        with pytest.raises(ProblemError, match=message):
            combine.solve(problem, "tabu", Options(params=params))


def test_extreme_parameters_are_one_line_errors_or_mean_the_limit():
    """alpha beyond N means N; a huge gamma means any group; bad limits and seeds are refused."""
    mask = _mask(R=8, N=16, density=0.3)
    huge = CombineProblem.from_weights(mask, alpha=10 ** 9, gamma=1e300)
    assert huge.alpha == 16 and huge.budget == 8 * 15
    assert combine.solve(huge, "ffd").num_groups == 1
    for kwargs, message in (({"time_limit": True}, "time_limit"), ({"time_limit": 1e300}, "time_limit <="),
                            ({"time_limit": float("nan")}, "time_limit"), ({"seed": 2 ** 64}, "seed <="),
                            ({"seed": -1}, "seed >= 0")):
        with pytest.raises(ProblemError, match=message):
            Options(**kwargs)


@pytest.mark.parametrize("name", ["tabu", "apex-swap", "apex-window2", "anneal", "lns", "auto", "cpsat"])
def test_a_single_group_is_answered_without_search(name):
    """N = k: every order is the same grouping, returned as optimal by every solver."""
    problem = GroupProblem.from_weights(np.random.default_rng(0).random((5, 4)), 4, 2)
    result = group.solve(problem, name)
    assert result.status == "optimal" and sorted(result.order.tolist()) == [0, 1, 2, 3]


def test_the_budget_is_one_object_for_searches_and_cpsat():
    """A share charged back counts against its parent; CP-SAT's deterministic time is charged in operations."""
    budget = Budget.start(1.0)
    stage = budget.share(0.5)
    stage.spend(10.0)
    budget.charge(stage)
    assert budget.spent == 10.0 and stage.ops == pytest.approx(0.5 * OPS_PER_SECOND - 10.0)
    problem = CombineProblem.from_weights(_mask(R=16, N=24, density=0.3), alpha=4)
    result = combine.solve(problem, "cpsat", Options(time_limit=1.0))
    assert result.ops > 0


def test_solvers_package_exports_the_contract():
    """The names solver people use are importable from the package."""
    for name in ("Budget", "Result", "Solver", "register", "load_solver", "efficacy", "kept_mask"):
        assert hasattr(solvers, name)
