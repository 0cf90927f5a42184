"""Loggers: one protocol for everything a run reports as it goes.

A logger is told once what the run is (``start(RunInfo)``), then gets every chunk of updates as it
finishes (``log_chunk(Chunk)``: every metric as ``[G, S, n]``, G configs x S seeds x the chunk's n
updates, with their update numbers and env steps), then ``close()``. The run-directory loop
(``train.runs``) calls them after every chunk; ``jaxgrid-train`` picks them by flag.

    CSVLogger            curves.csv: one row per (config, seed, update), rewritten atomically per chunk
    CurvePlotLogger      learning_curve.png: drawn in the background once the last chunk is in
    TensorBoardLogger    tb/config<c>/seed<s>/: event files, written and flushed after every chunk
    WandbLogger          one Weights & Biases run (``--track wandb``; the ``wandb`` extra)
    ProgressBarLogger    the tqdm bar on stderr

Slow work (importing tensorboardX or matplotlib, W&B's start-up and uploads, drawing) runs on one
background thread per logger (``BackgroundWorker``), so it overlaps compilation and training and
never delays the result table: ``close()`` waits for it and re-raises its first error.

Writing a logger: any object with ``start``, ``log_chunk`` and ``close`` (see ``Logger``); pass
it in ``train_in_run_dir(..., loggers=[...])``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from train.checkpoint import atomic_write_bytes

TRACKERS = ("wandb",)  # choices of --track


@dataclass(frozen=True)
class RunInfo:
    """What a run is, told to every logger once, before the first chunk.

    Attributes:
        name: the run's name (its directory name in a run directory).
        env_id: the env trained on.
        config: the full config as JSON-able data (``config.json``'s content).
        seeds: ``[S]`` seeds, in metric order.
        labels: ``[G]`` one label per config of a sweep (``"learning_rate=0.001"``; the env id
            when there is no sweep), in metric order.
        num_updates: updates of the whole run.
        steps_per_update: env steps of one update of one run (``config.batch_size``).
        run_dir: the run directory (None when nothing is written to disk).
    """

    name: str
    env_id: str
    config: Mapping[str, Any]
    seeds: tuple[int, ...]
    labels: tuple[str, ...]
    num_updates: int
    steps_per_update: int
    run_dir: Path | None = None

    @classmethod
    def from_config(cls, config: Any, run_dir: str | Path | None = None, name: str | None = None) -> RunInfo:
        """The ``RunInfo`` of a ``PPOConfig`` (``name`` defaults to the run directory's name)."""
        from train import tracking

        run_dir = None if run_dir is None else Path(run_dir)
        return cls(
            name=name or (run_dir.name if run_dir is not None else config.env_id),
            env_id=config.env_id,
            config=dataclasses.asdict(config),
            seeds=tuple(config.seeds),
            labels=tuple(tracking.config_labels(config)),
            num_updates=config.num_updates,
            steps_per_update=config.batch_size,
            run_dir=run_dir,
        )


@dataclass(frozen=True)
class Chunk:
    """Consecutive updates ``start + 1 .. start + n`` of every run.

    Attributes:
        start: updates done before this chunk.
        metrics: name -> ``[G, S, n]`` float32 (``train.types.METRIC_NAMES``).
        steps_per_update: env steps of one update of one run.
        restored: the history read back from a checkpoint when a run resumes (loggers that wrote
            it to disk before, like TensorBoard, skip it; ones that keep the whole curve use it).
    """

    start: int
    metrics: Mapping[str, np.ndarray]
    steps_per_update: int
    restored: bool = False

    @property
    def num_updates(self) -> int:
        return int(next(iter(self.metrics.values())).shape[-1])

    @property
    def end(self) -> int:
        """Updates done after this chunk."""
        return self.start + self.num_updates

    @property
    def updates(self) -> np.ndarray:
        """``[n]`` int64 update numbers, 1-based."""
        return np.arange(self.start + 1, self.end + 1, dtype=np.int64)

    @property
    def env_steps(self) -> np.ndarray:
        """``[n]`` int64 env steps of one run at the end of each update (exact, unlike the float32
        ``env_steps`` metric past 2**24)."""
        return self.updates * self.steps_per_update


@runtime_checkable
class Logger(Protocol):
    """What the run loop calls: ``start`` once, ``log_chunk`` per chunk, ``close`` at the end (also
    after an interruption or an error). ``close`` waits for any background work and raises its
    errors; it may be called more than once."""

    def start(self, run: RunInfo) -> None: ...

    def log_chunk(self, chunk: Chunk) -> None: ...

    def close(self) -> None: ...


class BackgroundWorker:
    """Runs submitted jobs in order on one daemon thread, started with the first job.

    ``wait()`` blocks until every job so far has run; ``join()`` also ends the thread. Both
    re-raise the first error a job raised (later jobs are skipped after an error).
    """

    def __init__(self, name: str):
        self.name = name
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self._error is None:
                    job()
            except BaseException as err:  # kept for the main thread, raised by wait/join
                self._error = err
            finally:
                self._jobs.task_done()
        self._jobs.task_done()

    def wait(self) -> None:
        if self._thread is not None:
            self._jobs.join()
        self._raise()

    def join(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"logger {self.name!r} failed: {err}") from err


class LoggerGroup:
    """Several loggers called as one: in order, every one closed even if another fails."""

    def __init__(self, loggers: Iterable[Logger] = ()):
        self.loggers = list(loggers)
        for logger in self.loggers:
            if not isinstance(logger, Logger):
                raise TypeError(f"{logger!r} is not a Logger: it needs start, log_chunk and close methods")

    def start(self, run: RunInfo) -> None:
        for logger in self.loggers:
            logger.start(run)

    def log_chunk(self, chunk: Chunk) -> None:
        for logger in self.loggers:
            logger.log_chunk(chunk)

    def close(self) -> None:
        errors = []
        for logger in self.loggers:
            try:
                logger.close()
            except Exception as err:  # close the others first
                errors.append(err)
        if errors:
            raise errors[0]


# ------------------------------------------------------------------------------------------------
# the loggers
class CSVLogger:
    """``curves.csv`` in the run directory: one row per (config, seed, update), every metric a
    column; the whole file is rewritten atomically after every chunk, so it is always complete
    up to the last finished chunk."""

    def __init__(self, filename: str = "curves.csv"):
        self.filename = filename
        self.run: RunInfo | None = None
        self.history: dict[str, np.ndarray] | None = None  # name -> [G, S, updates so far]

    def start(self, run: RunInfo) -> None:
        self.run, self.history = run, None

    def log_chunk(self, chunk: Chunk) -> None:
        if self.run is None or self.run.run_dir is None:
            return
        self.history = append_chunk(self.history, chunk)
        write_curves_csv(self.run.run_dir / self.filename, self.history, self.run.seeds, self.run.labels)

    def close(self) -> None:
        pass


class CurvePlotLogger:
    """``learning_curve.png``: per-seed episode returns, median and interquartile band, one panel
    per config (``tracking.plot_learning_curves``). Drawn on a background thread once the last
    chunk is in (or at ``close`` for an interrupted run); matplotlib is imported there at start."""

    def __init__(self, filename: str = "learning_curve.png", metric: str = "episode_return"):
        self.filename, self.metric = filename, metric
        self.worker = BackgroundWorker("plot")
        self.run: RunInfo | None = None
        self.history: dict[str, np.ndarray] | None = None
        self.drawn_at = -1

    def start(self, run: RunInfo) -> None:
        self.run, self.history, self.drawn_at = run, None, -1
        if run.run_dir is not None:
            self.worker.submit(_import_matplotlib)  # overlaps compilation

    def log_chunk(self, chunk: Chunk) -> None:
        if self.run is None or self.run.run_dir is None:
            return
        self.history = append_chunk(self.history, chunk, names=(self.metric,))
        if chunk.end >= self.run.num_updates:
            self._draw()

    def _draw(self) -> None:
        if self.history is None or self.drawn_at == self.history[self.metric].shape[-1]:
            return
        from train import tracking

        run, returns = self.run, self.history[self.metric]
        self.drawn_at = returns.shape[-1]
        env_steps = np.arange(1, returns.shape[-1] + 1) * run.steps_per_update
        title = f"{run.env_id}: PPO, {len(run.seeds)} seeds"
        self.worker.submit(lambda: tracking.plot_learning_curves(
            run.run_dir / self.filename, env_steps, returns, run.labels, title=title
        ))

    def close(self) -> None:
        if self.run is not None and self.run.run_dir is not None:
            self._draw()
        self.worker.join()


class TensorBoardLogger:
    """TensorBoard event files under ``<run_dir>/tb/config<c>/seed<s>/``, one TensorBoard run per
    (config, seed): every metric against env steps, written and flushed after every chunk (so
    ``tensorboard --logdir runs`` follows a run as it trains). A resumed run appends new event
    files next to the old ones and does not rewrite the restored history."""

    def __init__(self, subdir: str = "tb"):
        self.subdir = subdir
        self.worker = BackgroundWorker("tensorboard")
        self.run: RunInfo | None = None
        self.writers: dict[tuple[int, int], Any] = {}

    def start(self, run: RunInfo) -> None:
        self.run = run
        if run.run_dir is not None:
            self.worker.submit(self._open)

    def _open(self) -> None:
        # NOTE: tensorboardX's EventsWriter writes synchronously on this logger's thread; its
        # SummaryWriter would add two threads per (config, seed) and cannot flush on demand.
        from tensorboardX import summary
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event

        run = self.run
        for c, label in enumerate(run.labels):
            for seed in run.seeds:
                logdir = run.run_dir / self.subdir / f"config{c}" / f"seed{seed}"
                logdir.mkdir(parents=True, exist_ok=True)
                writer = EventsWriter(str(logdir / "events"))
                writer.write_event(Event(wall_time=time.time(), step=0, summary=summary.text("config", label)))
                self.writers[c, seed] = writer

    def log_chunk(self, chunk: Chunk) -> None:
        if self.run is None or self.run.run_dir is None or chunk.restored:
            return
        self.worker.submit(lambda: self._write(chunk))

    def _write(self, chunk: Chunk) -> None:
        from tensorboardX import summary
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        steps, now = chunk.env_steps, time.time()
        for (c, seed), writer in self.writers.items():
            s = self.run.seeds.index(seed)
            for u in range(chunk.num_updates):
                values = [v for name, arr in chunk.metrics.items() for v in summary.scalar(name, float(arr[c, s, u])).value]
                writer.write_event(Event(wall_time=now, step=int(steps[u]), summary=Summary(value=values)))
            writer.flush()

    def wait(self) -> None:
        """Blocks until every chunk logged so far is on disk."""
        self.worker.wait()

    def close(self) -> None:
        def close_writers() -> None:
            for writer in self.writers.values():
                writer.close()
            self.writers = {}

        if self.worker.started:
            self.worker.submit(close_writers)
        self.worker.join()


class WandbLogger:
    """One Weights & Biases run per training run (all seeds and configs), grouped by ``group``.

    The run holds the config (``RunInfo.config`` plus ``seeds`` and ``config_labels``) and, at
    every update (the W&B step), ``env_steps`` and for every metric ``<metric>/seed<s>`` per seed
    and ``<metric>/median`` over seeds (``<metric>/config<c>/...`` when a sweep has several
    configs). W&B files go under the run directory (``<run_dir>/wandb``). Set ``WANDB_MODE=offline``
    to log without an account or network (``wandb sync`` uploads later). A resumed run starts a new
    W&B run that gets the restored history first.

    Args:
        project: the W&B project (default: W&B's, ``WANDB_PROJECT``).
        group: the W&B group (default: the env id).
        mode: ``"online"``, ``"offline"`` or ``"disabled"`` (default: W&B's, ``WANDB_MODE``).

    Raises:
        ImportError: wandb is not installed (``pip install 'jaxgrid[wandb]'``); raised here, before
            a run starts.
    """

    def __init__(self, project: str | None = None, group: str | None = None, mode: str | None = None):
        if importlib.util.find_spec("wandb") is None:
            raise ImportError("--track wandb needs the wandb package: pip install 'jaxgrid[wandb]'")
        self.project, self.group, self.mode = project, group, mode
        self.worker = BackgroundWorker("wandb")
        self.run: RunInfo | None = None
        self.wandb_run: Any = None

    def start(self, run: RunInfo) -> None:
        self.run = run
        self.worker.submit(self._init)  # W&B starts a service process: seconds, off the main thread

    def _init(self) -> None:
        import wandb

        run = self.run
        config = {**run.config, "seeds": list(run.seeds), "config_labels": list(run.labels)}
        kwargs: dict[str, Any] = dict(
            project=self.project, group=self.group or run.env_id, name=run.name, config=config,
            job_type="train",
        )
        if run.run_dir is not None:
            kwargs["dir"] = str(run.run_dir)
        if self.mode is not None:
            kwargs["mode"] = self.mode
        self.wandb_run = wandb.init(**kwargs)

    def log_chunk(self, chunk: Chunk) -> None:
        if self.run is not None:
            self.worker.submit(lambda: self._log(chunk))

    def _log(self, chunk: Chunk) -> None:
        for u, (update, steps) in enumerate(zip(chunk.updates, chunk.env_steps)):
            self.wandb_run.log(wandb_row(chunk.metrics, u, int(steps), self.run), step=int(update))

    def close(self) -> None:
        if self.worker.started:
            self.worker.submit(lambda: self.wandb_run is not None and self.wandb_run.finish())
        self.worker.join()
        self.wandb_run = None


def wandb_row(metrics: Mapping[str, np.ndarray], u: int, env_steps: int, run: RunInfo) -> dict[str, float]:
    """The W&B values of update ``u`` of a chunk (see ``WandbLogger``)."""
    row: dict[str, float] = {"env_steps": env_steps}
    many = len(run.labels) > 1
    for name, values in metrics.items():
        if name == "env_steps":
            continue
        for c in range(values.shape[0]):
            prefix = f"{name}/config{c}/" if many else f"{name}/"
            for s, seed in enumerate(run.seeds):
                row[f"{prefix}seed{seed}"] = float(values[c, s, u])
            row[f"{prefix}median"] = float(np.nanmedian(values[c, :, u]))
    return row


class ProgressBarLogger:
    """A tqdm bar on stderr: updates, env steps over all runs, env steps/s and the latest mean
    episode return. As a logger it advances after every chunk; it is also a ``ProgressFn``
    (``bar(update_index, env_steps, episode_return [G, S])``) for the single fused program of
    ``train.train``, which calls it from inside the program.

    The time left (``eta``) is the updates left at the rate since the first report: tqdm's own
    estimate would count the first chunk, which includes the compile (seconds to minutes), as
    training time. ``-`` until a second report gives a rate.

    Args:
        num_updates: updates of the run.
        runs: configs x seeds (env steps advance this many times faster than one run's).
        clock: seconds, monotonic (``time.perf_counter``; a fake one in tests).
    """

    def __init__(self, num_updates: int, runs: int, clock: Callable[[], float] = time.perf_counter):
        from tqdm import tqdm

        self.bar = tqdm(total=num_updates, mininterval=0.25, file=sys.stderr,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self.runs = runs
        self.clock = clock
        self.start_time: float | None = None
        self.start_steps = 0
        self.start_updates = 0
        self.last_return = float("nan")

    def start(self, run: RunInfo) -> None:
        pass

    def log_chunk(self, chunk: Chunk) -> None:
        self(chunk.end - 1, int(chunk.env_steps[-1]), chunk.metrics["episode_return"][..., -1])

    def __call__(self, index: Any, env_steps: Any, episode_return: Any) -> None:
        now = self.clock()
        steps, done = int(env_steps) * self.runs, int(index) + 1
        if self.start_time is None:
            self.start_time, self.start_steps, self.start_updates = now, steps, done
        returns = np.asarray(episode_return)
        if np.isfinite(returns).any():
            self.last_return = float(np.nanmean(returns))
        # Rates are measured from the first report on (its chunk includes the compile): none yet
        # at the first. The postfix is set before the update, which draws it (else it lags a chunk).
        elapsed = max(now - self.start_time, 1e-9)
        rate = (steps - self.start_steps) / elapsed
        timed = done - self.start_updates
        eta = self.bar.format_interval((self.bar.total - done) * elapsed / timed) if timed > 0 else "-"
        self.bar.set_postfix(  # in this order (keyword arguments would be sorted)
            {"eta": eta, "env_steps": f"{steps:,}",
             "steps_per_s": f"{rate:,.0f}" if steps > self.start_steps else "-",
             "ret": f"{self.last_return:.3f}"}, refresh=False,
        )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class ProgressCallback:
    """A ``ProgressFn`` (``fn(update_index, env_steps, episode_return [G, S])``) as a logger:
    called after every chunk with the chunk's last update (restored history is skipped)."""

    def __init__(self, fn: Callable[[Any, Any, Any], None]):
        self.fn = fn

    def start(self, run: RunInfo) -> None:
        pass

    def log_chunk(self, chunk: Chunk) -> None:
        if not chunk.restored:
            self.fn(chunk.end - 1, int(chunk.env_steps[-1]), chunk.metrics["episode_return"][..., -1])

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------------
def run_dir_loggers(tensorboard: bool = True) -> list[Logger]:
    """The loggers of a run directory: curves.csv, learning_curve.png and (unless told not to)
    TensorBoard."""
    loggers: list[Logger] = [CSVLogger(), CurvePlotLogger()]
    if tensorboard:
        loggers.append(TensorBoardLogger())
    return loggers


def make_trackers(track: Sequence[str], wandb_project: str | None = None,
                  wandb_group: str | None = None) -> list[Logger]:
    """Experiment trackers by name (``--track wandb``).

    Raises:
        ValueError: an unknown tracker name (listing the valid ones).
        ImportError: a tracker's package is missing.
    """
    unknown = sorted(set(track) - set(TRACKERS))
    if unknown:
        raise ValueError(f"--track: unknown tracker(s) {unknown}; valid: {', '.join(TRACKERS)}")
    return [WandbLogger(wandb_project, wandb_group)] if "wandb" in track else []


def log_result(logger: Logger, result: Any) -> None:
    """Starts ``logger`` and logs a finished ``train.train`` result's whole curves as one chunk
    (for runs without a run directory, whose program has no chunks); the caller closes it."""
    config = result.config
    grid = {k: np.asarray(v).reshape(config.num_grid_points, config.num_seeds, -1) for k, v in result.metrics.items()}
    logger.start(RunInfo.from_config(config))
    logger.log_chunk(Chunk(0, grid, config.batch_size))


def append_chunk(history: dict[str, np.ndarray] | None, chunk: Chunk,
                 names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``history`` (name -> ``[G, S, u]``) extended by the chunk's updates (of ``names`` only)."""
    names = list(chunk.metrics) if names is None else names
    new = {k: np.asarray(chunk.metrics[k], np.float32) for k in names}
    if history is None:
        return new
    return {k: np.concatenate([history[k], new[k]], axis=-1) for k in names}


def write_curves_csv(
    path: str | Path,
    metrics: Mapping[str, Any],
    seeds: Sequence[int],
    config_labels: Sequence[str],
    update_offset: int = 0,
) -> None:
    """Writes one row per (config, seed, update) with every metric as a column, atomically.

    Args:
        metrics: name -> ``[G, S, U]`` (or ``[S, U]``).
        update_offset: update number of the first column minus one.
    """
    from train.tracking import as_grid

    grid = as_grid(metrics)
    names = sorted(grid)
    num_configs, num_seeds, num_updates = grid[names[0]].shape
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["config", "seed", "update", *names])
    columns = [grid[n] for n in names]
    for c in range(num_configs):
        for s in range(num_seeds):
            for u in range(num_updates):
                writer.writerow(
                    [config_labels[c], seeds[s], update_offset + u + 1, *(repr(float(col[c, s, u])) for col in columns)]
                )
    atomic_write_bytes(path, buf.getvalue().encode())


def _import_matplotlib() -> None:
    """Imports what ``tracking.plot_learning_curves`` needs (~0.3 s), ahead of the drawing."""
    import importlib

    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        importlib.import_module(name)
