"""The named pytrees the trainer carries and returns: traced hyperparameters, the per-run state,
the per-update metrics; and packing a named structure into one array and back.

Each is declared once: ``HParams`` has one leaf per traced field of ``PPOConfig``
(``config.SWEEPABLE``, in declaration order), ``METRIC_NAMES`` are ``UpdateMetrics``' fields
plus ``env_steps``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from flax import struct

from train.config import SWEEPABLE, PPOConfig
from train.rollout import EnvCarry

T = TypeVar("T")


@jax.tree_util.register_pytree_with_keys_class
class HParams:
    """The traced (sweepable) hyperparameters: one float32 array per name in ``SWEEPABLE``
    (``()`` for one run, ``[G]`` for a sweep grid), read as attributes (``hp.learning_rate``).

    Raises:
        TypeError: the names given are not exactly ``SWEEPABLE``.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any):
        if set(values) != set(SWEEPABLE):
            raise TypeError(f"HParams takes exactly {SWEEPABLE}, got {tuple(values)}")
        object.__setattr__(self, "_values", {k: values[k] for k in SWEEPABLE})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"HParams has no {name!r}; names: {SWEEPABLE}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"HParams is immutable: cannot set {name!r}")

    def replace(self, **changes: Any) -> "HParams":
        """A copy with ``changes`` (names from ``SWEEPABLE``) applied."""
        return HParams(**{**self._values, **changes})

    def __repr__(self) -> str:
        return f"HParams({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def tree_flatten_with_keys(self):
        return tuple((jax.tree_util.GetAttrKey(k), v) for k, v in self._values.items()), None

    @classmethod
    def tree_unflatten(cls, aux: None, leaves: Any) -> "HParams":
        return cls(**dict(zip(SWEEPABLE, leaves)))


def make_hparams(config: PPOConfig) -> HParams:
    """The grid of traced hyperparameters: every leaf ``[G]`` float32 (G = 1 without a sweep)."""
    values = config.hparam_values()
    return HParams(**{k: jnp.asarray(values[k], jnp.float32) for k in SWEEPABLE})


@struct.dataclass
class RunnerState:
    """Everything one run (seed and grid point) carries from update to update."""

    params: Any  # network parameters
    opt_state: Any  # optax state of (clip, adam) over the flat parameter vector
    env: EnvCarry  # env states, current obs, running episode stats; leaves [N, ...]
    key: jax.Array  # PRNG key for the next update
    update_step: jax.Array  # () int32, updates done so far


@struct.dataclass
class UpdateMetrics:
    """The logged scalars of one update of one run (each ``()``; ``[G, S]`` batched)."""

    episode_return: jax.Array  # float32 mean return of the episodes that ended (NaN: none)
    episode_length: jax.Array  # float32 mean length of those episodes, in steps (NaN: none)
    episodes_completed: jax.Array  # int32 episodes that ended during the rollout
    policy_loss: jax.Array  # float32, mean over the update's minibatches
    value_loss: jax.Array  # float32, mean over the minibatches
    entropy: jax.Array  # float32 mean policy entropy (nats), mean over the minibatches
    approx_kl: jax.Array  # float32 E[(r - 1) - log r], mean over the minibatches
    clip_fraction: jax.Array  # float32 fraction of samples clipped, mean over the minibatches
    explained_variance: jax.Array  # float32 1 - Var(target - V) / Var(target) of the rollout
    learning_rate: jax.Array  # float32 step size used by this update


# Every curve a run returns, ``[*lead, num_updates]`` each: the update metrics, then the env steps
# per seed after the update (derived from the update index, not computed per update).
METRIC_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UpdateMetrics)) + (
    "env_steps",
)


def stack_fields(tree: Any) -> jax.Array:
    """A dataclass pytree of same-shape arrays -> one float32 array ``[..., F]``, fields in
    declaration order. NOTE: one array leaves a ``scan`` as one output kernel, not ``F``."""
    return jnp.stack(
        [getattr(tree, f.name).astype(jnp.float32) for f in dataclasses.fields(tree)], axis=-1
    )


def unstack_fields(cls: type[T], packed: jax.Array) -> T:
    """Inverse of ``stack_fields``: ``[..., F]`` -> ``cls`` with fields ``[...]`` (float32)."""
    return cls(**{f.name: packed[..., i] for i, f in enumerate(dataclasses.fields(cls))})
