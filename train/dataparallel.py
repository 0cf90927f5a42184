"""One agent's envs split over devices (data-parallel PPO): ``jax.shard_map`` + ``lax.pmean``.

Per update and seed, with ``D`` devices on the ``"envs"`` mesh axis and ``N`` envs:

1. every device draws the whole update's randomness from the (replicated) runner key, exactly as
   ``ppo.update_step`` does, and keeps the env keys and action uniforms of its ``N / D`` envs;
2. it steps its own envs (their states never leave the device) and computes their GAE;
3. the packed ``[T, N/D, C]`` rollouts are ``all_gather``-ed into the global ``[T·N, C]`` batch
   (small: a few floats per transition), in the one-device order;
4. the same epoch shuffles as on one device cut the same global minibatches; each device computes
   the gradient of its ``1/D`` slice of every minibatch and the gradients are ``lax.pmean``-ed, so
   every device applies the same Adam step to its replica of the parameters.

Advantages are normalised over the whole minibatch before it is split, so the result equals the
one-device run with the same global batch up to float rounding (sums taken in another order).
Seeds and sweep points stay whole on every device (vmapped or ``lax.map``-ped per
``PPOConfig.seed_batching``); only the env axis is split.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import lax
from jax.sharding import PartitionSpec as P

from train.config import PPOConfig
from train.losses import normalize_advantages
from train.ppo import (
    HParams,
    ProgressFn,
    RunnerState,
    Trainer,
    TrainSetup,
    batch_runs,
    learning_rate_at,
    make_setup,
    make_train,
    next_runner,
    pack_batch,
    resolve_seed_batching,
    rollout_batch,
    sgd_epochs,
    update_metrics,
    update_randomness,
)


def check_env_parallel(config: PPOConfig, num_devices: int) -> None:
    """Raises ``ValueError`` unless ``num_devices`` divides the envs and the minibatch."""
    if config.num_envs % num_devices:
        raise ValueError(
            f"env-parallel training splits num_envs={config.num_envs} over {num_devices} devices: "
            "num_envs must be a multiple of the device count"
        )
    if config.minibatch_size % num_devices:
        raise ValueError(
            f"env-parallel training splits each minibatch of {config.minibatch_size} transitions "
            f"over {num_devices} devices: the minibatch size must be a multiple of the device count"
        )


def update_step_env_parallel(
    runner: RunnerState, hp: HParams, setup: TrainSetup, axis_name: str, num_shards: int
) -> tuple[RunnerState, dict[str, jax.Array]]:
    """``ppo.update_step`` of one seed whose envs are split over ``axis_name`` (inside shard_map).

    ``runner.env`` leaves hold this device's ``[N / num_shards, ...]`` envs; every other leaf is
    replicated. Returns the same metrics as ``update_step`` (replicated).
    """
    config = setup.config
    T, N = config.num_steps, config.num_envs
    B = T * N
    n_local = N // num_shards
    shard = lax.axis_index(axis_name)

    # The same randomness as update_step, drawn whole; this device keeps its envs' share.
    key, env_keys, action_uniforms, perms = update_randomness(runner.key, config, setup.spec)
    local = lambda x: lax.dynamic_slice_in_dim(x, shard * n_local, n_local, axis=1)  # noqa: E731
    env_carry, stats, batch = rollout_batch(local(env_keys), local(action_uniforms), runner, hp, setup)
    packed_local, unpack = pack_batch(batch)
    # [T, N/D, C] from every device -> [T, N, C] (env n = device * N/D + local env) -> [T·N, C]:
    # the one-device batch, row t·N + n.
    width = packed_local.shape[-1]
    packed = lax.all_gather(
        packed_local.reshape(T, n_local, width), axis_name, axis=1, tiled=True
    ).reshape(B, width)
    full = unpack(packed)

    lr = learning_rate_at(runner.update_step, hp, config)
    # The loss sees advantages already normalised over the whole minibatch (below).
    loss_setup = dataclasses.replace(setup, config=config.replace(normalize_advantage=False))
    num_mb, mb_size = config.num_minibatches, config.minibatch_size
    mb_local = mb_size // num_shards

    def epoch_inputs(perm):
        # This device's slice of every global minibatch: [num_mb, D, mb/D] -> [num_mb, mb/D].
        index = perm.reshape(num_mb, num_shards, mb_local)
        adv = full["advantage"][perm].reshape(num_mb, mb_size)
        if config.normalize_advantage:
            adv = jax.vmap(normalize_advantages)(adv)
        adv = adv.reshape(num_mb, num_shards, mb_local)
        mine = lambda x: lax.dynamic_index_in_dim(x, shard, axis=1, keepdims=False)  # noqa: E731
        return packed[mine(index)], mine(adv)

    def to_batch(xs):
        minibatch, adv = xs
        return dict(unpack(minibatch), advantage=adv)

    # NOTE: shard_map(check_vma=False): grad does not psum by itself; the mean of the devices'
    # equal-sized slice means is the minibatch mean.
    params, opt_state, infos = sgd_epochs(
        runner, perms, epoch_inputs, to_batch, hp, loss_setup, lr,
        reduce=lambda grads_info: lax.pmean(grads_info, axis_name),
    )

    stats = jax.tree.map(lambda x: lax.psum(x, axis_name), stats)
    metrics = update_metrics(
        stats, infos, full["value"].reshape(T, N), full["target"].reshape(T, N), lr
    )
    return next_runner(runner, params, opt_state, env_carry, key), metrics


def runner_specs(axis_name: str) -> RunnerState:
    """``shard_map`` specs of a ``[G, S]`` runner state: env leaves split on their env axis."""
    return RunnerState(
        params=P(), opt_state=P(), env=P(None, None, axis_name), key=P(), update_step=P()
    )


def runner_shardings(mesh: jax.sharding.Mesh, state: RunnerState) -> Any:
    """``NamedSharding``s for every leaf of a ``[G, S]`` runner state (env leaves split)."""
    axis = mesh.axis_names[0]

    def to_sharding(spec: P, subtree: Any) -> Any:
        return jax.tree.map(lambda _: jax.sharding.NamedSharding(mesh, spec), subtree)

    specs = runner_specs(axis)
    return RunnerState(
        params=to_sharding(specs.params, state.params),
        opt_state=to_sharding(specs.opt_state, state.opt_state),
        env=to_sharding(specs.env, state.env),
        key=to_sharding(specs.key, state.key),
        update_step=to_sharding(specs.update_step, state.update_step),
    )


def make_env_parallel_train(
    config: PPOConfig,
    mesh: jax.sharding.Mesh,
    progress: ProgressFn | None = None,
    progress_every: int | None = None,
) -> Trainer:
    """``make_train`` whose update splits every seed's envs over the 1-D ``mesh``.

    The returned ``Trainer`` has the usual ``[G, S]`` interface; jit its functions as usual.
    """
    (axis,) = mesh.axis_names
    num_shards = mesh.shape[axis]
    check_env_parallel(config, num_shards)
    setup = make_setup(config)
    per_seed = lambda r, h: update_step_env_parallel(r, h, setup, axis, num_shards)  # noqa: E731
    # Seeds and grid points inside each device: vmap or lax.map, as config.seed_batching says.
    mode = resolve_seed_batching(config, mesh.devices.flat[0].platform)
    batched = batch_runs(per_seed, mode, config.seed_map_batch_size)
    specs = runner_specs(axis)
    sharded = jax.shard_map(
        batched,
        mesh=mesh,
        in_specs=(specs, P()),
        out_specs=(specs, P()),
        check_vma=False,
    )
    return make_train(
        config,
        progress=progress,
        progress_every=progress_every,
        ordered_progress=False,
        batched_update=sharded,
    )


__all__ = [
    "check_env_parallel",
    "make_env_parallel_train",
    "runner_shardings",
    "runner_specs",
    "update_step_env_parallel",
]
