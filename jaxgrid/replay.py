"""Replaying an episode: the states that happened, step by step, for GIFs, ``jaxgrid play`` and tests.

``replay_episode`` runs one episode of a policy through ``env.step`` and keeps every state the
agent was in: the reset state, the state after each step and, at the end, the state the episode
ended in (``info["final_state"]``, the state the step reached before the auto-reset). Nothing is
re-simulated, so on a slippery env the frames show the slips that happened. ``episode_frames``
draws them.

    episode = jaxgrid.replay_episode(env, params, lambda obs, state: 1, jax.random.PRNGKey(0))
    frames = jaxgrid.episode_frames(env, params, episode)       # [T+1, h, w, 3] uint8
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# policy(obs, state) -> action (a host-side callable; obs and state are the current ones)
Policy = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Episode:
    """One episode as it happened (``T`` steps).

    Attributes:
        states: ``T + 1`` states: the start state, then the state after each step; the last is the
            state the episode ended in (before the env's auto-reset).
        actions: ``[T]`` the actions taken (ints).
        rewards: ``[T]`` float rewards.
        terminated: the last step reached a terminal state.
        truncated: the last step hit the time limit (neither: ``max_steps`` stopped the replay).
    """

    states: list[Any]
    actions: list[int]
    rewards: list[float]
    terminated: bool
    truncated: bool

    @property
    def length(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))


def replay_episode(
    env: Any,
    params: Any,
    policy: Policy,
    key: jax.Array,
    max_steps: int | None = None,
    start: tuple[Any, Any] | None = None,
) -> Episode:
    """Runs ``policy`` for one episode and records exactly the states that happened.

    Args:
        env: a gymnax-style env whose ``step`` puts ``info["final_state"]`` (every jaxgrid env).
        params: its params.
        policy: ``policy(obs, state) -> action``, called on the host before every step.
        key: PRNG key: ``key_reset, key_steps = split(key)``; step ``t`` (0-based) uses
            ``fold_in(key_steps, t)``.
        max_steps: stop after this many steps if the episode has not ended (default: the env's
            ``max_steps_in_episode``, where it truncates).
        start: ``(obs, state)`` to continue from instead of a reset (``key_reset`` is then unused).

    Returns:
        The ``Episode``.

    Raises:
        KeyError: the env's ``step`` does not report ``info["final_state"]``.
    """
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params) if start is None else start
    if max_steps is None:
        max_steps = int(params.max_steps_in_episode)
    # NOTE: a jaxgrid env's step is jitted already (once per env, so replays do not recompile)
    step = env.step if hasattr(env.step, "lower") else jax.jit(env.step)
    states, actions, rewards = [state], [], []
    terminated = truncated = False
    for t in range(max_steps):
        action = policy(obs, state)
        obs, next_state, reward, term, trunc, info = step(
            jax.random.fold_in(key_steps, t), state, jnp.asarray(action, jnp.int32), params
        )
        actions.append(int(action))
        rewards.append(float(reward))
        terminated, truncated = bool(term), bool(trunc)
        if terminated or truncated:
            states.append(info["final_state"])
            break
        state = next_state
        states.append(state)
    return Episode(states, actions, rewards, terminated, truncated)


def episode_frames(env: Any, params: Any, episode: Episode, cell_px: int = 16) -> np.ndarray:
    """``[T+1, h, w, 3]`` uint8: ``env.render`` of every state of ``episode``."""
    render = _jitted_render(env, cell_px)
    return np.stack([np.asarray(render(state, params)) for state in episode.states])


@functools.lru_cache(maxsize=32)
def _jitted_render(env: Any, cell_px: int) -> Callable[[Any, Any], jax.Array]:
    # NOTE: one compiled renderer per (env, cell_px), whatever the episode's length.
    return jax.jit(lambda state, params: env.render(state, params, cell_px=cell_px))
