"""``train(config)``: one call trains every seed and sweep point, and times itself."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from train import dataparallel, distributed
from train.config import SWEEPABLE, PPOConfig
from train.ppo import ProgressFn, RunnerState, make_hparams, make_train, rng_config, seed_keys


# Compiled programs of recent configs (a notebook or a test re-running a config skips compiling).
_COMPILED: dict[tuple, Any] = {}
_CACHE_SIZE = 8


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` returns. ``lead`` below is ``(*grid_shape, num_seeds)``: ``(S,)`` without a
    sweep, ``(len(v1), len(v2), ..., S)`` with one (grid axes in ``config.sweep`` key order)."""

    config: PPOConfig
    metrics: dict[str, np.ndarray]  # name -> [*lead, num_updates] learning curves
    eval_returns: np.ndarray  # [*lead] mean greedy return after training
    params: Any  # trained network parameters, leaves [*lead, ...]
    state: RunnerState  # final runner state, leaves [G, S, ...] (for chunked/resumed runs)
    compile_seconds: float  # tracing + XLA compilation (0 when this process compiled it before)
    run_seconds: float  # executing the fused program (training and evaluation)
    env_steps: int  # training env steps over all seeds and grid points
    num_devices: int

    @property
    def env_steps_per_second(self) -> float:
        """Training env steps per second of run time (compile excluded)."""
        return self.env_steps / self.run_seconds


def train(
    config: PPOConfig,
    progress: ProgressFn | None = None,
    num_devices: int | None = None,
    env_parallel: bool = False,
) -> TrainResult:
    """Trains every seed (and sweep point) of ``config`` in one jitted, vmapped program.

    Args:
        config: the run.
        progress: optional host callback ``(update_index, env_steps, episode_return [G, S])``
            called from inside the fused program (throttled).
        num_devices: shard the seed axis over this many devices (``None``: all). Seeds are padded
            up to a multiple of it; the padding is dropped from the result.
        env_parallel: instead of the seeds, split every seed's envs over the devices (one agent,
            data-parallel: ``train.dataparallel``); results equal one device's up to float
            rounding. The device count must divide ``num_envs`` and the minibatch size.

    Returns:
        A ``TrainResult``.

    Raises:
        ValueError: ``num_devices`` not an int in ``[1, len(jax.devices())]`` (before compiling).
    """
    available = len(jax.devices())
    if num_devices is not None and (
        isinstance(num_devices, bool) or not isinstance(num_devices, int) or not 1 <= num_devices <= available
    ):
        raise ValueError(f"num_devices={num_devices!r} is invalid: must be None (all) or an int in [1, {available}]")
    n_dev = available if num_devices is None else num_devices
    env_parallel = env_parallel and n_dev > 1
    keys, hparams = place_inputs(config, n_dev, env_parallel)

    t0 = time.perf_counter()
    cache_key = (_program_key(config), progress, n_dev, env_parallel)
    compiled = _COMPILED.get(cache_key)
    if compiled is None:
        compiled = _compile(config, progress, n_dev, keys, hparams, env_parallel)
        _COMPILED[cache_key] = compiled
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))
    t1 = time.perf_counter()
    state, metrics, eval_returns = jax.block_until_ready(compiled(keys, hparams))
    t2 = time.perf_counter()

    return make_result(config, state, metrics, eval_returns, t1 - t0, t2 - t1, n_dev)


def place_inputs(config: PPOConfig, n_dev: int, env_parallel: bool) -> tuple[jax.Array, Any]:
    """The seed keys and traced hyperparameters of ``config``, placed for ``n_dev`` devices.

    Seed mode pads the seeds to a multiple of the devices and shards the keys over a seed mesh;
    env-parallel mode replicates both over an env mesh (after checking the device count divides
    the env batch); one device leaves them where they are.
    """
    pad = n_dev > 1 and not env_parallel
    keys = seed_keys(distributed.pad_seeds(config.seeds, n_dev) if pad else config.seeds)
    hparams = make_hparams(config)
    if env_parallel:
        dataparallel.check_env_parallel(config, n_dev)
        mesh = distributed.env_mesh(n_dev)
        keys = jax.device_put(keys, distributed.replicated(mesh))
        hparams = jax.device_put(hparams, distributed.replicated(mesh))
    elif n_dev > 1:
        mesh = distributed.seed_mesh(n_dev)
        keys = jax.device_put(keys, distributed.seed_sharding(mesh, 0))
        hparams = jax.device_put(hparams, distributed.replicated(mesh))
    return keys, hparams


def make_result(
    config: PPOConfig,
    state: RunnerState,
    metrics: dict[str, Any],
    eval_returns: Any,
    compile_seconds: float,
    run_seconds: float,
    n_dev: int,
) -> TrainResult:
    """A ``TrainResult`` from the program's ``[G, S_padded, ...]`` outputs (padding seeds dropped)."""
    n_real = config.num_seeds
    lead = config.grid_shape + (n_real,)

    def host(x: jax.Array) -> np.ndarray:
        x = np.asarray(x)[:, :n_real]
        return x.reshape(lead + x.shape[2:])

    state = jax.tree.map(lambda x: x[:, :n_real], state)
    return TrainResult(
        config=config,
        metrics={k: host(v) for k, v in metrics.items()},
        eval_returns=host(eval_returns),
        params=jax.tree.map(host, state.params),
        state=state,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        env_steps=config.num_grid_points * n_real * config.env_steps_per_seed,
        num_devices=n_dev,
    )


def _compile(
    config: PPOConfig,
    progress: ProgressFn | None,
    n_dev: int,
    keys,
    hparams,
    env_parallel: bool = False,
):
    """Traces, lowers and compiles the fused train program of ``config`` for ``n_dev`` devices."""
    # NOTE: with several processes (jax.distributed) every process must be able to read the
    # whole result, so outputs are gathered (replicated); one process keeps them sharded.
    many_hosts = jax.process_count() > 1
    if env_parallel:
        mesh = distributed.env_mesh(n_dev)
        trainer = dataparallel.make_env_parallel_train(config, mesh, progress=progress)
        out = distributed.replicated(mesh) if many_hosts else None
        fn = jax.jit(trainer.train, out_shardings=out)
    elif n_dev > 1:
        mesh = distributed.seed_mesh(n_dev)
        trainer = make_train(config, progress=progress, ordered_progress=False, mesh=mesh)
        sharded = distributed.seed_sharding(mesh, 1)  # outputs lead with [G, S]
        if many_hosts:
            sharded = distributed.replicated(mesh)
        fn = jax.jit(trainer.train, out_shardings=(sharded, sharded, sharded))
    else:
        trainer = make_train(config, progress=progress, ordered_progress=True)
        fn = jax.jit(trainer.train)
    with rng_config():
        return fn.lower(keys, hparams).compile()


def _program_key(config: PPOConfig) -> str:
    """What fixes the compiled program: every field except the values of traced hyperparameters.

    Sweepable hyperparameters enter the program as traced inputs, so configs that differ only in
    their values (or in the values, not the shape, of a sweep) share one compiled executable.
    """
    fields = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in SWEEPABLE and f.name != "sweep"
    }
    return repr((sorted(fields.items()), config.sweep_keys, config.grid_shape))
