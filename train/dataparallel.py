"""One agent's envs split over devices (data-parallel PPO): the env-parallel hooks of
``ppo.update_step``, run inside a ``jax.shard_map`` over the ``"envs"`` mesh axis
(``Placement.lift_update``).

Per update and seed, with ``D`` devices on the axis and ``N`` envs, ``update_step`` with
``SplitEnvs`` does:

1. every device draws the whole update's randomness from the (replicated) runner key, exactly as
   on one device, and keeps the env keys and action uniforms of its ``N / D`` envs (``local``);
2. it steps its own envs (their states never leave the device) and computes their GAE;
3. the packed ``[T, N/D, C]`` rollouts are ``all_gather``-ed into the global ``[T·N, C]`` batch
   (small: a few floats per transition), in the one-device order (``gather``);
4. the same epoch shuffles as on one device cut the same global minibatches; each device computes
   the gradient of its ``1/D`` slice of every minibatch (``minibatches``) and the gradients are
   ``lax.pmean``-ed (``mean``), so every device applies the same Adam step to its replica.

Advantages are normalised over the whole minibatch before it is split, so the result equals the
one-device run with the same global batch up to float rounding (sums taken in another order).
Seeds and sweep points stay whole on every device; only the env axis is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
from jax import lax

from train.config import PPOConfig
from train.losses import normalize_advantages


@dataclass(frozen=True)
class SplitEnvs:
    """``ppo.update_step``'s hooks for a run whose ``N`` envs are split into ``num_shards``
    blocks over the mesh axis ``axis_name`` (inside ``shard_map``; see the module docstring)."""

    axis_name: str
    num_shards: int

    def local(self, x: jax.Array) -> jax.Array:
        """``[T, N, ...]`` -> this device's envs ``[T, N / D, ...]`` (envs ``d·N/D ...``)."""
        n_local = x.shape[1] // self.num_shards
        return lax.dynamic_slice_in_dim(x, lax.axis_index(self.axis_name) * n_local, n_local, axis=1)

    def gather(self, packed: jax.Array, num_steps: int) -> jax.Array:
        """This device's packed rollout ``[T·N/D, C]`` -> the one-device batch ``[T·N, C]``
        (row ``t·N + n``, env ``n = device·N/D + local env``)."""
        width = packed.shape[-1]
        local = packed.reshape(num_steps, -1, width)
        whole = lax.all_gather(local, self.axis_name, axis=1, tiled=True)
        return whole.reshape(-1, width)

    def minibatches(
        self, packed: jax.Array, unpack: Callable[[jax.Array], dict], config: PPOConfig
    ) -> tuple[Callable[[jax.Array], Any], Callable[[Any], dict], bool]:
        """``(epoch_inputs, to_batch, normalize_in_loss)``: this device's slice of every global
        minibatch, with advantages normalised over the whole minibatch first (so the loss must
        not normalise them again)."""
        num_mb, mb_size, D = config.num_minibatches, config.minibatch_size, self.num_shards
        advantage = unpack(packed)["advantage"]
        mine = lambda x: lax.dynamic_index_in_dim(  # noqa: E731
            x, lax.axis_index(self.axis_name), axis=1, keepdims=False
        )

        def epoch_inputs(perm: jax.Array) -> tuple[jax.Array, jax.Array]:
            index = perm.reshape(num_mb, D, mb_size // D)  # [num_mb, D, mb/D]
            adv = advantage[perm].reshape(num_mb, mb_size)
            if config.normalize_advantage:
                adv = jax.vmap(normalize_advantages)(adv)
            return packed[mine(index)], mine(adv.reshape(num_mb, D, mb_size // D))

        def to_batch(xs: tuple[jax.Array, jax.Array]) -> dict:
            minibatch, adv = xs
            return dict(unpack(minibatch), advantage=adv)

        return epoch_inputs, to_batch, False

    def mean(self, tree: Any) -> Any:
        """The mean over devices of per-device minibatch-slice means (gradients, loss terms):
        the minibatch mean, the slices being equal-sized."""
        return lax.pmean(tree, self.axis_name)

    def total(self, tree: Any) -> Any:
        """The sum over devices (episode counts and sums)."""
        return jax.tree.map(lambda x: lax.psum(x, self.axis_name), tree)


__all__ = ["SplitEnvs"]
