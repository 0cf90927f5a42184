"""Training into a run directory: chunked, checkpointed, resumable, interruptible, locked.

``train_in_run_dir`` runs the same fused program as ``train.train`` but in chunks of
``checkpoint_every`` updates (``init`` once, then ``run_updates`` per chunk, then ``evaluate``).
Every random key and the update counter live in the runner state, so the chunked run gives bitwise
the results of the unchunked one, and a run resumed from its last checkpoint ends exactly as an
uninterrupted one. After each chunk the full runner state and the curves so far are checkpointed
atomically; Ctrl-C (SIGINT) is honoured at the next chunk boundary (``SigintGuard``): a last
checkpoint and the curves are written and the resume command is printed.

Nothing is lost: everything is validated and the env built before anything is written; the run's
name is locked for the whole run (``train.runlock``); a new run is written beside its final place
and moved there only once its program is built, replacing an old run only then
(``train.rundir``); a resume starts from the newest checkpoint that verifies, checked before
compiling, and never overwrites an existing checkpoint.

The pieces, in order: ``_resolve_config`` / ``_validate_start`` (no disk), ``_open_run_dir``
(lock), ``_prepare_resume`` or ``_stage_new_run`` (verify / first files), ``_build_program`` and
``_initial_state`` (compile, restore), ``_run_chunks`` (the loop) and ``_finish`` (evaluate, write).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from train import report, tracking
from train import loggers as run_loggers
from train.checkpoint import (
    CheckpointError,
    FoundCheckpoint,
    find_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    set_aside,
)
from train.config import PPOConfig
from train.envs import make_env
from train.loop import ProgressFn
from train.placement import Placement, check_env_parallel, compile_program, resolve_num_devices, rng_config
from train.ppo import make_train
from train.rundir import CHECKPOINT_DIR, RunDir, RunIOError
from train.trainer import TrainResult, make_result

CONFIG_FILE = "config.json"
__all__ = ["CHECKPOINT_DIR", "CONFIG_FILE", "ConfigMismatchError", "RunInterrupted", "train_in_run_dir"]


class RunInterrupted(Exception):
    """Raised after a SIGINT was honoured (or ``stop_after`` reached): what was saved is on disk,
    and the message says how to resume."""

    def __init__(self, run_dir: Path, update: int, message: str | None = None):
        super().__init__(message or f"interrupted at update {update}; resume with: jaxgrid-train --resume {run_dir}")
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
    if not Path(run_dir).exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it does not exist")
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing")
    try:
        return config_from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Program:
    """The compiled pieces of one config on ``num_devices`` devices.

    NOTE: XLA compiles with the GIL released, so the programs compile on worker threads
    (``_COMPILE_THREADS``) while the main thread lowers the next one or starts the run: ``init``,
    ``evaluate`` and the first chunk compile side by side, on as many cores as the host has (the
    largest part of a first run's time). ``init``/``evaluate``/``chunk(n)`` wait for their program.
    ``compile_seconds`` adds up each program's own tracing and compile time, so it can exceed the
    wall time they took together.
    """

    config: PPOConfig
    num_devices: int
    keys: jax.Array
    hparams: Any
    compiling: dict[Any, Future]  # "init", "evaluate", chunk sizes -> (program, seconds)
    make_run_updates: Any
    pool: ThreadPoolExecutor
    compile_seconds: float = 0.0
    compiled: dict[Any, Any] = dataclasses.field(default_factory=dict)

    @property
    def init(self):
        return self._wait("init")

    @property
    def evaluate(self):
        return self._wait("evaluate")

    def prefetch(self, n: int) -> None:
        """Starts compiling the program of a chunk of ``n`` updates (if not started yet)."""
        if n not in self.compiling:
            self.compiling[n] = self.pool.submit(_timed, self.make_run_updates, n)

    def chunk(self, n: int):
        self.prefetch(n)
        return self._wait(n)

    def _wait(self, name: Any):
        if name not in self.compiled:
            program, seconds = self.compiling[name].result()
            self.compiled[name] = program
            self.compile_seconds += seconds
        return self.compiled[name]

    def close(self) -> None:
        """Drops compiles not started yet (an interrupted start); running ones finish on their own."""
        self.pool.shutdown(wait=False, cancel_futures=True)


# Worker threads compiling one config's programs (init, evaluate, chunk sizes): XLA:CPU compiles
# a program on one core, so a few threads use a multi-core host's cores at a cold start.
_COMPILE_THREADS = 3


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds it took)`` under ``rng_config`` (which is per thread)."""
    t0 = time.perf_counter()
    with rng_config():
        out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _lower(fn: Any, *args: Any, out_shardings: Any = None) -> Any:
    """``jax.jit(fn)`` lowered for ``args`` under ``rng_config`` (``compile_program`` less the compile)."""
    with rng_config():
        return jax.jit(fn, out_shardings=out_shardings).lower(*args)


def _build_program(config: PPOConfig, num_devices: int, env_parallel: bool = False) -> _Program:
    """The chunked programs of ``config``; no host callback in any, so all are cacheable.
    ``init`` and ``evaluate`` are compiling (on worker threads) when this returns."""
    placement = Placement.build(config, num_devices, env_parallel)
    trainer = make_train(config, placement)
    keys, hparams = placement.keys(), placement.hparams()
    state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
    pool = ThreadPoolExecutor(_COMPILE_THREADS, thread_name_prefix="compile")
    init, seconds = _timed(_lower, trainer.init, keys, out_shardings=state_out)
    compiling = {"init": pool.submit(_timed, init.compile)}
    # Chunks are compiled for the shardings init (and every chunk) leaves the state in: given
    # (a mesh), they are known from the lowered init; else (one device) jax chose them.
    shardings = jax.tree.map(lambda s: s.sharding, init.out_info) if state_out is not None else \
        compiling["init"].result()[0].output_shardings
    state_shape = jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), init.out_info, shardings
    )
    evaluate, seconds_evaluate = _timed(_lower, trainer.evaluate, state_shape, out_shardings=out)
    compiling["evaluate"] = pool.submit(_timed, evaluate.compile)

    def make_run_updates(n: int):
        run = lambda s, h: trainer.run_updates(s, h, n)  # noqa: E731
        return compile_program(run, state_shape, hparams, out_shardings=(state_out, out))

    return _Program(config, num_devices, keys, hparams, compiling, make_run_updates, pool,
                    compile_seconds=seconds + seconds_evaluate)


def _checkpoint_tree(state: Any, metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"runner": state, "metrics": metrics}


# Length: 80 lines, of which 47 are the docstring (every argument, the return and the errors); the
# body is the eight steps' calls, one line each, in order (see the module docstring).
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
    loggers: list[run_loggers.Logger] | None = None,
) -> tuple[TrainResult, Path]:
    """Trains ``config`` into a run directory (or resumes ``resume``) and writes every artefact.

    Args:
        config: the run's config; with ``resume`` it may be None (use the run's own) or must equal it.
        out: parent of new run directories.
        name: run directory name, one plain path component (default: ``tracking.new_run_name``).
        resume: an existing run directory to continue from its newest checkpoint that verifies.
        overwrite: replace an existing run directory of the same name; only a jaxgrid run (one
            with config.json or metadata.json) is ever replaced, and only once the new run's
            program is built.
        checkpoint_every: updates per chunk (a checkpoint after each); default about a tenth of the run.
        progress: progress callback ``(update_index, env_steps, episode_return [G, S])`` (see
            ``make_train``), called from the host after every chunk. NOTE: not from inside the
            program: a host callback makes an executable uncacheable by jax's persistent
            compilation cache, and chunked programs let a repeated run load every program from it.
        num_devices: devices to shard the seeds over (default all; 1..the device count).
        tensorboard: also write TensorBoard event files (with the default loggers only).
        stop_after: stop (as if interrupted) after this many updates; for tests and time budgets.
        env_parallel: split each seed's envs over the devices (``train.dataparallel``).
        loggers: ``train.loggers`` loggers, started once the run directory is in place and called
            after every chunk. Default: ``loggers.run_dir_loggers(tensorboard)`` (curves.csv, the
            plot, TensorBoard), closed before this returns. Loggers passed here are closed by the
            caller (``LoggerGroup.close``), e.g. after printing the table, so that the plot and
            event files finish meanwhile.

    Returns:
        ``(result, run_dir)``. For a resumed run ``result.env_steps`` and ``result.run_seconds``
        count this invocation only (so ``env_steps_per_second`` is this invocation's rate);
        ``metadata.json`` also records ``env_steps_total``.

    With several processes (``jax.distributed``) every process runs this with the same arguments
    and gets the same result; only process 0 locks and writes (a resume needs the run directory
    on a filesystem every process sees).

    Raises:
        ValueError (bad name or argument, invalid env), RunDirExistsError, RunLockedError (another
        process holds the run), ConfigMismatchError, CheckpointError (no checkpoint verifies),
        RunIOError (an OS error: names the path and what is still safe), RunInterrupted.
    """
    started = tracking.now_iso()
    config = _resolve_config(config, resume)
    n_dev, every = _validate_start(config, checkpoint_every, stop_after, num_devices, env_parallel)
    writer = jax.process_index() == 0
    if resume is None:
        run = RunDir.create(out, name or tracking.new_run_name(config.env_id), overwrite, started, writer)
    else:
        run = RunDir.open(resume, started, writer)
    with run, contextlib.ExitStack() as cleanup:
        try:
            found = _prepare_resume(run) if resume is not None else _stage_new_run(run, config, every, started)
            program = _build_program(config, n_dev, env_parallel)
            cleanup.callback(program.close)
            done = found.update if found is not None else 0
            if done < config.num_updates:  # the first chunk compiles beside init and evaluate
                program.prefetch(min(every, config.num_updates - done))
            state, metrics, first = _initial_state(program, config, found)
        except KeyboardInterrupt:
            raise _interrupted_while_starting(run, resume is not None) from None
        with SigintGuard() as guard:
            try:
                run.commit()  # a new run takes its place (replacing an old one: --overwrite) only now
                if resume is not None:
                    _start_metadata(run, config, every, started, resumed=True)
                with _start_loggers(run, config, metrics, loggers, tensorboard, progress) as log:
                    if resume is not None and first == config.num_updates:
                        print(f"jaxgrid-train: {run.path} finished training before ({first} updates): "
                              "evaluating it again and writing its results", file=sys.stderr, flush=True)
                    state, metrics, seconds = _run_chunks(run, program, state, metrics, first, every, log,
                                                          stop_after, guard)
                    if guard.requested:  # Ctrl-C in the last chunk: stop before the evaluation
                        _stop(run, config, metrics, config.num_updates, "interrupted")
                        raise RunInterrupted(run.path, config.num_updates, (
                            f"interrupted after the last update ({config.num_updates}), before the final "
                            f"evaluation; every update is saved: jaxgrid-train --resume {run.path} evaluates "
                            "it and writes the results"))
                    tb = any(isinstance(x, run_loggers.TensorBoardLogger) for x in log.loggers)
                    return _finish(run, program, state, metrics, first, seconds, tb), run.path
            except KeyboardInterrupt:  # a second Ctrl-C
                raise RunInterrupted(run.path, run.last_saved, f"aborted; {run.safe}") from None


@contextlib.contextmanager
def _start_loggers(run: RunDir, config: PPOConfig, restored: dict[str, np.ndarray] | None,
                   loggers: list[run_loggers.Logger] | None, tensorboard: bool, progress: ProgressFn | None):
    """The run's loggers (only process 0 writes files), started on the committed run directory and
    fed the restored curves of a resumed run; the default loggers are closed on the way out."""
    own = loggers is None
    loggers = run_loggers.run_dir_loggers(tensorboard) if own else loggers
    log = run_loggers.LoggerGroup([
        *(loggers if run.writer else []),
        *([run_loggers.ProgressCallback(progress)] if progress is not None else []),
    ])
    run.guard_io("start the loggers in", run.path, lambda: log.start(run_loggers.RunInfo.from_config(config, run.path)))
    if restored is not None:
        run.guard_io("log to", run.path,
                     lambda: log.log_chunk(run_loggers.Chunk(0, restored, config.batch_size, restored=True)))
    try:
        yield log
    finally:
        if own:
            run.guard_io("finish the logs in", run.path, log.close)


def _resolve_config(config: PPOConfig | None, resume: str | Path | None) -> PPOConfig:
    """The config to run: ``config``, or with ``resume`` the run's own (``config`` must equal it)."""
    if resume is None:
        if config is None:
            raise ValueError("train_in_run_dir needs a config (or resume=RUN_DIR)")
        return config
    saved = load_run_config(resume)
    if config is not None and config != saved:
        diffs = "\n  ".join(config_differences(saved, config))
        raise ConfigMismatchError(
            f"refusing to resume {resume} with a different config:\n  {diffs}\n"
            "resume without config flags to continue the run as it was"
        )
    return saved


def _validate_start(
    config: PPOConfig, checkpoint_every: int | None, stop_after: int | None, num_devices: int | None,
    env_parallel: bool,
) -> tuple[int, int]:
    """Every check that needs no disk, the env's own included: ``(num_devices, checkpoint_every)``.

    Raises:
        ValueError: naming the argument and its valid values.
    """
    n_dev = resolve_num_devices(num_devices)
    every = max(1, math.ceil(config.num_updates / 10)) if checkpoint_every is None else checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"checkpoint_every must be a positive int (updates per checkpoint), got {checkpoint_every!r}")
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 1):
        raise ValueError(f"stop_after must be a positive int or None, got {stop_after!r}")
    make_env(config.env_id, config.env_kwargs)  # the env's parameter checks, before any file
    if env_parallel and n_dev > 1:
        check_env_parallel(config, n_dev)
    return n_dev, every


def _stage_new_run(run: RunDir, config: PPOConfig, every: int, started: str) -> None:
    """Writes config.json and metadata.json into the new run's staging directory."""
    run.check_writable()
    run.write_json(CONFIG_FILE, config_to_dict(config))
    _start_metadata(run, config, every, started, resumed=False)


def _prepare_resume(run: RunDir) -> FoundCheckpoint | None:
    """Before compiling: the newest checkpoint that verifies, a writable run directory, no stray
    temp files, and newer corrupted checkpoints set aside (never overwritten). Returns the
    checkpoint (None: the run has none and did no update yet).

    Raises:
        CheckpointError: checkpoints exist but none verifies, or the run did updates and lost them.
        RunIOError: the run directory cannot be written.
    """
    found = find_checkpoint(run.checkpoints)
    run.meta = _read_metadata(run.path)
    if found is None and (run.meta.get("status") == "finished" or run.meta.get("updates_done")):
        did = "a finished run" if run.meta.get("status") == "finished" else f"{run.meta['updates_done']} updates done"
        raise CheckpointError(f"{run.path}/metadata.json records {did} but {run.checkpoints} holds no checkpoint; "
                              "refusing to start it over (use --overwrite to do that)")
    run.last_saved = found.update if found else 0
    run.safe = "the run is unchanged" + (f" (resumable from update {found.update})" if found else "")
    run.check_writable()
    run.guard_io("clean up in", run.path, run.remove_stray_temp_files)
    if found is not None and found.passed_over:
        moved = []
        if run.writer and found.newer_files:
            moved = run.guard_io("set aside a corrupted checkpoint in", run.checkpoints,
                                 lambda: set_aside(found.newer_files))
        lines = "\n  ".join(found.passed_over + [f"kept as {p}" for p in moved])
        print(f"jaxgrid-train: warning: resuming from {found.path.name} (update {found.update}):\n  {lines}",
              file=sys.stderr)
    return found


def _read_metadata(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metadata.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _start_metadata(run: RunDir, config: PPOConfig, every: int, started: str, resumed: bool) -> None:
    """metadata.json at a (re)start. A resume keeps the run's original ``command`` and records its
    own command line in ``resume_commands`` (beside its time in ``resumes``)."""
    original_command = run.meta.get("command")
    run.meta.update(
        tracking.collect_metadata(
            seeds=list(config.seeds),
            sweep={k: list(v) for k, v in config.sweep.items()},
            grid_points=config.grid_points(),
            checkpoint_every=every,
        )
    )
    run.meta.setdefault("started", started)
    run.meta.setdefault("resumes", [])
    if resumed:
        run.meta["resumes"].append(started)
        run.meta.setdefault("resume_commands", []).append(run.meta["command"])
        if original_command is not None:
            run.meta["command"] = original_command
    run.write_metadata(status="running")


def _initial_state(program: _Program, config: PPOConfig, found: FoundCheckpoint | None):
    """``(state, metrics so far or None, updates done)``: fresh, or restored from ``found``."""
    from train.types import METRIC_NAMES

    state = program.init(program.keys)
    if found is None:
        return state, None, 0
    real = _real_seeds(state, config)
    lead = np.asarray(real.update_step).shape
    target = _checkpoint_tree(real, {k: np.zeros(lead + (found.update,), np.float32) for k in METRIC_NAMES})
    tree = restore_checkpoint(found, target)
    # Checkpoints hold the real seeds only (so any device count can resume them); padding
    # seeds restart from their initial state, which cannot change the real seeds' results.
    shardings = jax.tree.map(lambda x: x.sharding, state)
    state = jax.tree.map(
        lambda saved, fresh, s: jax.device_put(
            jnp.concatenate([jnp.asarray(saved), fresh[:, saved.shape[1]:]], axis=1), s
        ),
        tree["runner"], state, shardings,
    )
    return state, tree["metrics"], found.update


def _interrupted_while_starting(run: RunDir, resumed: bool) -> RunInterrupted:
    if resumed:
        return RunInterrupted(run.path, 0, f"interrupted while starting; {run.path} is unchanged; "
                                           f"resume with: jaxgrid-train --resume {run.path}")
    return RunInterrupted(run.path, 0, "interrupted while starting, before the first update; no run "
                                       f"directory was written ({run.path} was not created): run the command again")


class SigintGuard:
    """Inside the block a first Ctrl-C (SIGINT) only sets ``requested``, honoured at the next chunk
    boundary; a second one gives up waiting and raises ``KeyboardInterrupt``. Outside the main
    thread (where Python cannot handle signals) it does nothing."""

    requested = False

    def __enter__(self) -> SigintGuard:
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C: give up waiting for the chunk
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        print("\njaxgrid-train: SIGINT: saving a checkpoint after the current chunk (Ctrl-C again to abort)",
              file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)


def _resumable(run: RunDir, done: int) -> str:
    run.last_saved = done
    return f"the run is resumable from update {done}: jaxgrid-train --resume {run.path}"


def _run_chunks(run: RunDir, program: _Program, state: Any, metrics: dict[str, np.ndarray] | None,
                done: int, every: int, log: run_loggers.LoggerGroup, stop_after: int | None,
                guard: SigintGuard):
    """Runs chunks of ``every`` updates up to the end, a checkpoint after each.

    Returns ``(state, metrics [G, S, U], seconds spent running)``.

    Raises:
        RunInterrupted: Ctrl-C or ``stop_after`` (after a checkpoint). KeyboardInterrupt: a second
            Ctrl-C (metadata.json says "interrupted" at the last checkpoint).
        RunIOError: a checkpoint could not be written (names what is still resumable).
    """
    config, total, seconds = program.config, program.config.num_updates, 0.0
    run.safe = _resumable(run, done)
    while done < total:
        if guard.requested or (stop_after is not None and done >= stop_after):
            _stop(run, program.config, metrics, done, "interrupted")
            raise RunInterrupted(run.path, done)
        n = min(every, total - done)
        try:
            run_chunk = program.chunk(n)  # compiled on first use: counted as compile, not run time
            t0 = time.perf_counter()
            state, chunk = jax.block_until_ready(run_chunk(state, program.hparams))
            seconds += time.perf_counter() - t0
        except KeyboardInterrupt:
            _stop(run, program.config, metrics, done, "interrupted")
            raise
        chunk_host = {k: np.asarray(v, np.float32)[:, : config.num_seeds] for k, v in chunk.items()}
        metrics = chunk_host if metrics is None else {
            k: np.concatenate([metrics[k], chunk_host[k]], axis=-1) for k in chunk_host
        }
        done += n
        _save(run, done, state, metrics, config)
        run.guard_io("log to", run.path, lambda: log.log_chunk(run_loggers.Chunk(done - n, chunk_host, config.batch_size)))
    return state, metrics, seconds


def _save(run: RunDir, done: int, state: Any, metrics: dict[str, np.ndarray], config: PPOConfig) -> None:
    """Checkpoints ``done`` updates; on an OS error marks the run failed (best effort) and raises."""
    if not run.writer:
        return
    tree = _checkpoint_tree(_real_seeds(state, config), metrics)
    try:
        run.guard_io("write a checkpoint in", run.checkpoints, lambda: save_checkpoint(run.checkpoints, done, tree))
    except RunIOError as err:
        try:
            run.write_metadata(status="failed", error=str(err))
        except RunIOError:
            pass
        raise
    run.safe = _resumable(run, done)


def _stop(run: RunDir, config: PPOConfig, metrics: dict[str, np.ndarray] | None, done: int, status: str) -> None:
    """``status`` in metadata.json at a stop after update ``done`` (the loggers hold the curves)."""
    run.write_metadata(status=status, updates_done=done, interrupted=tracking.now_iso())


def _finish(run: RunDir, program: _Program, state: Any, metrics: dict[str, np.ndarray], first: int,
            seconds: float, tensorboard: bool) -> TrainResult:
    """Evaluates and writes the results; the result counts this invocation's env steps and time."""
    config = program.config
    t0 = time.perf_counter()
    eval_returns = jax.block_until_ready(program.evaluate(state))
    seconds += time.perf_counter() - t0
    result = make_result(config, state, metrics, eval_returns, program.compile_seconds, seconds, program.num_devices)
    total_steps = result.env_steps
    result = dataclasses.replace(result, env_steps=total_steps * (config.num_updates - first) // config.num_updates)
    run.safe = (f"training finished and its last checkpoint is saved: jaxgrid-train --resume {run.path} "
                "writes the results again")
    try:
        _write_final(run, config, result, tensorboard, total_steps)
    except RunIOError as err:
        err.result = result
        raise
    return result


def _real_seeds(state: Any, config: PPOConfig) -> Any:
    """The runner state without the padding seeds (leaves [G, S_padded, ...] -> [G, S, ...])."""
    return jax.tree.map(lambda x: x[:, : config.num_seeds], state)


def _write_final(run: RunDir, config: PPOConfig, result: TrainResult, tensorboard: bool, total_steps: int) -> None:
    if not run.writer:
        return
    run.write_json("results.json", _results_json(config, result))
    run.write_metadata(
        status="finished",
        updates_done=config.num_updates,
        ended=tracking.now_iso(),
        compile_seconds=result.compile_seconds,
        run_seconds=result.run_seconds,
        env_steps=result.env_steps,
        env_steps_total=total_steps,
        env_steps_per_second=result.env_steps_per_second,
        tensorboard=tensorboard,
    )


def _results_json(config: PPOConfig, result: TrainResult) -> dict[str, Any]:
    summaries = report.summarize_result(result)
    return {
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
    }
