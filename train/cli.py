"""``jaxgrid-train``: train PPO over seeds (and sweeps) and print the seed table.

    jaxgrid-train                                   # GridWorld-4x4-v0, 8 seeds, prints the table
    jaxgrid-train --env-id CartPole-v1 --seeds 0-15 --total-timesteps 500000
    jaxgrid-train --sweep learning_rate 1e-3 3e-4 ent_coef 0 0.01
    jaxgrid-train --env-kwargs max_steps_in_episode=100 --quiet
    jaxgrid-train eval runs/<name>                  # evaluate a run directory

Every flag is parsed by tyro from the dataclasses below (their docstrings are the help): the
``train`` command (the default: ``jaxgrid-train --env-id X`` is ``jaxgrid-train train --env-id X``)
nests ``RunOptions`` (run directory, loggers), ``DeviceOptions`` (devices, hosts) and ``PPOFlags``
(every ``PPOConfig`` field); ``eval`` is ``EvalCommand``.

Presets: ``--env-id ID`` takes ``train/presets.py``'s preset for ``ID`` as the defaults of the
``PPOConfig`` flags, and ``--resume RUN_DIR`` the run's own config; a flag given still wins. tyro
parses twice for this: once with ``PPOConfig``'s defaults, to learn ``--env-id``, ``--no-preset``
and ``--resume``, and again with the defaults they choose (``parse_train``).

NOTE: this module must not import jax at import time: the CPU device count is fixed when jax
initialises, so ``main`` sets it first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import os
import sys
from typing import Annotated, Any, Literal, Union

import tyro

from train.config import PPOConfig

PROG = "jaxgrid-train"
SUBCOMMANDS = ("train", "eval")
# Flags that take a list and add up when repeated; every other flag may be given once.
_REPEATABLE = ("--seeds", "--env-kwargs")


def parse_seeds(tokens: list[str]) -> tuple[int, ...]:
    """``["0-3,8", "10"]`` -> ``(0, 1, 2, 3, 8, 10)``; order kept (``PPOConfig`` rejects repeats).

    Raises:
        ValueError: a part that is not an int or a range ``LO-HI``, or an empty range; the
            message names ``--seeds``.
    """
    seeds: list[int] = []
    for token in tokens:
        for part in token.replace(",", " ").split():
            try:
                if "-" in part[1:]:
                    lo_s, hi_s = part.split("-", 1)
                    lo, hi = int(lo_s), int(hi_s)
                    if hi < lo:
                        raise ValueError(f"--seeds range {part!r} is empty (end < start)")
                    seeds.extend(range(lo, hi + 1))
                else:
                    seeds.append(int(part))
            except ValueError as err:
                if "--seeds" in str(err):
                    raise
                raise ValueError(
                    f"--seeds: {part!r} is not a seed; give non-negative ints or ranges, e.g. "
                    "--seeds 0-15, --seeds 0-3,8 or --seeds 0 1 2"
                ) from None
    return tuple(seeds)


def parse_env_kwargs(tokens: list[str]) -> dict[str, Any]:
    """``["max_steps_in_episode=100", "obs='rgb'"]`` -> a dict of python literals (else strings)."""
    from jaxgrid import parse_overrides  # after configure_host_devices: jaxgrid imports jax

    return parse_overrides(tokens, flag="--env-kwargs")


def configure_host_devices(num_devices: int | None = None) -> tuple[int, bool]:
    """Asks for one CPU host device per core; call before jax initialises its backend.

    Respects a user's ``JAX_NUM_CPU_DEVICES`` or ``--xla_force_host_platform_device_count``.

    Returns:
        ``(count, set_here)``: the requested count and whether this call set it.
    """
    if os.environ.get("JAX_NUM_CPU_DEVICES"):
        return int(os.environ["JAX_NUM_CPU_DEVICES"]), False
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        count = int(flags.split("xla_force_host_platform_device_count=")[1].split()[0])
        return count, False
    count = num_devices or (os.cpu_count() or 1)
    os.environ["JAX_NUM_CPU_DEVICES"] = str(count)
    return count, True


def check_repeated_flags(argv: list[str]) -> None:
    """Refuses a flag given twice (tyro would silently keep the last), except the list flags in
    ``_REPEATABLE``, which add up.

    Raises:
        ValueError: naming the flag.
    """
    seen: set[str] = set()
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0].replace("_", "-")
        if flag in _REPEATABLE:
            continue
        if flag in seen:
            raise ValueError(f"{flag} is given more than once; give each flag once "
                             f"(only {' and '.join(_REPEATABLE)} add up when repeated)")
        seen.add(flag)


def _check_at_least(name: str, value: int | None, low: int) -> None:
    """Refuses ``value < low`` for the flag of field ``name`` (``None``: not given)."""
    if value is not None and value < low:
        flags = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])  # both spellings work
        raise ValueError(f"argument {'/'.join(flags)}: must be an int >= {low}, got {value}")


# ------------------------------------------------------------------------------------------------
# The flags: tyro builds the parser and the help from these dataclasses and their docstrings.
def _arg(kind: Any, metavar: str, default_hint: str | None = None) -> Any:
    """``kind`` shown as ``--flag METAVAR``, its default described by ``default_hint``."""
    return Annotated[kind, tyro.conf.arg(metavar=metavar, help_behavior_hint=default_hint)]


# A list flag given as tokens (``--seeds 0-3 8``) that adds up when repeated; ``()``: not given.
_Repeatable = tyro.conf.UseAppendAction[tuple[tuple[str, ...], ...]]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Run directory and loggers (README "Run directories")."""

    out: str = "runs"
    """Parent of run directories."""
    name: _arg(str | None, "NAME", "(default: <env_id>__<date-time>__<random>)") = None
    """Run directory name, one plain name inside --out."""
    resume: _arg(str | None, "RUN_DIR", "(default: a new run)") = None
    """Continue RUN_DIR from its newest checkpoint that verifies; its config is the default of every
    config flag, and a config flag given must match it."""
    overwrite: bool = False
    """Replace an existing run of the same name (only a jaxgrid run, and only once the new run has
    started)."""
    checkpoint_every: _arg(int | None, "N", "(default: about a tenth of the run)") = None
    """Updates between checkpoints."""
    run_dir: bool = True
    """Write a run directory (--no-run-dir: write nothing; just train and print the table)."""
    tensorboard: bool = True
    """Write TensorBoard event files in the run directory."""
    track: _arg(tuple[str, ...], "TRACKER", "(default: none)") = ()
    """Also log to these trackers: wandb (Weights & Biases; pip install 'jaxgrid[wandb]';
    WANDB_MODE=offline logs without network)."""
    wandb_project: _arg(str | None, "PROJECT", "(default: W&B's)") = None
    """W&B project (with --track wandb)."""
    wandb_group: _arg(str | None, "GROUP", "(default: none)") = None
    """W&B group (with --track wandb)."""
    quiet: bool = False
    """No progress bar."""

    def check(self) -> None:
        """Raises ``ValueError`` for a number out of range (``--name`` is checked by ``parse_train``)."""
        _check_at_least("checkpoint_every", self.checkpoint_every, 1)


@dataclasses.dataclass(frozen=True)
class DeviceOptions:
    """Devices and hosts (README "Scaling out"; with many hosts every process runs the same
    command; or set JAXGRID_COORDINATOR / JAXGRID_NUM_PROCESSES / JAXGRID_PROCESS_ID /
    JAXGRID_DISTRIBUTED=auto)."""

    devices: _arg(int | None, "N", "(default: one per core, or JAX_NUM_CPU_DEVICES / XLA_FLAGS if set)") = None
    """Host CPU devices to shard the seeds over."""
    env_parallel: bool = False
    """Split each seed's envs over the devices (one agent, data-parallel, gradients averaged with
    pmean) instead of sharding the seeds."""
    cache: bool = True
    """Use jax's persistent compilation cache (in ~/.cache/jaxgrid)."""
    coordinator: _arg(str | None, "HOST:PORT", "(default: one process)") = None
    """HOST:PORT of process 0 (jax.distributed.initialize)."""
    num_processes: _arg(int | None, "N", "(with --coordinator)") = None
    """Processes in the job."""
    process_id: _arg(int | None, "I", "(with --coordinator)") = None
    """This process, 0..N-1 (only process 0 writes the run directory)."""
    distributed: _arg(Literal["auto"] | None, "auto", "(default: off)") = None
    """auto: let jax detect the cluster (Slurm, Kubernetes, MPI)."""
    distributed_timeout: _arg(int, "SECONDS") = 30
    """Fail if the processes have not all joined after this many seconds."""

    def check(self) -> None:
        """Raises ``ValueError`` for a number out of range."""
        for name, low in (("devices", 1), ("num_processes", 1), ("process_id", 0), ("distributed_timeout", 1)):
            _check_at_least(name, getattr(self, name), low)


@dataclasses.dataclass(frozen=True)
class PPOFlags(PPOConfig):
    """PPOConfig's fields (train/config.py). Their defaults: --env-id's preset unless --no-preset,
    or with --resume the run's config."""

    seeds: _arg(_Repeatable, "SEEDS", "(repeatable; default: 0-7, or the run's with --resume)") = ()
    """Seeds to train side by side, as ints or ranges: 0-15, 0-3,8, 0 1 2 (seed k starts from
    jax.random.PRNGKey(k)); a repeated --seeds adds to the list."""
    env_kwargs: _arg(_Repeatable, "KEY=VALUE", "(repeatable; default: none, or the run's with --resume)") = ()
    """Env overrides as python literals, e.g. max_steps_in_episode=100: keyword arguments of
    jaxgrid.make, or gymnax EnvParams fields; a repeated --env-kwargs adds to them."""

    def __post_init__(self) -> None:
        """Nothing: the values are checked together by ``to_config``."""

    @classmethod
    def with_defaults(cls, values: dict[str, Any]) -> PPOFlags:
        """Flags whose defaults are ``values`` (``PPOConfig`` fields; not checked here)."""
        return cls(**{k: v for k, v in values.items() if k not in ("seeds", "env_kwargs")})

    def to_config(self, resumed: PPOConfig | None = None) -> PPOConfig:
        """The checked ``PPOConfig`` of these flags; ``--seeds`` / ``--env-kwargs`` not given: the
        ``resumed`` run's, else ``PPOConfig``'s defaults.

        Raises:
            ValueError: a bad seed, env override or config value (``PPOConfig``'s validation).
        """
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(PPOConfig)}
        for name, parse in (("seeds", parse_seeds), ("env_kwargs", parse_env_kwargs)):
            if values[name]:
                values[name] = parse(list(itertools.chain.from_iterable(values[name])))
            elif resumed is not None:
                values[name] = getattr(resumed, name)
            else:
                del values[name]
        return PPOConfig(**values)


@dataclasses.dataclass(frozen=True)
class TrainCommand:
    """Train PPO over seeds (and sweeps) and print the seed table (the default command).

    Evaluate a run directory with: jaxgrid-train eval RUN_DIR (see jaxgrid-train eval --help).
    """

    run: tyro.conf.OmitArgPrefixes[RunOptions] = RunOptions()
    devices: tyro.conf.OmitArgPrefixes[DeviceOptions] = DeviceOptions()
    config: tyro.conf.OmitArgPrefixes[PPOFlags] = PPOFlags()
    preset: bool = True
    """Use --env-id's preset (train/presets.py) as the config flags' defaults (--no-preset:
    PPOConfig's defaults); a flag given overrides a preset field either way."""

    def check(self) -> None:
        """Raises ``ValueError`` for a run or device option out of range."""
        self.run.check()
        self.devices.check()


@dataclasses.dataclass(frozen=True)
class EvalCommand:
    """Evaluate a run: greedy and stochastic returns per seed, success, fraction of the optimum, and
    a GIF of a greedy episode (written into the run directory)."""

    run_dir: tyro.conf.Positional[_arg(str, "RUN_DIR")]
    """The run directory."""
    episodes: _arg(int | None, "N", "(default: the run's eval_episodes choice)") = None
    """Fresh episodes per seed."""
    gif: bool = True
    """Write the greedy-episode GIF."""

    def check(self) -> None:
        """Raises ``ValueError`` for ``--episodes`` < 1."""
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")


Command = Union[
    Annotated[TrainCommand, tyro.conf.subcommand("train")],
    Annotated[EvalCommand, tyro.conf.subcommand("eval")],
]


# ------------------------------------------------------------------------------------------------
# Parsing
def _tyro(argv: list[str], default: TrainCommand | None = None, **kwargs: Any):
    """``tyro.cli`` of ``Command`` (``default``: the train command's defaults)."""
    # NOTE: "train" is implied here rather than by tyro's default subcommand: tyro 1.0 selects a
    # default subcommand from its flags (CascadeSubcommandArgs) but not from a --no-X flag.
    args = argv if argv[:1] and argv[0] in SUBCOMMANDS else ["train", *argv]
    return tyro.cli(Command, args=args, prog=PROG, default=default or TrainCommand(), **kwargs)


def parse_command(argv: list[str]) -> TrainCommand | EvalCommand:
    """The command and its options, parsed by tyro with ``PPOConfig``'s defaults (``parse_train``
    parses the config flags again with the preset's). ``--help``, a typo and a malformed value: tyro
    prints the help or the error and exits (2 for an error).

    Raises:
        ValueError: a flag given twice, or a number out of range.
    """
    check_repeated_flags(argv)
    try:  # NOTE: quiet and without --help: the parse below prints the help or the error
        with contextlib.redirect_stderr(io.StringIO()):  # tyro prints a bad value's error regardless
            command, unknown = _tyro(argv, add_help=False, return_unknown_args=True, console_outputs=False)
    except SystemExit:  # a malformed value or a missing one (eval's RUN_DIR): tyro says which below
        command, unknown = None, [None]
    if unknown:  # --help, a typo or an error: tyro prints the help (with the preset's defaults) or why
        preset = preset_defaults(command) if isinstance(command, TrainCommand) else {}
        _tyro(argv, TrainCommand(config=PPOFlags.with_defaults(preset)))
        sys.exit(2)  # not reached: tyro exits
    command.check()
    return command


def preset_defaults(command: TrainCommand) -> dict[str, Any]:
    """The ``PPOConfig`` fields that ``--env-id``'s preset sets, with ``env_id`` (``{}``: the id's
    preset is ``PPOConfig``'s defaults or it has none, or ``--no-preset`` or ``--resume`` is given)."""
    from train import presets

    overrides = presets.preset_overrides(command.config.env_id)
    if not command.preset or command.run.resume is not None or not overrides:
        return {}
    return {"env_id": command.config.env_id, **overrides}


def parse_train(argv: list[str], command: TrainCommand) -> tuple[TrainCommand, PPOConfig]:
    """``command`` (``parse_command``'s) parsed again with the defaults its ``--resume`` or
    ``--env-id``'s preset chooses, and its checked ``PPOConfig``. Imports jax: call after
    ``configure_host_devices``.

    Raises:
        ValueError, FileNotFoundError: a bad ``--name``, a missing or unreadable run to resume, a
            bad config (``PPOConfig``'s validation, ``--env-kwargs`` against ``--env-id``'s env).
    """
    if command.run.name is not None:
        from train.rundir import check_run_name

        check_run_name(command.run.name)
    resumed = None
    if command.run.resume is not None:
        from train.runs import load_run_config

        resumed = load_run_config(command.run.resume)
        defaults = {f.name: getattr(resumed, f.name) for f in dataclasses.fields(PPOConfig)}
    else:
        defaults = preset_defaults(command)
        if defaults:
            from train import presets

            print(f"{PROG}: {presets.describe_preset(defaults['env_id'])}", file=sys.stderr)
    command = _tyro(argv, TrainCommand(config=PPOFlags.with_defaults(defaults)))
    config = command.config.to_config(resumed)
    if resumed is None and defaults.get("env_kwargs"):
        # A preset's env_kwargs (e.g. FourRoomsRandom-v0's egocentric view), with --env-kwargs on top.
        config = config.replace(env_kwargs={**defaults["env_kwargs"], **config.env_kwargs})
    return command, config


# ------------------------------------------------------------------------------------------------
# Running
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jaxgrid-train``. Exit codes: 0 done, 1 an OS error (the message says
    what is still safe), 2 bad input (nothing was written), 130 interrupted (resumable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command = parse_command(argv)
    except ValueError as err:
        return _error(err, prog=f"{PROG} eval" if argv[:1] == ["eval"] else PROG)
    except KeyboardInterrupt:
        return _interrupted(None)
    try:
        return run_eval(command) if isinstance(command, EvalCommand) else run_train(argv, command)
    except KeyboardInterrupt:
        # Ctrl-C outside a run's chunk loop (imports, config, compiling without a run directory).
        # NOTE: train_in_run_dir turns its own Ctrl-Cs into RunInterrupted, with their hint.
        return _interrupted(command.run.resume if isinstance(command, TrainCommand) else None)


def _interrupted(resume: str | None) -> int:
    hint = (f"{resume} is unchanged; resume with: {PROG} --resume {resume}" if resume
            else "no run directory was written; run the command again")
    print(f"\n{PROG}: interrupted; {hint}", file=sys.stderr)
    return 130


def _error(err: object, code: int = 2, prog: str = PROG) -> int:
    print(f"{prog}: error: {err}", file=sys.stderr)
    return code


def eval_main(argv: list[str]) -> int:
    """``jaxgrid-train eval RUN_DIR [--episodes N] [--no-gif]``: an exit code."""
    try:
        command = parse_command(["eval", *argv])
    except ValueError as err:
        return _error(err, prog=f"{PROG} eval")
    return run_eval(command)


def run_eval(command: EvalCommand) -> int:
    """Greedy and stochastic returns per seed, and a GIF, of ``command.run_dir``; an exit code."""
    configure_host_devices(1)
    from train.checkpoint import CheckpointError
    from train.evaluate import evaluate_run, format_eval

    try:
        out = evaluate_run(command.run_dir, episodes=command.episodes, gif=command.gif)
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        return _error(err, prog=f"{PROG} eval")
    print(format_eval(out))  # printed even when its files could not be written
    for line in out.get("not_written", []):
        print(f"{PROG} eval: error: {line}", file=sys.stderr)
    return 1 if out.get("not_written") else 0


def initialize_distributed(devices: DeviceOptions) -> bool:
    """Joins a multi-process jax job if the flags (or JAXGRID_* env vars) ask for one.

    Must run before any other jax call. Returns whether this is a multi-process run.
    """
    from train import distributed

    timeout = devices.distributed_timeout
    if devices.coordinator is not None or devices.num_processes is not None or devices.process_id is not None:
        # NOTE: a job that does not form in time aborts the process from C++ (DEADLINE_EXCEEDED),
        # so say first what is being attempted.
        print(f"{PROG}: joining {devices.num_processes} processes at {devices.coordinator} as "
              f"process {devices.process_id} (timeout {timeout} s)", file=sys.stderr, flush=True)
        distributed.initialize(
            devices.coordinator, devices.num_processes, devices.process_id, timeout_seconds=timeout
        )
        return True
    if devices.distributed == "auto":
        distributed.initialize(timeout_seconds=timeout)
        return True
    return distributed.initialize_from_env(timeout_seconds=timeout)


def _enable_compilation_cache() -> str:
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "jaxgrid", "jax-compilation-cache")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def run_train(argv: list[str], command: TrainCommand) -> int:
    """Sets up jax's devices (and hosts), parses the config, trains and reports; an exit code."""
    # Before jax initialises: one host device per core (unless the user chose).
    # NOTE: XLA's SPMD partitioner warns (C++ log) about the progress callback's read of sharded
    # metrics; the CLI keeps its output to errors unless the user set a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    devices = command.devices
    count, set_here = configure_host_devices(devices.devices)
    try:
        many_hosts = initialize_distributed(devices)
    except (ValueError, RuntimeError) as err:  # bad flags, or the job did not form in time
        return _error(f"jax.distributed.initialize failed: {err}")
    try:
        command, config = parse_train(argv, command)
    except (ValueError, FileNotFoundError) as err:
        return _error(err)
    import jax

    n_dev = len(jax.devices()) if devices.devices is None else devices.devices
    if n_dev > len(jax.devices()):
        return _error(f"--devices {n_dev} but jax sees {len(jax.devices())} "
                      f"{jax.devices()[0].platform} device(s) (JAX_NUM_CPU_DEVICES="
                      f"{os.environ.get('JAX_NUM_CPU_DEVICES')}); valid: 1..{len(jax.devices())}")
    if set_here and count > 1:
        print(f"{PROG}: using {count} host CPU devices (one per core; set "
              "JAX_NUM_CPU_DEVICES or --devices to change)", file=sys.stderr)
    if many_hosts:  # the mesh must span every process's devices
        n_dev = len(jax.devices())
    if devices.cache:
        _enable_compilation_cache()
    return _run(config, command, n_dev, many_hosts)


def _run(config: PPOConfig, command: TrainCommand, n_dev: int, many_hosts: bool) -> int:
    """Trains (into a run directory unless --no-run-dir) and prints the tables; an exit code."""
    import jax

    from train import loggers

    opts = command.run
    print(
        f"{PROG}: {config.env_id}, {config.num_seeds} seed(s) x {config.num_grid_points} "
        f"config(s), {config.num_updates} updates of {config.batch_size} env steps, "
        f"{n_dev} {jax.devices()[0].platform} device(s)"
        + (f" in {jax.process_count()} processes (this is process {jax.process_index()})"
           if many_hosts else "")
        + (", envs split over devices" if command.devices.env_parallel else ""),
        file=sys.stderr, flush=True,
    )
    # NOTE: every process must compile the same program, so with many hosts no program has the
    # bar's host callback (--no-run-dir); in a run directory process 0 shows it from the host.
    no_bar = opts.quiet or (many_hosts and (not opts.run_dir or jax.process_index() != 0))
    try:  # before a run directory is created
        trackers = loggers.make_trackers(opts.track, opts.wandb_project, opts.wandb_group)
    except (ValueError, ImportError) as err:
        return _error(err)
    bar = None if no_bar else loggers.ProgressBarLogger(config.num_updates, config.num_seeds * config.num_grid_points)
    run_loggers = loggers.LoggerGroup(
        [*loggers.run_dir_loggers(opts.tensorboard), *trackers, *([bar] if bar else [])]
    )
    try:
        trained = _train(config, command, n_dev, bar, trackers, run_loggers)
    finally:
        if bar is not None:
            bar.close()
    if isinstance(trained, int):
        run_loggers.close()
        return trained
    result, run_dir = trained
    _report(result, run_dir, config)
    run_loggers.close()  # the plot, TensorBoard and W&B finish after the tables are shown
    _print_footer(result, run_dir, resumed=opts.resume is not None)
    return 0


def _train(config: PPOConfig, command: TrainCommand, n_dev: int, bar, trackers, run_loggers):
    """``(result, run_dir or None)``, or an exit code after printing why training stopped."""
    from train import loggers, report
    from train.checkpoint import CheckpointError
    from train.rundir import RunDirExistsError, RunIOError
    from train.runlock import RunLockedError
    from train.runs import ConfigMismatchError, RunInterrupted, train_in_run_dir
    from train.trainer import train

    opts, env_parallel = command.run, command.devices.env_parallel
    try:
        try:
            if not opts.run_dir:
                result = train(config, progress=bar, num_devices=n_dev, env_parallel=env_parallel)
                loggers.log_result(loggers.LoggerGroup(trackers), result)
                return result, None
            return train_in_run_dir(
                config, out=opts.out, name=opts.name, resume=opts.resume, overwrite=opts.overwrite,
                checkpoint_every=opts.checkpoint_every, num_devices=n_dev,
                env_parallel=env_parallel, loggers=run_loggers.loggers,
            )
        finally:  # before any message below, so that it starts a line of its own
            if bar is not None:
                bar.close()
    except RunInterrupted as stop:
        print(f"{PROG}: {stop}", file=sys.stderr)
        return 130
    except RunIOError as err:
        if err.result is not None:  # training finished: show it although its files are not written
            print(report.format_table(report.summarize_result(err.result)))
        return _error(err, 1)
    except (RunDirExistsError, RunLockedError, ConfigMismatchError, CheckpointError, ValueError) as err:
        return _error(err)
    except OSError as err:  # any other OS error: one line, not a traceback
        return _error(f"{err.filename or ''}: {err.strerror or err}", 1)


def _report(result, run_dir, config: PPOConfig) -> None:
    """Prints the seed table and the final evaluation (issue 14: greedy and stochastic policies,
    success, fraction of the optimum)."""
    from train import report
    from train.evaluate import evaluate_result, format_eval

    print(report.format_table(report.summarize_result(result)), flush=True)
    evaluation = evaluate_result(result, run_dir)
    print(format_eval(evaluation), flush=True)
    for line in evaluation.get("not_written", []):
        print(f"{PROG}: warning: {line}", file=sys.stderr)


def _print_footer(result, run_dir, resumed: bool) -> None:
    """The run directory's files and the timings."""
    if run_dir is not None:
        written = ["curves.csv", "results.json", "learning_curve.png", "tb/", "wandb/", "checkpoints/"]
        written = [w for w in written if (run_dir / w.rstrip("/")).exists()]
        print(f"run directory: {run_dir}  ({', '.join(written)})")
    this = " this invocation" if resumed else ""
    print(
        f"compile {result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s, "
        f"{result.env_steps_per_second:,.0f} env steps/s ({result.env_steps:,} env steps{this})"
    )


if __name__ == "__main__":
    sys.exit(main())
