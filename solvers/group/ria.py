"""P2 grouping by RIA's channel reallocation: sort by score, deal into groups, refine by assignment.

Problem: order the N columns (input channels) so that each run of k keeps its
top n per row, maximising the kept score (:class:`~solvers.problem.GroupProblem`;
the magnitudes are whatever score the caller gives, e.g. RIA's relative
importance or |W| * ||X_j||).

Method (after RIA's channel permutation for N:M sparsity):

1. deal: columns sorted by their total score, heaviest first (ties by index),
   the t-th going to group t mod G, so every group takes one column from each
   of the k score tiers and heavy (outlier) channels never share a group;
2. refine: sweeps over the k slots; in a sweep, for slot p and each block of
   at most :data:`~solvers.group.lns.BLOCK_GROUPS` groups (a seeded random
   split of the groups, all of them when G is small), the block's columns in
   slot p are put back one per group by a maximum-weight linear sum assignment
   whose weight [i, g] is group g's kept score with column i in the slot
   (:func:`solvers.group.lns.assignment_move`; keeping every column in place
   is one assignment, so no move loses). Sweeps stop when one gains nothing,
   or when the work budget (:mod:`solvers.budget`) cannot pay for the next
   move: same seed, same answer.

Deal and refinement are RIA's; the blocks are ours, so one move costs
O(B^2 R) rather than O(G^2 R) on LLM-wide layers.

Reference: Y. Zhang, H. Bai, H. Lin, J. Zhao, L. Hou, C. V. Cannistraci,
"Plug-and-Play: An Efficient Post-training Pruning Method for Large Language
Models", ICLR 2024 (relative importance and activations, RIA; channel
permutation by sorting, allocation and linear sum assignment); the assignment
by OR-Tools' SimpleLinearSumAssignment.
"""

from __future__ import annotations

import numpy as np

from ..budget import Budget
from ..problem import GroupProblem, Options, Outcome
from ..registry import Solver
from .lns import AssignmentState, move_ops

__all__ = ["SOLVER", "deal", "ria", "refine"]


def deal(problem: GroupProblem) -> np.ndarray:
    """The column order that deals columns, heaviest total score first, round-robin into the G groups."""
    k, G = problem.k, problem.num_groups
    ranked = np.argsort(-problem.magnitude.sum(axis=0), kind="stable")
    # ranked[t] goes to group t % G, slot t // G: position (t % G) * k + t // G
    t = np.arange(ranked.size)
    order = np.empty_like(ranked)
    order[(t % G) * k + t // G] = ranked
    return order.astype(np.int64)


def refine(problem: GroupProblem, order: np.ndarray, seed: int, budget: Budget) -> Outcome:
    """Slot-by-slot assignment sweeps from ``order``; never worse than ``order``."""
    st = AssignmentState(problem, order)
    k, G, B, tol = st.k, st.G, st.block, st.tol
    rng = np.random.default_rng(seed)
    sweeps = moves = improved = 0
    interrupted = stop = False
    try:
        while not stop:
            gained = 0.0
            for slot in range(k):
                groups = rng.permutation(G) if B < G else np.arange(G)
                for lo in range(0, G, B):
                    block = np.sort(groups[lo:lo + B])
                    cost = move_ops(problem, block.size)
                    if budget.ops < cost or budget.time_up:
                        stop = True
                        break
                    gain = st.move(block * k + slot)
                    budget.spend(cost)
                    moves += 1
                    if gain > tol:
                        improved += 1
                        gained += gain
                if stop:
                    break
            sweeps += 1
            stop = stop or gained <= tol
    except KeyboardInterrupt:
        interrupted = True
    if not interrupted and budget.ops < move_ops(problem, B):
        budget.use_up()
    return Outcome(st.order, iterations=moves, interrupted=interrupted,
                   stats={"method": "RIA: sort, deal, linear-sum-assignment sweeps", "sweeps": sweeps,
                          "block_groups": B, "improving_moves": improved})


def ria(problem: GroupProblem, seed: int, budget: Budget) -> Outcome:
    """Deal the columns by score, then refine by assignment sweeps."""
    return refine(problem, deal(problem), seed, budget)


def _run(problem: GroupProblem, options: Options, budget: Budget) -> Outcome:
    """RIA from its own deal (a hint is not used: the portfolio compares the two)."""
    return ria(problem, options.seed, budget)


SOLVER = Solver("ria", _run, "RIA channel reallocation: sort by score, deal into groups, assignment sweeps")
