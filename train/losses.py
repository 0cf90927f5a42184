"""The PPO objective as pure functions of arrays (tested alone against hand-computed values)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class LossInfo:
    """Scalar diagnostics of one minibatch loss (all float32 ``()``)."""

    total: jax.Array
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array  # the low-variance estimator E[(r - 1) - log r] (Schulman)
    clip_fraction: jax.Array  # fraction of samples with |r - 1| > clip_eps


def normalize_advantages(advantages: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(A − mean) / (std + eps) over the minibatch (population std)."""
    moments = jnp.stack([advantages, jnp.square(advantages)], axis=-1).mean(0)  # one reduction
    mean = moments[0]
    std = jnp.sqrt(jnp.maximum(moments[1] - jnp.square(mean), 0.0))
    return (advantages - mean) / (std + eps)


def ppo_loss_terms(
    new_log_prob: jax.Array,
    old_log_prob: jax.Array,
    advantages: jax.Array,
    new_values: jax.Array,
    old_values: jax.Array,
    targets: jax.Array,
    entropy: jax.Array,
    clip_eps: float | jax.Array,
    vf_coef: float | jax.Array,
    ent_coef: float | jax.Array,
    clip_value_loss: bool = False,
    normalize_advantage: bool = True,
) -> tuple[jax.Array, LossInfo]:
    """The clipped-surrogate PPO loss of one minibatch (all inputs ``[B]``).

        r = exp(new_log_prob − old_log_prob)
        policy_loss = −mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A))
        value_loss  = 0.5·mean((V − target)²), or with clipping
                      0.5·mean(max((V − target)², (V_old + clip(V − V_old, −ε, ε) − target)²))
        total = policy_loss + vf_coef·value_loss − ent_coef·mean(entropy)

    ``A`` is normalised over the minibatch first when ``normalize_advantage`` (static).

    Returns:
        ``(total, LossInfo)``.
    """
    if normalize_advantage:
        advantages = normalize_advantages(advantages)
    log_ratio = new_log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = ratio * advantages
    surrogate_clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    value_err = jnp.square(new_values - targets)
    if clip_value_loss:
        clipped_values = old_values + jnp.clip(new_values - old_values, -clip_eps, clip_eps)
        value_err = jnp.maximum(value_err, jnp.square(clipped_values - targets))
    # NOTE: one stacked mean instead of five: XLA:CPU gives every reduction its own kernel.
    per_sample = jnp.stack(
        [
            -jnp.minimum(surrogate, surrogate_clipped),
            0.5 * value_err,
            entropy,
            jax.lax.stop_gradient((ratio - 1.0) - log_ratio),
            jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > clip_eps).astype(ratio.dtype)),
        ],
        axis=-1,
    )
    policy_loss, value_loss, mean_entropy, approx_kl, clip_fraction = per_sample.mean(0)
    total = policy_loss + vf_coef * value_loss - ent_coef * mean_entropy
    info = LossInfo(
        total=total,
        policy_loss=policy_loss,
        value_loss=value_loss,
        entropy=mean_entropy,
        approx_kl=approx_kl,
        clip_fraction=clip_fraction,
    )
    return total, info


def explained_variance(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """1 − Var(targets − predictions) / Var(targets); NaN when Var(targets) == 0."""
    var_targets = jnp.var(targets)
    return jnp.where(
        var_targets > 0, 1.0 - jnp.var(targets - predictions) / var_targets, jnp.nan
    )
