"""The exact optimum of a jaxgrid env: finite-horizon value iteration on its tabular MDP.

``optimal_return(env, params)`` answers "how good can any policy be here?", so a trained agent's
score can be read as a fraction of the optimum:

- **fixed layouts** (``GridWorld``): value iteration over (cell, steps left) on the env's own
  transition table, slip included, time limit included, the env's own rewards; the expected
  return and the success probability are averaged over the env's start distribution;
- **procedural envs** (``ProceduralGridWorld``): the same on one state's layout (``state=``), or the
  mean over ``num_layouts`` layouts drawn by the env's own ``reset``. On a deterministic layout the
  value iteration is the breadth-first shortest path: ``(d - 1) * step_reward + goal_reward``
  for a goal ``d <= steps left`` moves away (the tests check it against a plain BFS).

The tabular MDP is read off the env itself, never re-implemented: every (cell, action) pair is
stepped once through ``env.step_env`` with the slip switched off, which gives the next cell, the
reward and ``terminated``; a slippery env's outcomes are the intended action with probability
``1 - slip_prob`` and each 90-degree turn with ``slip_prob / 2``, the rule ``GridWorld.step_env``
samples (checked against the env's empirical frequencies in the tests).

Success: an episode succeeds when it terminates by entering a goal cell (kind ``GOAL``) within the
time limit. On FrozenLake that is the return itself; on CliffWalking (goal reward -1) it is
reaching the goal at all. The success probability reported is that of the return-optimal policy
(ties between equally good actions go to the one more likely to succeed).

Undiscounted throughout: the optimum is of the sum of rewards of one episode, the quantity that
evaluation reports. Computed on the host in float64 (NumPy), so the returns are exact up to the
float32 rewards the env itself pays (``-0.04`` is ``-0.03999999910593033`` in float32).

Sources: Bellman (1957) finite-horizon dynamic programming; Sutton & Barto (2018), section 4.4.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrid.env import GridWorld
from jaxgrid.procedural import ProceduralGridWorld
from jaxgrid.types import GOAL, GridState

# An env whose time limit exceeds this is treated as having none (CliffWalking's 2**31 - 1):
# value iteration then runs until the values stop changing instead of for every step.
MAX_ITERATIONS = 200_000
# Value iteration stops early once no value moves by more than this (absolute, float64).
TOLERANCE = 1e-12
# Actions within this (relative) of the best count as ties when the success probability is
# read off: float32 rewards and slip odds move values by ~1e-7 relative.
TIE = 1e-6
# Layouts per chunk when a batch of procedural states is tabulated (bounds device memory).
CHUNK = 128


@dataclass(frozen=True)
class TabularMDP:
    """A batch of ``B`` tabular MDPs over ``n`` cells, ``A`` actions and ``K`` outcomes per action.

    Attributes:
        next_cell: [B, n, A, K] int64, the cell an outcome lands in.
        prob: [B, n, A, K] float64, outcome probabilities (sum to 1 over K).
        reward: [B, n, A, K] float64, the env's reward of the outcome.
        terminated: [B, n, A, K] bool, the outcome ends the episode (goal, terminating lava).
        goal: [B, n, A, K] bool, the outcome enters a goal cell (a success).
        start_prob: [B, n] float64, where the episode starts (or the given state's cell).
        horizon: [B] int64, steps left from the start (the time limit minus the time used).
    """

    next_cell: np.ndarray
    prob: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    goal: np.ndarray
    start_prob: np.ndarray
    horizon: np.ndarray


@dataclass(frozen=True)
class OptimalReturn:
    """The optimum of an env (or of a batch of states / layouts).

    Attributes:
        expected_return: mean over the batch of the optimal expected undiscounted return.
        success_prob: mean over the batch of the optimal policy's probability of reaching a goal.
        returns: [B] float64, per state / layout (``B = 1`` for a fixed layout's start distribution).
        successes: [B] float64, per state / layout.
        horizon: the largest number of steps left that was solved for.
        iterations: value-iteration sweeps run (fewer than ``horizon`` when the values converged).
    """

    expected_return: float
    success_prob: float
    returns: np.ndarray
    successes: np.ndarray
    horizon: int
    iterations: int

    @property
    def stderr(self) -> float:
        """Standard error of ``expected_return`` as a mean over sampled layouts (0 for one)."""
        n = len(self.returns)
        return float(self.returns.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0


def is_deterministic(env: Any, params: Any = None) -> bool:
    """Whether every episode of ``env`` under a fixed action sequence is the same: a jaxgrid
    ``GridWorld`` with one start cell, a fixed layout and no slip (``slip_prob == 0`` counts as
    no slip). Other envs (procedural layouts, gymnax envs) are treated as stochastic."""
    if not isinstance(env, GridWorld) or isinstance(env, ProceduralGridWorld) or env.random_start:
        return False
    if not env.slippery:
        return True
    params = env.default_params if params is None else params
    return float(params.slip_prob) == 0.0


def _check_env(env: Any) -> None:
    if not isinstance(env, GridWorld):
        raise ValueError(
            f"optimal_return needs a jaxgrid grid env (GridWorld or ProceduralGridWorld), got "
            f"{type(env).__name__}: other envs have no tabular MDP to solve"
        )
    if env.num_actions != 4:
        raise ValueError(f"optimal_return supports 4 actions (the slip turns by 90 degrees), got {env.num_actions}")


def _outcome_actions(env: GridWorld, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(actions [A, K], probs [K])``: the actions a slippery move may turn into and their odds."""
    actions = np.arange(env.num_actions)
    if not env.slippery:
        return actions[:, None], np.ones(1)
    slip = float(params.slip_prob)
    # GridWorld.step_env: with probability slip_prob the action turns by +1 or +3 (mod 4), evenly.
    turned = np.stack([actions, (actions + 1) % 4, (actions + 3) % 4], axis=1)
    return turned, np.array([1.0 - slip, slip / 2, slip / 2])


@functools.lru_cache(maxsize=16)
def _tabulate_fn(env: GridWorld):
    """A jitted ``(states [B], params, actions [A, K]) -> (next [B, n, A, K], reward, terminated,
    goal)``: every cell and outcome action of every state's layout stepped once by ``step_env``."""
    n = env.height * env.width

    def one(state, params, cell, action):
        state = state.replace(pos=jnp.int32(cell), time=jnp.int32(0))
        _, after, reward, terminated, _ = env.step_env(jax.random.PRNGKey(0), state, action, params)
        goal = env.cell_kinds(after, params)[after.pos] == GOAL
        # NOTE: a terminating step does not move pos back, so the landing cell is the true one;
        # a non-terminating lava cell returns pos to the start, which is what the chain needs.
        return after.pos, reward, terminated, goal & terminated

    def per_state(state, params, actions):
        cells = jnp.arange(n, dtype=jnp.int32)
        fn = jax.vmap(jax.vmap(jax.vmap(one, (None, None, None, 0)), (None, None, None, 0)), (None, None, 0, None))
        return fn(state, params, cells, actions)

    return jax.jit(jax.vmap(per_state, in_axes=(0, None, None)))


def tabulate(env: GridWorld, params: Any = None, states: Any = None) -> TabularMDP:
    """The tabular MDP of ``env`` under ``params``, read off ``env.step_env``.

    Args:
        env: a jaxgrid ``GridWorld`` or ``ProceduralGridWorld``.
        params: its params (default: ``env.default_params``).
        states: optional batch of states (leaves ``[B, ...]``, e.g. from ``vmap(env.reset)``): one
            MDP per state, on that state's layout, starting in its cell with
            ``max_steps_in_episode - state.time`` steps left. Without it: one MDP from the env's
            start distribution (fixed layouts only).

    Raises:
        ValueError: not a jaxgrid grid env, or a procedural env without ``states``.
    """
    _check_env(env)
    params = env.default_params if params is None else params
    n = env.height * env.width
    procedural = isinstance(env, ProceduralGridWorld)
    if states is None:
        if procedural:
            raise ValueError(
                f"{env.name} draws a new layout at every reset: pass states= (a batch of reset "
                "states) to solve their layouts, or use optimal_return(env, params, num_layouts=N)"
            )
        states = GridState(time=jnp.zeros((1,), jnp.int32), pos=jnp.zeros((1,), jnp.int32))
        logits = np.asarray(params.start_logits, np.float64)
        start = np.exp(logits - logits.max())
        start_prob = (start / start.sum())[None]
        horizon = np.array([int(params.max_steps_in_episode)], np.int64)
    else:
        pos = np.asarray(states.pos).reshape(-1)
        start_prob = np.zeros((len(pos), n))
        start_prob[np.arange(len(pos)), pos] = 1.0
        horizon = int(params.max_steps_in_episode) - np.asarray(states.time, np.int64).reshape(-1)
        if np.any(horizon < 0):
            raise ValueError("a state's time exceeds max_steps_in_episode")
    det_params = params.replace(slip_prob=jnp.float32(0.0)) if env.slippery else params
    actions, probs = _outcome_actions(env, params)
    fn = _tabulate_fn(env)
    batch = int(start_prob.shape[0])
    parts = []
    for lo in range(0, batch, CHUNK):
        chunk = jax.tree.map(lambda x: x[lo: lo + CHUNK], states)
        parts.append([np.asarray(x) for x in fn(chunk, det_params, jnp.asarray(actions, jnp.int32))])
    next_cell, reward, terminated, goal = (np.concatenate(p) for p in zip(*parts))
    prob = np.broadcast_to(probs, next_cell.shape).astype(np.float64)
    return TabularMDP(
        next_cell=next_cell.astype(np.int64),
        prob=prob,
        reward=reward.astype(np.float64),
        terminated=terminated.astype(bool),
        goal=goal.astype(bool),
        start_prob=start_prob,
        horizon=horizon,
    )


def solve(mdp: TabularMDP, max_iterations: int = MAX_ITERATIONS, tolerance: float = TOLERANCE) -> OptimalReturn:
    """Finite-horizon value iteration: ``V_k(s) = max_a E[r + (1 - terminated) V_{k-1}(s')]``,
    ``V_0 = 0``, solved for ``k = horizon`` steps left (each batch entry its own horizon).

    Stops early once a sweep changes no value by more than ``tolerance``: the values are then
    (within it) those of every longer horizon, which is how an env without a time limit
    (CliffWalking) is solved.

    Raises:
        ValueError: the values still change after ``max_iterations`` sweeps while some horizon is
            longer (an env without a time limit on which no policy can end the episode).
    """
    batch, n = mdp.start_prob.shape
    horizon = mdp.horizon
    value = np.zeros((batch, n))
    success = np.zeros((batch, n))
    rows = np.arange(batch)[:, None, None, None]
    cont = ~mdp.terminated
    out_value = np.where(horizon == 0, 0.0, np.nan)
    out_success = np.where(horizon == 0, 0.0, np.nan)
    longest = int(horizon.max())
    k = 0
    while k < longest:
        k += 1
        q = (mdp.prob * (mdp.reward + cont * value[rows, mdp.next_cell])).sum(-1)  # [B, n, A]
        qs = (mdp.prob * (mdp.goal + cont * success[rows, mdp.next_cell])).sum(-1)
        best = q.max(-1, keepdims=True)
        # Among the (numerically) best actions, the one most likely to succeed.
        near = q >= best - TIE * (1.0 + np.abs(best))
        new_success = np.where(near, qs, -np.inf).max(-1)
        new_value = best[..., 0]
        delta = max(np.abs(new_value - value).max(), np.abs(new_success - success).max())
        value, success = new_value, new_success
        hit = horizon == k
        out_value = np.where(hit, (mdp.start_prob * value).sum(-1), out_value)
        out_success = np.where(hit, (mdp.start_prob * success).sum(-1), out_success)
        if delta <= tolerance:
            left = np.isnan(out_value)
            out_value = np.where(left, (mdp.start_prob * value).sum(-1), out_value)
            out_success = np.where(left, (mdp.start_prob * success).sum(-1), out_success)
            break
        if k >= max_iterations:
            raise ValueError(
                f"value iteration did not converge in {max_iterations} sweeps (change {delta:.3g}) "
                f"and the horizon is {longest} steps: the env has no usable time limit; pass "
                "params with a finite max_steps_in_episode"
            )
    return OptimalReturn(
        expected_return=float(out_value.mean()),
        success_prob=float(out_success.mean()),
        returns=out_value,
        successes=out_success,
        horizon=longest,
        iterations=k,
    )


def optimal_return(
    env: Any,
    params: Any = None,
    state: Any = None,
    num_layouts: int = 1000,
    key: jax.Array | None = None,
) -> OptimalReturn:
    """The optimal expected undiscounted return (and success probability) of a jaxgrid env.

    Args:
        env: a jaxgrid grid env (``jaxgrid.make(id)[0]``).
        params: its params (default ``env.default_params``); the slip, time limit and rewards used.
        state: optional state (leaves ``[...]`` or batched ``[B, ...]``): the optimum from that
            state (its layout, cell and steps left) instead of from a fresh reset.
        num_layouts: procedural envs without ``state``: layouts drawn with ``env.reset`` whose
            optima are averaged (``OptimalReturn.stderr`` is the mean's standard error).
        key: key of those draws (default ``jax.random.PRNGKey(0)``).

    Returns:
        An ``OptimalReturn``. Examples: ``GridWorld-4x4-v0``: return 0.8, success 1;
        ``CliffWalking-v1``: -13; ``FrozenLake-v1`` (slippery): return = success ~0.744.

    Raises:
        ValueError: not a jaxgrid grid env (e.g. a gymnax env), ``num_layouts < 1``, or no time
            limit and no policy that ends the episode.
    """
    _check_env(env)
    params = env.default_params if params is None else params
    if state is None and isinstance(env, ProceduralGridWorld):
        if isinstance(num_layouts, bool) or not isinstance(num_layouts, int) or num_layouts < 1:
            raise ValueError(f"num_layouts must be a positive int, got {num_layouts!r}")
        key = jax.random.PRNGKey(0) if key is None else key
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_layouts), params)
    elif state is not None and jnp.ndim(state.pos) == 0:
        state = jax.tree.map(lambda x: jnp.asarray(x)[None], state)
    return solve(tabulate(env, params, state))
