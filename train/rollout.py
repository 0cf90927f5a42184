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
    from gymnax.environments import spaces

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


def evaluate_greedy(
    key: jax.Array, params: Any, apply_fn: ApplyFn, spec: EnvSpec, num_envs: int
) -> jax.Array:
    """Mean return ``()`` of the greedy policy over ``num_envs`` fresh episodes.

    Each env runs until its first episode ends (at most ``spec.max_episode_steps`` steps, after
    which the env's own time limit has ended it).
    """
    horizon = spec.max_episode_steps
    keys = jax.random.split(key, num_envs * (1 + horizon))  # one random site for everything
    carry = reset_envs(keys[:num_envs], spec)

    step_keys = keys[num_envs:].reshape((horizon, num_envs) + keys.shape[1:])

    def step(state):
        t, carry, returns, finished = state
        policy_out, _ = apply_fn(params, carry.obs)
        action = networks.greedy_action(policy_out, spec.discrete_actions)
        obs, env_state, reward, _, done, _ = _step_envs(step_keys[t], spec, carry, action)
        returns = returns + jnp.where(finished, 0.0, reward)
        finished = finished | done
        carry = carry.replace(env_state=env_state, obs=obs)
        return t + 1, carry, returns, finished

    def running(state):
        t, _, _, finished = state
        return (t < horizon) & ~jnp.all(finished)

    # NOTE: a while loop, not a scan over the whole horizon: it stops once every episode ended
    # (a solved 4x4 grid takes 6 of its 50 steps). The returns are the same either way.
    init = (jnp.int32(0), carry, jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), bool))
    _, _, returns, _ = jax.lax.while_loop(running, step, init)
    return returns.mean()
