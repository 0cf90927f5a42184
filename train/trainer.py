"""``train(config)``: one call trains every seed and sweep point, and times itself."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from train.config import SWEEPABLE, PPOConfig
from train.loop import ProgressFn
from train.placement import Placement, compile_program, unpad_seeds
from train.ppo import make_train
from train.types import RunnerState


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
    compile_seconds: float  # tracing + XLA compilation, summed over programs (a run directory compiles
    # them side by side, so this can exceed their wall time); 0 when this process compiled them before
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
        ValueError: a bad ``num_devices``, or an env split the device count does not divide
            (``train.placement.Placement.build``), before anything is compiled.
    """
    placement = Placement.build(config, num_devices, env_parallel)
    keys, hparams = placement.keys(), placement.hparams()

    t0 = time.perf_counter()
    cache_key = (_program_key(config), progress, placement.num_devices, placement.env_parallel)
    compiled = _COMPILED.get(cache_key)
    if compiled is None:
        compiled = _compile(config, placement, progress, keys, hparams)
        _COMPILED[cache_key] = compiled
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))
    t1 = time.perf_counter()
    state, metrics, eval_returns = jax.block_until_ready(compiled(keys, hparams))
    t2 = time.perf_counter()

    return make_result(
        config, state, metrics, eval_returns, t1 - t0, t2 - t1, placement.num_devices
    )


def make_result(
    config: PPOConfig,
    state: RunnerState,
    metrics: dict[str, Any],
    eval_returns: Any,
    compile_seconds: float,
    run_seconds: float,
    n_dev: int,
) -> TrainResult:
    """A ``TrainResult`` from the program's ``[G, S_padded, ...]`` outputs (padding seeds dropped;
    outputs without padding seeds pass unchanged)."""
    lead = config.grid_shape + (config.num_seeds,)

    def host(x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.reshape(lead + x.shape[2:])

    state = unpad_seeds(state, config.num_seeds)
    metrics, eval_returns = unpad_seeds((metrics, eval_returns), config.num_seeds)
    return TrainResult(
        config=config,
        metrics={k: host(v) for k, v in metrics.items()},
        eval_returns=host(eval_returns),
        params=jax.tree.map(host, state.params),
        state=state,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        env_steps=config.num_grid_points * config.num_seeds * config.env_steps_per_seed,
        num_devices=n_dev,
    )


def _compile(config: PPOConfig, placement: Placement, progress: ProgressFn | None, keys, hparams):
    """Traces, lowers and compiles the fused train program of ``config`` on ``placement``."""
    trainer = make_train(config, placement, progress=progress)
    state_shapes = jax.eval_shape(trainer.init, keys) if placement.env_parallel else None
    state_out, out = placement.out_shardings(state_shapes)
    shardings = None if state_out is None else (state_out, out, out)
    return compile_program(trainer.train, keys, hparams, out_shardings=shardings)


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
