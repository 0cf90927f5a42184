"""Collecting rollouts from batched gymnax envs (``jaxgrid.VecEnv``), and greedy evaluation episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import jax
import jax.numpy as jnp
from flax import struct

from jaxgrid import VecEnv
from train import networks

# apply_fn(params, obs [B, ...]) -> (policy_out [B, A], value [B])
ApplyFn = Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
# A policy with memory (``run_eval_episodes``' ``memory``): apply_fn(params, obs [B, ...],
# memory (leaves [B, ...]), episode_start [B] bool) -> (policy_out [B, A], memory after the step)
StatefulApplyFn = Callable[[Any, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


@dataclass(frozen=True)
class EnvSpec:
    """What the trainer needs to know about an env; all static (closed over, never traced)."""

    env: Any
    env_params: Any
    discrete_actions: bool
    action_dim: int  # n for Discrete(n), else the flat size of the Box
    action_low: Any  # Box bounds as numpy arrays (None for Discrete)
    action_high: Any
    obs_kind: str  # "discrete" | "vector" | "image"
    num_obs_categories: int  # n of a Discrete observation space, else 0
    max_episode_steps: int  # evaluation horizon (the env's time limit)


def describe_env(env: Any, env_params: Any) -> EnvSpec:
    """Inspects the action/observation spaces of a gymnax env."""
    from jaxgrid.gymnax_base import spaces  # gymnax's spaces without its package import

    act_space = env.action_space(env_params)
    obs_space = env.observation_space(env_params)
    if isinstance(act_space, spaces.Discrete):
        discrete, action_dim, low, high = True, int(act_space.n), None, None
    elif isinstance(act_space, spaces.Box):
        shape = tuple(act_space.shape)
        discrete, action_dim = False, max(1, math.prod(shape))
        low = np.broadcast_to(np.asarray(act_space.low, np.float32), shape)
        high = np.broadcast_to(np.asarray(act_space.high, np.float32), shape)
    else:
        raise ValueError(f"unsupported action space {act_space!r}: need Discrete or Box")
    if isinstance(obs_space, spaces.Discrete):
        obs_kind, n_cat = "discrete", int(obs_space.n)
    elif isinstance(obs_space, spaces.Box):
        obs_kind = "image" if len(obs_space.shape) >= 3 else "vector"
        n_cat = 0
    else:
        raise ValueError(f"unsupported observation space {obs_space!r}: need Discrete or Box")
    max_steps = int(getattr(env_params, "max_steps_in_episode", 1000))
    return EnvSpec(env, env_params, discrete, action_dim, low, high, obs_kind, n_cat, max_steps)


@struct.dataclass
class EnvCarry:
    """Per-seed env state carried between rollouts (``N`` = num_envs)."""

    env_state: Any  # gymnax state pytree, leaves [N, ...]
    obs: jax.Array  # [N, *obs_shape] current observation
    episode_return: jax.Array  # [N] float32, return so far of the running episode
    episode_length: jax.Array  # [N] int32, steps so far of the running episode


@struct.dataclass
class Trajectory:
    """One rollout, every leaf ``[T, N, ...]``."""

    obs: jax.Array  # s_t
    action: jax.Array  # a_t
    log_prob: jax.Array  # log π_old(a_t | s_t)
    value: jax.Array  # V_old(s_t)
    reward: jax.Array  # r_t, float32
    terminated: jax.Array  # bool
    done: jax.Array  # bool, terminated | truncated
    next_obs: jax.Array  # the true s'_t (info["final_observation"])


@struct.dataclass
class EpisodeStats:
    """Episodes that ended during one rollout (sums, so they can be averaged later)."""

    return_sum: jax.Array  # () float32
    length_sum: jax.Array  # () float32
    count: jax.Array  # () float32


def env_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """The action the env receives: Box actions ``[N, A]`` are reshaped to the space's shape
    and clipped to its bounds (the unclipped sample is what the log-probability is taken of)."""
    if spec.discrete_actions:
        return action
    action = action.reshape(action.shape[:1] + tuple(jnp.shape(spec.action_low)))
    return jnp.clip(action, spec.action_low, spec.action_high)


def reset_envs(keys: jax.Array, spec: EnvSpec) -> EnvCarry:
    """Resets one env per key (``keys`` ``[N]``)."""
    num_envs = keys.shape[0]
    obs, env_state = vec_env(spec, num_envs).reset_each(keys, spec.env_params)
    return EnvCarry(
        env_state=env_state,
        obs=obs,
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
    )


def vec_env(spec: EnvSpec, num_envs: int) -> VecEnv:
    """The batched env the rollout steps: ``jaxgrid.VecEnv``, bitwise ``vmap(env.step)`` but with
    a reset computed only for the envs whose episode ended (procedural envs)."""
    return VecEnv(spec.env, num_envs)


def _step_envs(keys: jax.Array, spec: EnvSpec, carry: EnvCarry, action: jax.Array):
    """One step of every env with its own key (``keys`` ``[N]``)."""
    obs, env_state, reward, terminated, truncated, info = vec_env(spec, keys.shape[0]).step_each(
        keys, carry.env_state, env_action(spec, action), spec.env_params
    )
    reward = reward.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated)
    return obs, env_state, reward, terminated, done, info["final_observation"]


def collect_rollout(
    env_keys: jax.Array,
    action_uniforms: jax.Array,
    params: Any,
    apply_fn: ApplyFn,
    spec: EnvSpec,
    carry: EnvCarry,
) -> tuple[EnvCarry, Trajectory, EpisodeStats]:
    """Runs the stochastic policy for ``T`` steps in every env.

    Randomness comes in pre-drawn (NOTE: every random-number site costs XLA compile time, so the
    caller draws a whole update's randomness at once): ``env_keys`` ``[T, N]`` keys for the env
    steps and ``action_uniforms`` ``[T, N, A]`` uniforms in (0, 1) for the action samples.

    Returns the new carry, the ``[T, N]`` trajectory and stats of the episodes that ended.
    """
    log_std = params["params"].get("log_std") if not spec.discrete_actions else None

    def step(state: tuple[EnvCarry, jax.Array], xs: tuple[jax.Array, jax.Array]):
        carry, stats = state
        keys_env, uniforms = xs
        policy_out, value = apply_fn(params, carry.obs)
        action = networks.sample_action_from_uniform(
            uniforms, policy_out, log_std, spec.discrete_actions
        )
        log_prob = networks.log_prob(policy_out, log_std, action, spec.discrete_actions)
        obs, env_state, reward, terminated, done, next_obs = _step_envs(keys_env, spec, carry, action)
        ep_return = carry.episode_return + reward
        ep_length = carry.episode_length + 1
        ended = done.astype(jnp.float32)
        stats = stats + jnp.stack(
            [jnp.sum(ended * ep_return), jnp.sum(ended * ep_length), jnp.sum(ended)]
        )
        new_carry = EnvCarry(
            env_state=env_state,
            obs=obs,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
        )
        # NOTE: every scan output costs a dynamic-update-slice kernel (compile time), so the
        # per-env float scalars travel packed as one [N, 5] array.
        scalars = jnp.stack(
            [log_prob, value, reward, terminated.astype(jnp.float32), ended], axis=-1
        )
        return (new_carry, stats), (carry.obs, action, next_obs, scalars)

    (carry, stats), (obs, action, next_obs, scalars) = jax.lax.scan(
        step, (carry, jnp.zeros((3,), jnp.float32)), (env_keys, action_uniforms)
    )
    trajectory = Trajectory(
        obs=obs,
        action=action,
        log_prob=scalars[..., 0],
        value=scalars[..., 1],
        reward=scalars[..., 2],
        terminated=scalars[..., 3] > 0,
        done=scalars[..., 4] > 0,
        next_obs=next_obs,
    )
    return carry, trajectory, EpisodeStats(return_sum=stats[0], length_sum=stats[1], count=stats[2])


# Evaluation horizon of an env without a usable time limit (one longer than NO_TIME_LIMIT).
NO_TIME_LIMIT = 100_000
EVAL_STEPS_WITHOUT_TIME_LIMIT = 1000
# Episodes that bound the 95% CI half-width of a success rate by 0.03 at any rate:
# ceil((1.96 * 0.5 / 0.03) ** 2) = 1068 (normal approximation, worst case p = 0.5).
SUCCESS_CI_EPISODES = 1068


def eval_max_steps(spec: EnvSpec, requested: int | None = None) -> int:
    """Step cap of an evaluation episode: ``requested`` (``PPOConfig.eval_max_steps``), else the
    env's time limit, else (no limit, longer than ``NO_TIME_LIMIT``) ``EVAL_STEPS_WITHOUT_TIME_LIMIT``."""
    if requested is not None:
        return int(requested)
    if spec.max_episode_steps > NO_TIME_LIMIT:
        return EVAL_STEPS_WITHOUT_TIME_LIMIT
    return spec.max_episode_steps


def is_deterministic_env(spec: EnvSpec) -> bool:
    """Whether ``jaxgrid.is_deterministic`` says so (False for envs jaxgrid does not know)."""
    try:
        import jaxgrid
    except ImportError:
        return False
    check = getattr(jaxgrid, "is_deterministic", None)
    return bool(check(spec.env, spec.env_params)) if check is not None else False


def eval_episode_count(spec: EnvSpec, requested: int | None, num_eval_envs: int) -> int:
    """Evaluation episodes per seed: ``requested`` (``PPOConfig.eval_episodes``), else
    ``num_eval_envs`` on a deterministic env, else ``max(num_eval_envs, SUCCESS_CI_EPISODES)``."""
    if requested is not None:
        return int(requested)
    if is_deterministic_env(spec):
        return int(num_eval_envs)
    return max(int(num_eval_envs), SUCCESS_CI_EPISODES)


def evaluation_budget(config: Any, spec: EnvSpec) -> tuple[int, int]:
    """``(episodes per seed, step cap per episode)`` of ``config``'s evaluation on ``spec``."""
    episodes = eval_episode_count(spec, getattr(config, "eval_episodes", None), config.num_eval_envs)
    return episodes, eval_max_steps(spec, getattr(config, "eval_max_steps", None))


def success_reward(spec: EnvSpec) -> Any:
    """The reward that marks a successful episode end (a jaxgrid env's ``goal_reward``: the step
    into a goal cell, which terminates), or None for envs without a goal."""
    return getattr(spec.env_params, "goal_reward", None)


@struct.dataclass
class EvalEpisodes:
    """The first episode of each of ``N`` fresh envs."""

    returns: jax.Array  # [N] float32, undiscounted return (up to the step cap)
    success: jax.Array  # [N] float32, 1 if it terminated with the goal reward (NaN: env has no goal)
    lengths: jax.Array  # [N] int32, steps taken (the cap if it did not end)


# Length: 72 lines, 14 of them the docstring; the body is one while_loop whose carry holds both the
# feedforward and the memory (recurrent) case, kept together so both policies share one loop.
def run_eval_episodes(
    key: jax.Array,
    params: Any,
    apply_fn: ApplyFn | StatefulApplyFn,
    spec: EnvSpec,
    num_envs: int,
    max_steps: int | None = None,
    greedy: bool | jax.Array = True,
    log_std: jax.Array | None = None,
    memory: Any = None,
) -> EvalEpisodes:
    """Runs the policy (``greedy``: argmax / mean action; else sampled, with ``log_std`` for Box
    actions; a ``[num_envs]`` bool array chooses per env) in ``num_envs`` fresh envs until each
    one's first episode ends, or ``max_steps`` steps (default ``eval_max_steps(spec)``),
    whichever comes first.

    A policy with memory (a recurrent policy) passes its initial state as ``memory`` (a pytree,
    leaves ``[num_envs, ...]``, e.g. the zero GRU state) and an ``apply_fn`` of the
    ``StatefulApplyFn`` form: the state is carried from step to step of each episode and
    ``episode_start`` is True on its first step (the policy resets its state there). Only each
    env's first episode is scored, so the state is never carried across an episode boundary.

    Success (jaxgrid envs): the episode terminated on a step paying ``goal_reward`` (entering a
    goal cell; lava that pays the same and terminates would count too). NaN for other envs.
    """
    horizon = eval_max_steps(spec) if max_steps is None else int(max_steps)
    key_reset, key_run = jax.random.split(key)
    carry = reset_envs(jax.random.split(key_reset, num_envs), spec)
    goal_reward = success_reward(spec)

    def step(state):
        t, carry, returns, success, lengths, finished, memory_t = state
        key_env, key_act = jax.random.split(jax.random.fold_in(key_run, t))
        if memory is None:
            policy_out, _ = apply_fn(params, carry.obs)
        else:
            episode_start = jnp.broadcast_to(t == 0, (num_envs,))
            policy_out, memory_t = apply_fn(params, carry.obs, memory_t, episode_start)
        if isinstance(greedy, bool):
            if greedy:
                action = networks.greedy_action(policy_out, spec.discrete_actions)
            else:
                action = networks.sample_action(key_act, policy_out, log_std, spec.discrete_actions)
        else:  # a per-env mask: both policies in one loop (one compiled body)
            best = networks.greedy_action(policy_out, spec.discrete_actions)
            sampled = networks.sample_action(key_act, policy_out, log_std, spec.discrete_actions)
            mask = greedy.reshape(greedy.shape + (1,) * (best.ndim - 1))
            action = jnp.where(mask, best, sampled)
        obs, env_state, reward, terminated, done, _ = _step_envs(
            jax.random.split(key_env, num_envs), spec, carry, action
        )
        live = ~finished
        returns = returns + jnp.where(live, reward, 0.0)
        lengths = lengths + live.astype(jnp.int32)
        if goal_reward is not None:
            won = live & terminated & (reward == jnp.asarray(goal_reward, jnp.float32))
            success = jnp.where(won, 1.0, success)
        carry = carry.replace(env_state=env_state, obs=obs)
        return t + 1, carry, returns, success, lengths, finished | done, memory_t

    def running(state):
        t, *_, finished, _ = state
        return (t < horizon) & ~jnp.all(finished)

    # NOTE: a while loop, not a scan over the whole horizon: it stops once every episode ended
    # (a solved 4x4 grid takes 6 of its 50 steps); the step cap bounds envs without a time limit.
    zeros = jnp.zeros((num_envs,), jnp.float32)
    success0 = zeros if goal_reward is not None else jnp.full((num_envs,), jnp.nan, jnp.float32)
    init = (jnp.int32(0), carry, zeros, success0, jnp.zeros((num_envs,), jnp.int32),
            jnp.zeros((num_envs,), bool), memory)
    _, _, returns, success, lengths, _, _ = jax.lax.while_loop(running, step, init)
    return EvalEpisodes(returns=returns, success=success, lengths=lengths)


def evaluate_greedy(
    key: jax.Array,
    params: Any,
    apply_fn: ApplyFn,
    spec: EnvSpec,
    num_envs: int,
    max_steps: int | None = None,
) -> jax.Array:
    """Mean return ``()`` of the greedy policy over ``num_envs`` fresh episodes.

    Each env runs until its first episode ends or ``max_steps`` steps (default
    ``eval_max_steps(spec)``: the env's time limit, or 1000 steps for an env without one).
    """
    return run_eval_episodes(key, params, apply_fn, spec, num_envs, max_steps, greedy=True).returns.mean()
