"""The update loop, algorithm-neutral: ``run_updates`` (a ``lax.scan`` of updates, metric curves
out), ``run_until`` (a ``while_loop`` until every run is solved) and in-program progress.

An algorithm supplies three per-run functions (``init(key)``, ``update(run, hparams) -> (run,
metrics)``, ``evaluate(run) -> ()``); ``make_trainer`` lifts them over the ``[G, S]`` runs with a
``train.placement.Placement`` and returns the ``Trainer``. Every random key and the update index
live in the run state, so chunked ``run_updates`` calls give bitwise one call's result.

Host callbacks (the progress bar) make an executable uncacheable by jax's persistent compilation
cache, so only programs built with ``progress=None`` are reused across processes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from train.placement import Placement
from train.types import HParams, stack_fields, unstack_fields

ProgressFn = Callable[[Any, Any, Any], None]  # (update_index, env_steps (), return [G, S])
Update = Callable[[Any, HParams], tuple[Any, Any]]  # batched: runs [G, S] -> (runs, metrics)


@dataclass(frozen=True)
class Trainer:
    """The batched, jittable pieces of one config. Leading axes: ``[G, S]`` (grid, seeds).

    ``init(keys [S]) -> runs [G, S]``; ``run_updates(runs, hparams [G], num_updates) -> (runs,
    {metric: [G, S, num_updates]})``; ``evaluate(runs) -> [G, S]``; ``train(keys, hparams)`` does
    all three in one program; ``run_until(runs, hparams, max_updates, target_return)`` (see
    ``run_until``).
    """

    setup: Any
    placement: Placement
    init: Callable[[jax.Array], Any]
    run_updates: Callable[..., tuple[Any, dict[str, jax.Array]]]
    evaluate: Callable[[Any], jax.Array]
    train: Callable[[jax.Array, HParams], tuple[Any, dict[str, jax.Array], jax.Array]]
    run_until: Callable[..., tuple[Any, jax.Array, jax.Array]]


def make_trainer(
    setup: Any,
    placement: Placement,
    init: Callable[[jax.Array], Any],
    update: Callable[[Any, HParams], tuple[Any, Any]],
    evaluate: Callable[[Any], jax.Array],
    metric_type: type,
    progress: ProgressFn | None = None,
    progress_every: int | None = None,
) -> Trainer:
    """Lifts an algorithm's per-run functions over ``placement``'s runs into a ``Trainer``.

    ``metric_type``: the dataclass pytree ``update`` returns (its fields name the curves; it
    has ``episode_return``, which ``progress`` reports). ``progress`` and ``progress_every``:
    see ``report_progress``.
    """
    config = placement.config
    batched_update = placement.lift_update(update)
    batched_evaluate = placement.lift(lambda runner, _: evaluate(runner))
    report = None
    if progress is not None:
        report = report_progress(progress, config.num_updates, config.batch_size,
                                 progress_every, ordered=placement.mesh is None)
    real = jnp.asarray(placement.real_mask())

    batched_init = placement.lift(lambda key, _: init(key))

    def init_all(keys: jax.Array) -> Any:
        per_seed = batched_init(keys[None], None)  # [1, S]: batched as the runs are
        # Every grid point starts from the same per-seed state.
        grid = (config.num_grid_points,)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, grid + x.shape[1:]), per_seed)

    def evaluate_all(runner: Any) -> jax.Array:
        return batched_evaluate(runner, None)

    def updates(runner: Any, hparams: HParams, num_updates: int):
        return run_updates(runner, hparams, num_updates, batched_update, metric_type,
                           config.batch_size, report)

    def train(keys: jax.Array, hparams: HParams):
        runner, metrics = updates(init_all(keys), hparams, config.num_updates)
        return runner, metrics, evaluate_all(runner)

    def until(runner: Any, hparams: HParams, max_updates: int, target_return: float):
        return run_until(runner, hparams, max_updates, target_return, batched_update,
                         evaluate_all, real)

    return Trainer(setup, placement, init_all, updates, evaluate_all, train, until)


def report_progress(
    progress: ProgressFn,
    num_updates: int,
    batch_size: int,
    every: int | None = None,
    ordered: bool = True,
) -> Callable[[jax.Array, Any], None]:
    """``(update_index, metrics [G, S]) -> None`` to call inside the update scan: calls the host
    ``progress(update_index, env_steps (), episode_return [G, S])`` every ``every`` updates
    (default: about 100 calls per run) and after the last. ``ordered``: an ordered
    ``jax.debug.callback`` (single-device programs only)."""
    every = every or max(1, math.ceil(num_updates / 100))
    last = num_updates - 1

    def report(index: jax.Array, metrics: Any) -> None:
        jax.lax.cond(
            (index % every == 0) | (index == last),
            lambda: jax.debug.callback(
                progress, index, (index + 1) * batch_size, metrics.episode_return, ordered=ordered
            ),
            lambda: None,
        )

    return report


def run_updates(
    runner: Any,
    hparams: HParams,
    num_updates: int,
    update: Update,
    metric_type: type,
    batch_size: int,
    report: Callable[[jax.Array, Any], None] | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """``num_updates`` batched updates in one ``lax.scan``, continuing from ``runner``'s update
    index: ``(runner, {metric: [G, S, num_updates]})``, the ``metric_type`` fields then
    ``env_steps`` (env steps per run after each update, ``batch_size`` per update)."""
    # NOTE: the update index is read per run (every run holds the same one), not as one scalar:
    # with the runs sharded over devices, a scalar read of element 0 is a cross-device
    # all-reduce at the start of every chunk, and XLA:CPU aborts the process when one device
    # reaches it 40 s before another (seen on a loaded 2-core machine). Only the progress
    # report, which needs a scalar, reads it so.
    first = runner.update_step  # [G, S]

    def body(runner: Any, index: jax.Array | None):
        runner, metrics = update(runner, hparams)
        if report is not None:
            report(index, metrics)
        # NOTE: metrics leave the scan packed as one [G, S, M] array (one output kernel).
        return runner, stack_fields(metrics)

    indices = None if report is None else first.reshape(-1)[0] + jnp.arange(num_updates, dtype=jnp.int32)
    runner, packed = jax.lax.scan(body, runner, indices, length=num_updates)
    curves = unstack_fields(metric_type, packed)  # leaves [U, G, S]
    metrics = {
        f.name: jnp.moveaxis(getattr(curves, f.name), 0, -1) for f in dataclasses.fields(curves)
    }
    metrics["env_steps"] = (first[..., None] + 1 + jnp.arange(num_updates, dtype=jnp.int32)) * batch_size
    return runner, metrics


def run_until(
    runner: Any,
    hparams: HParams,
    max_updates: int,
    target_return: float,
    update: Update,
    evaluate: Callable[[Any], jax.Array],
    real: jax.Array,
) -> tuple[Any, jax.Array, jax.Array]:
    """Updates every run until each real one's greedy return (``evaluate``, after every update)
    reaches ``target_return``, or ``max_updates`` updates: one program, one call.

    ``real``: ``[S]`` bool, False for padding seeds (which need not reach the target).
    Returns ``(runner, updates done (), greedy returns [G, S])``. The updates are the same as
    ``run_updates``' (evaluating does not touch the training keys); no metrics are kept.
    """

    def running(carry):
        _, done, returns = carry
        return (done < max_updates) & ~jnp.all((returns >= target_return) | ~real)

    def body(carry):
        runner, done, _ = carry
        runner, _ = update(runner, hparams)
        return runner, done + 1, evaluate(runner)

    lead = runner.update_step.shape
    init_carry = (runner, jnp.int32(0), jnp.full(lead, -jnp.inf, jnp.float32))
    return jax.lax.while_loop(running, body, init_carry)
