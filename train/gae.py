"""Generalised advantage estimation that keeps termination and truncation apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float | jax.Array,
    gae_lambda: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """GAE(λ) advantages and value targets over a rollout.

    All arrays are ``[T, N]`` (time, envs):

        δ_t = r_t + γ·(1 − terminated_t)·next_values_t − values_t
        A_t = δ_t + γλ·(1 − done_t)·A_{t+1},  with A_T = 0
        targets_t = A_t + values_t

    ``next_values_t`` must be V of the true next state s'_t: V(``info["final_observation"]``) where
    an episode ended at step t, V(next obs) elsewhere. A time-limit truncation (done, not
    terminated) therefore bootstraps from V(s'_t), while a termination does not; both cut the trace.

    Args:
        rewards: ``[T, N]`` float rewards r_t.
        values: ``[T, N]`` V(s_t).
        next_values: ``[T, N]`` V(s'_t) of the true next state.
        terminated: ``[T, N]`` bool/float, the MDP reached a terminal state at step t.
        done: ``[T, N]`` bool/float, ``terminated | truncated`` at step t.
        gamma: discount γ (scalar, may be traced).
        gae_lambda: λ (scalar, may be traced).

    Returns:
        ``(advantages, targets)``, both ``[T, N]`` float32.
    """
    rewards = rewards.astype(jnp.float32)
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_terminated * next_values - values
    decay = gamma * gae_lambda * not_done

    def backward(next_adv: jax.Array, step: tuple[jax.Array, jax.Array]):
        delta_t, decay_t = step
        adv = delta_t + decay_t * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True
    )
    return advantages, advantages + values
