"""Training into a run directory: chunked, checkpointed, resumable, interruptible.

``train_in_run_dir`` runs the same fused program as ``train.train`` but in chunks of
``checkpoint_every`` updates (``init`` once, then ``run_updates`` per chunk, then ``evaluate``).
Every random key and the update counter live in the runner state, so the chunked run gives bitwise
the results of the unchunked one, and a run resumed from its last checkpoint ends exactly as an
uninterrupted one. After each chunk the full runner state and the curves so far are checkpointed
atomically; Ctrl-C (SIGINT) is honoured at the next chunk boundary: a last checkpoint and the curves
are written and the resume command is printed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from train import report, tracking
from train.checkpoint import atomic_write_json, latest_update, load_checkpoint, save_checkpoint
from train.config import PPOConfig
from train.loop import ProgressFn
from train.placement import Placement, compile_program, rng_config
from train.ppo import make_train
from train.trainer import TrainResult, make_result

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


class RunInterrupted(Exception):
    """Raised after a SIGINT was honoured: the checkpoint and curves so far are on disk."""

    def __init__(self, run_dir: Path, update: int):
        super().__init__(f"interrupted at update {update}; resume with: jaxgrid-train --resume {run_dir}")
        self.run_dir, self.update = run_dir, update


class ConfigMismatchError(ValueError):
    """A resume was asked with a config that differs from the run's own."""


# ------------------------------------------------------------------------------------------------
# config <-> JSON
def config_to_dict(config: PPOConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(data: dict[str, Any]) -> PPOConfig:
    """Inverse of ``config_to_dict`` (JSON lists back to the tuples the config holds)."""
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{CONFIG_FILE} has unknown PPOConfig fields {unknown}")
    data = dict(data)
    for name in ("seeds", "hidden_sizes"):
        if name in data:
            data[name] = tuple(data[name])
    if "sweep" in data:
        data["sweep"] = {k: tuple(v) for k, v in data["sweep"].items()}
    return PPOConfig(**data)


def config_differences(saved: PPOConfig, asked: PPOConfig) -> list[str]:
    """Human-readable ``field: saved -> asked`` lines for every field that differs."""
    a, b = config_to_dict(saved), config_to_dict(asked)
    return [f"{k}: {a[k]!r} (run) -> {b[k]!r} (asked)" for k in a if a[k] != b[k]]


def load_run_config(run_dir: str | Path) -> PPOConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing")
    try:
        return config_from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Program:
    """The compiled pieces of one config on ``num_devices`` devices."""

    config: PPOConfig
    num_devices: int
    keys: jax.Array
    hparams: Any
    init: Any
    run_chunk: dict[int, Any]
    evaluate: Any
    make_run_updates: Any
    compile_seconds: float = 0.0

    def chunk(self, n: int):
        if n not in self.run_chunk:
            t0 = time.perf_counter()
            with rng_config():
                self.run_chunk[n] = self.make_run_updates(n)
            self.compile_seconds += time.perf_counter() - t0
        return self.run_chunk[n]


def _build_program(config: PPOConfig, num_devices: int, env_parallel: bool = False) -> _Program:
    """The chunked programs of ``config``; no host callback in any, so all are cacheable."""
    placement = Placement.build(config, num_devices, env_parallel)
    trainer = make_train(config, placement)
    keys, hparams = placement.keys(), placement.hparams()
    state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
    t0 = time.perf_counter()
    init = compile_program(trainer.init, keys, out_shardings=state_out)
    # Chunks are compiled for the shardings init (and every chunk) leaves the state in.
    state_shape = jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
        jax.eval_shape(trainer.init, keys),
        init.output_shardings,
    )
    evaluate = compile_program(trainer.evaluate, state_shape, out_shardings=out)

    def make_run_updates(n: int):
        run = lambda s, h: trainer.run_updates(s, h, n)  # noqa: E731
        return compile_program(run, state_shape, hparams, out_shardings=(state_out, out))

    program = _Program(config, num_devices, keys, hparams, init, {}, evaluate, make_run_updates)
    program.compile_seconds = time.perf_counter() - t0
    return program


def _checkpoint_tree(state: Any, metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"runner": state, "metrics": metrics}


def train_in_run_dir(
    config: PPOConfig | None,
    out: str | Path = "runs",
    name: str | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    checkpoint_every: int | None = None,
    progress: ProgressFn | None = None,
    num_devices: int | None = None,
    tensorboard: bool = True,
    stop_after: int | None = None,
    env_parallel: bool = False,
) -> tuple[TrainResult, Path]:
    """Trains ``config`` into a run directory (or resumes ``resume``) and writes every artefact.

    Args:
        config: the run's config; with ``resume`` it may be None (use the run's own) or must equal it.
        out: parent of new run directories.
        name: run directory name (default: ``tracking.new_run_name``).
        resume: an existing run directory to continue from its last checkpoint.
        overwrite: replace an existing run directory of the same name.
        checkpoint_every: updates per chunk (a checkpoint after each); default about a tenth of the run.
        progress: progress callback ``(update_index, env_steps, episode_return [G, S])`` (see
            ``make_train``), called from the host after every chunk. NOTE: not from inside the
            program: a host callback makes an executable uncacheable by jax's persistent
            compilation cache, and chunked programs let a repeated run load every program from it.
        num_devices: devices to shard the seeds over (default all).
        tensorboard: also write TensorBoard event files (if tensorboardX is installed).
        stop_after: stop (as if interrupted) after this many updates; for tests and time budgets.
        env_parallel: split each seed's envs over the devices (``train.dataparallel``).

    With several processes (``jax.distributed``) every process runs this with the same arguments
    and gets the same result; only process 0 writes (a resume needs the run directory on a
    filesystem every process sees).

    Raises:
        RunDirExistsError, ConfigMismatchError, CheckpointError, RunInterrupted.
    """
    started = tracking.now_iso()
    if resume is not None:
        run_dir = Path(resume)
        saved = load_run_config(run_dir)
        if config is not None and config != saved:
            diffs = "\n  ".join(config_differences(saved, config))
            raise ConfigMismatchError(
                f"refusing to resume {run_dir} with a different config:\n  {diffs}\n"
                "resume without config flags to continue the run as it was"
            )
        config = saved
        meta = json.loads((run_dir / "metadata.json").read_text()) if (run_dir / "metadata.json").exists() else {}
    else:
        if config is None:
            raise ValueError("train_in_run_dir needs a config (or resume=RUN_DIR)")
        name = name or tracking.new_run_name(config.env_id)
        if jax.process_index() == 0:
            run_dir = tracking.create_run_dir(out, name, overwrite=overwrite)
            atomic_write_json(run_dir / CONFIG_FILE, config_to_dict(config))
        else:
            run_dir = Path(out) / name
        meta = {}
    n_dev = len(jax.devices()) if num_devices is None else max(1, min(num_devices, len(jax.devices())))
    total = config.num_updates
    every = checkpoint_every or max(1, math.ceil(total / 10))
    if every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {every}")

    meta.update(
        tracking.collect_metadata(
            seeds=list(config.seeds),
            sweep={k: list(v) for k, v in config.sweep.items()},
            grid_points=config.grid_points(),
            checkpoint_every=every,
        )
    )
    meta.setdefault("started", started)
    meta.setdefault("resumes", [])
    if resume is not None:
        meta["resumes"].append(started)
    meta["status"] = "running"
    if jax.process_index() == 0:
        atomic_write_json(run_dir / "metadata.json", meta)

    program = _build_program(config, n_dev, env_parallel)
    t_run = 0.0
    state = program.init(program.keys)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    done = 0
    metrics_host: dict[str, np.ndarray] | None = None
    if resume is not None and latest_update(ckpt_dir) is not None:
        from train.types import METRIC_NAMES

        saved_done = latest_update(ckpt_dir)
        real = _real_seeds(state, config)
        lead = np.asarray(real.update_step).shape
        target = _checkpoint_tree(real, {k: np.zeros(lead + (saved_done,), np.float32) for k in METRIC_NAMES})
        done, tree = load_checkpoint(ckpt_dir, target)
        # Checkpoints hold the real seeds only (so any device count can resume them); padding
        # seeds restart from their initial state, which cannot change the real seeds' results.
        shardings = jax.tree.map(lambda x: x.sharding, state)
        state = jax.tree.map(
            lambda saved, fresh, s: jax.device_put(
                jnp.concatenate([jnp.asarray(saved), fresh[:, saved.shape[1]:]], axis=1), s
            ),
            tree["runner"], state, shardings,
        )
        metrics_host = tree["metrics"]

    interrupted = {"flag": False}
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if interrupted["flag"]:  # a second Ctrl-C: give up waiting for the chunk
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        interrupted["flag"] = True
        print("\njaxgrid-train: SIGINT: saving a checkpoint after the current chunk (Ctrl-C again to abort)", file=sys.stderr)

    in_main = _in_main_thread()
    if in_main:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        while done < total:
            n = min(every, total - done)
            run = program.chunk(n)
            t0 = time.perf_counter()
            state, chunk_metrics = jax.block_until_ready(run(state, program.hparams))
            t_run += time.perf_counter() - t0
            chunk_host = {k: np.asarray(v, np.float32)[:, : config.num_seeds] for k, v in chunk_metrics.items()}
            metrics_host = chunk_host if metrics_host is None else {
                k: np.concatenate([metrics_host[k], chunk_host[k]], axis=-1) for k in chunk_host
            }
            done += n
            if progress is not None:
                returns = chunk_host["episode_return"][..., -1]  # [G, S] of the chunk's last update
                progress(done - 1, done * config.batch_size, returns)
            if jax.process_index() == 0:
                save_checkpoint(ckpt_dir, done, _checkpoint_tree(_real_seeds(state, config), metrics_host))
            stop = interrupted["flag"] or (stop_after is not None and done >= stop_after and done < total)
            if stop:
                _write_curves(run_dir, config, metrics_host)
                meta.update(status="interrupted", updates_done=done, interrupted=tracking.now_iso())
                if jax.process_index() == 0:
                    atomic_write_json(run_dir / "metadata.json", meta)
                raise RunInterrupted(run_dir, done)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)

    t0 = time.perf_counter()
    eval_returns = jax.block_until_ready(program.evaluate(state))
    t_run += time.perf_counter() - t0
    result = make_result(config, state, metrics_host, eval_returns, program.compile_seconds, t_run, n_dev)
    _write_final(run_dir, config, result, meta, tensorboard)
    return result, run_dir


def _real_seeds(state: Any, config: PPOConfig) -> Any:
    """The runner state without the padding seeds (leaves [G, S_padded, ...] -> [G, S, ...])."""
    return jax.tree.map(lambda x: x[:, : config.num_seeds], state)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _config_labels(config: PPOConfig) -> list[str]:
    return [", ".join(f"{k}={v:g}" for k, v in p.items()) or config.env_id for p in config.grid_points()]


def _grid_metrics(config: PPOConfig, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """[G, S_padded, U] device layout -> [G, S, U] with the padding seeds dropped."""
    return {k: np.asarray(v)[:, : config.num_seeds] for k, v in metrics.items()}


def _write_curves(run_dir: Path, config: PPOConfig, metrics: dict[str, np.ndarray]) -> None:
    if jax.process_index() != 0:
        return
    tracking.write_curves_csv(run_dir / "curves.csv", _grid_metrics(config, metrics), config.seeds, _config_labels(config))


def _write_final(run_dir: Path, config: PPOConfig, result: TrainResult, meta: dict, tensorboard: bool) -> None:
    if jax.process_index() != 0:
        return
    grid = {k: v.reshape((config.num_grid_points, config.num_seeds, -1)) for k, v in result.metrics.items()}
    labels = _config_labels(config)
    tracking.write_curves_csv(run_dir / "curves.csv", grid, config.seeds, labels)
    summaries = report.summarize_result(result)
    atomic_write_json(
        run_dir / "results.json",
        {
            "env_id": config.env_id,
            "metric": "mean greedy return over fresh evaluation episodes after training",
            "configs": [
                {
                    "label": s.label,
                    "grid_point": point,
                    "seeds": list(s.seeds),
                    "finals": [float(v) for v in s.finals],
                    "mean": s.mean,
                    "std": s.std,
                    "median": s.median,
                    "iqm": s.iqm,
                    "iqm_ci95": list(s.iqm_ci),
                }
                for s, point in zip(summaries, config.grid_points())
            ],
            "table": report.format_table(summaries),
        },
    )
    env_steps = grid["env_steps"][0, 0]
    tracking.plot_learning_curves(
        run_dir / "learning_curve.png", env_steps, grid["episode_return"], labels,
        title=f"{config.env_id}: PPO, {config.num_seeds} seeds",
    )
    wrote_tb = tensorboard and tracking.write_tensorboard(run_dir / "tb", grid, env_steps, config.seeds, labels)
    meta.update(
        status="finished",
        ended=tracking.now_iso(),
        compile_seconds=result.compile_seconds,
        run_seconds=result.run_seconds,
        env_steps=result.env_steps,
        env_steps_per_second=result.env_steps_per_second,
        tensorboard=bool(wrote_tb),
    )
    atomic_write_json(run_dir / "metadata.json", meta)
