"""``jaxgrid-train``: train PPO over seeds (and sweeps) and print the seed table.

    jaxgrid-train                                   # GridWorld-4x4-v0, 8 seeds, prints the table
    jaxgrid-train --env-id CartPole-v1 --seeds 0-15 --total-timesteps 500000
    jaxgrid-train --sweep learning_rate 1e-3 3e-4 ent_coef 0 0.01
    jaxgrid-train --env-kwargs max_steps_in_episode=100 --quiet

Every ``PPOConfig`` field is a flag (parsed by tyro). Extra flags handled here: ``--seeds`` accepts
ranges (``0-15``, ``0-3,8``), ``--env-kwargs KEY=VALUE ...``, ``--quiet`` (no progress bar),
``--devices N`` (host devices to shard seeds over; default one per core), ``--no-cache``,
``--env-parallel`` (split each seed's envs over the devices instead) and, for many hosts,
``--coordinator HOST:PORT --num-processes N --process-id I`` or ``--distributed auto``.

NOTE: this module must not import jax at import time: the CPU device count is fixed when jax
initialises, so ``main`` sets it first.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

_EXTRA_HELP = """\
extra options (handled before the config flags):
  --seeds SPEC ...       seeds as ints or ranges: 0-15, 0-3,8, 0 1 2 (a repeated --seeds adds to
                         the list; any other flag may be given once)
  --env-kwargs K=V ...   env overrides (python literals), e.g. max_steps_in_episode=100 (adds up
                         like --seeds)
  --quiet                no progress bar
  --no-preset            with --env-id: PPOConfig's defaults instead of the id's preset
                         (train/presets.py; any flag overrides a preset field either way)
  --devices N            host CPU devices to shard the seeds over (default: one per core, or
                         JAX_NUM_CPU_DEVICES / XLA_FLAGS if you set them)
  --no-cache             do not use jax's persistent compilation cache
  --env-parallel         split each seed's envs over the devices (one agent, data-parallel,
                         gradients averaged with pmean) instead of sharding the seeds

many hosts (see README "Scaling out"; every process runs the same command):
  --coordinator HOST:PORT   address of process 0 (jax.distributed.initialize)
  --num-processes N         processes in the job
  --process-id I            this process, 0..N-1 (only process 0 writes the run directory)
  --distributed auto        let jax detect the cluster instead (Slurm, Kubernetes, MPI)
  --distributed-timeout S   fail if the processes have not all joined after S seconds (30)
  (or JAXGRID_COORDINATOR / JAXGRID_NUM_PROCESSES / JAXGRID_PROCESS_ID / JAXGRID_DISTRIBUTED=auto)

run directory (see README "Run directories"):
  --out DIR              parent of run directories (default: runs)
  --name NAME            run directory name, one plain name inside --out (default:
                         <env_id>__<date-time>__<random>)
  --resume RUN_DIR       continue RUN_DIR from its newest checkpoint that verifies (config flags,
                         if any, must match)
  --overwrite            replace an existing run of the same name (only a jaxgrid run, and only
                         once the new run has started)
  --checkpoint-every N   updates between checkpoints (default: about a tenth of the run)
  --no-tensorboard       do not write TensorBoard event files
  --track wandb          also log to Weights & Biases (pip install 'jaxgrid[wandb]'; WANDB_MODE=offline
                         logs without network), with --wandb-project P and --wandb-group G
  --no-run-dir           write nothing; just train and print the table

evaluate a run:  jaxgrid-train eval RUN_DIR [--episodes N] [--no-gif]
"""


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


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {value}")
        return value

    return parse


# Flags that take a list and add up when repeated; every other flag may be given once.
_REPEATABLE = ("--seeds", "--env-kwargs")


def check_repeated_flags(argv: list[str]) -> None:
    """Refuses a flag given twice (argparse and tyro would silently keep the last), except the
    list flags in ``_REPEATABLE``, which add up.

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


class _OneLineErrors(argparse.ArgumentParser):
    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _split_extras(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = _OneLineErrors(prog="jaxgrid-train", add_help=False)
    parser.add_argument("--seeds", nargs="+", action="extend", default=None)
    parser.add_argument("--env-kwargs", "--env_kwargs", nargs="+", action="extend", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--devices", type=_int_at_least(1), default=None)
    parser.add_argument("--no-cache", "--no_cache", action="store_true")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--name", default=None)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--checkpoint-every", "--checkpoint_every", type=_int_at_least(1), default=None)
    parser.add_argument("--no-tensorboard", "--no_tensorboard", action="store_true")
    parser.add_argument("--track", nargs="+", default=[])
    parser.add_argument("--wandb-project", "--wandb_project", default=None)
    parser.add_argument("--wandb-group", "--wandb_group", default=None)
    parser.add_argument("--no-run-dir", "--no_run_dir", action="store_true")
    parser.add_argument("--env-parallel", "--env_parallel", action="store_true")
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--num-processes", "--num_processes", type=_int_at_least(1), default=None)
    parser.add_argument("--process-id", "--process_id", type=_int_at_least(0), default=None)
    parser.add_argument("--distributed", choices=["auto"], default=None)
    parser.add_argument("--distributed-timeout", "--distributed_timeout", type=_int_at_least(1), default=30)
    return parser.parse_known_args(argv)


def initialize_distributed(extras: argparse.Namespace) -> bool:
    """Joins a multi-process jax job if the flags (or JAXGRID_* env vars) ask for one.

    Must run before any other jax call. Returns whether this is a multi-process run.
    """
    from train import distributed

    timeout = extras.distributed_timeout
    if extras.coordinator is not None or extras.num_processes is not None or extras.process_id is not None:
        # NOTE: a job that does not form in time aborts the process from C++ (DEADLINE_EXCEEDED),
        # so say first what is being attempted.
        print(f"jaxgrid-train: joining {extras.num_processes} processes at {extras.coordinator} as "
              f"process {extras.process_id} (timeout {timeout} s)", file=sys.stderr, flush=True)
        distributed.initialize(
            extras.coordinator, extras.num_processes, extras.process_id, timeout_seconds=timeout
        )
        return True
    if extras.distributed == "auto":
        distributed.initialize(timeout_seconds=timeout)
        return True
    return distributed.initialize_from_env(timeout_seconds=timeout)


def eval_main(argv: list[str]) -> int:
    """``jaxgrid-train eval RUN_DIR``: greedy and stochastic returns per seed, and a GIF."""
    parser = argparse.ArgumentParser(prog="jaxgrid-train eval", description=eval_main.__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=None,
                        help="fresh episodes per seed (default: the run's eval_episodes choice)")
    parser.add_argument("--no-gif", action="store_true", help="do not write the greedy-episode GIF")
    args = parser.parse_args(argv)
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    from train.checkpoint import CheckpointError
    from train.evaluate import evaluate_run, format_eval

    try:
        out = evaluate_run(args.run_dir, episodes=args.episodes, gif=not args.no_gif)
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        print(f"jaxgrid-train eval: error: {err}", file=sys.stderr)
        return 2
    print(format_eval(out))  # printed even when its files could not be written
    for line in out.get("not_written", []):
        print(f"jaxgrid-train eval: error: {line}", file=sys.stderr)
    return 1 if out.get("not_written") else 0


def _enable_compilation_cache() -> str:
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "jaxgrid", "jax-compilation-cache")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jaxgrid-train``. Exit codes: 0 done, 1 an OS error (the message says
    what is still safe), 2 bad input (nothing was written), 130 interrupted (resumable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["eval"]:
            configure_host_devices(1)
            return eval_main(argv[1:])
        return _train_main(argv)
    except KeyboardInterrupt:
        # Ctrl-C outside a run's chunk loop (imports, config, compiling without a run directory).
        # NOTE: train_in_run_dir turns its own Ctrl-Cs into RunInterrupted, with their hint.
        resume = _flag_value(argv, "--resume")
        hint = (f"{resume} is unchanged; resume with: jaxgrid-train --resume {resume}" if resume
                else "no run directory was written; run the command again")
        print(f"\njaxgrid-train: interrupted; {hint}", file=sys.stderr)
        return 130


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _error(err: object, code: int = 2) -> int:
    print(f"jaxgrid-train: error: {err}", file=sys.stderr)
    return code


def _train_main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_EXTRA_HELP)
    try:
        check_repeated_flags(argv)
    except ValueError as err:
        return _error(err)
    extras, rest = _split_extras(argv)

    # Before jax initialises: one host device per core (unless the user chose).
    # NOTE: XLA's SPMD partitioner warns (C++ log) about the progress callback's read of sharded
    # metrics; the CLI keeps its output to errors unless the user set a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    count, set_here = configure_host_devices(extras.devices)
    try:
        many_hosts = initialize_distributed(extras)
    except (ValueError, RuntimeError) as err:  # bad flags, or the job did not form in time
        return _error(f"jax.distributed.initialize failed: {err}")
    config = _parse_config(extras, rest)
    if isinstance(config, int):
        return config

    import jax

    n_dev = len(jax.devices()) if extras.devices is None else extras.devices
    if n_dev > len(jax.devices()):
        return _error(f"--devices {n_dev} but jax sees {len(jax.devices())} "
                      f"{jax.devices()[0].platform} device(s) (JAX_NUM_CPU_DEVICES="
                      f"{os.environ.get('JAX_NUM_CPU_DEVICES')}); valid: 1..{len(jax.devices())}")
    if set_here and count > 1:
        print(f"jaxgrid-train: using {count} host CPU devices (one per core; set "
              "JAX_NUM_CPU_DEVICES or --devices to change)", file=sys.stderr)
    if many_hosts:  # the mesh must span every process's devices
        n_dev = len(jax.devices())
    if not extras.no_cache:
        _enable_compilation_cache()
    return _run(config, extras, n_dev, many_hosts)


def _parse_config(extras: argparse.Namespace, rest: list[str]):
    """The ``PPOConfig`` of the flags, or an exit code after printing the error."""
    import tyro

    from train.config import PPOConfig

    defaults: dict[str, Any] = {}
    try:
        if extras.name is not None:
            from train.rundir import check_run_name

            check_run_name(extras.name)
        if extras.seeds is not None:
            defaults["seeds"] = parse_seeds(extras.seeds)
        if extras.env_kwargs is not None:
            defaults["env_kwargs"] = parse_env_kwargs(extras.env_kwargs)
        if extras.resume is not None:
            from train.runs import load_run_config

            # flags given with --resume are checked against the run's own config
            default_config = load_run_config(extras.resume).replace(**defaults)
        else:
            # Per-env preset (train/presets.py) in place of PPOConfig's defaults; flags override it.
            from train import presets

            rest, preset_id = presets.cli_preset(rest)
            if preset_id is not None:
                print(f"jaxgrid-train: {presets.describe_preset(preset_id)}", file=sys.stderr)
                default_config = presets.preset_config(preset_id, **defaults)
            else:
                # NOTE: --env-kwargs are checked against --env-id's env here (tyro parses --env-id
                # only below), not against the default id's.
                env_id = presets.env_id_from_argv(rest)
                default_config = PPOConfig(**defaults, **({"env_id": env_id} if env_id else {}))
    except (ValueError, FileNotFoundError) as err:
        return _error(err)
    try:
        return tyro.cli(PPOConfig, args=rest, default=default_config, description=__doc__.split("\n\n")[0])
    except ValueError as err:  # validation in PPOConfig.__post_init__
        return _error(err)


def _run(config, extras: argparse.Namespace, n_dev: int, many_hosts: bool) -> int:
    """Trains (into a run directory unless --no-run-dir) and prints the table; an exit code."""
    import jax

    from train import loggers, report
    from train.checkpoint import CheckpointError
    from train.rundir import RunDirExistsError, RunIOError
    from train.runlock import RunLockedError
    from train.runs import ConfigMismatchError, RunInterrupted, train_in_run_dir
    from train.trainer import train

    runs = config.num_seeds * config.num_grid_points
    print(
        f"jaxgrid-train: {config.env_id}, {config.num_seeds} seed(s) x {config.num_grid_points} "
        f"config(s), {config.num_updates} updates of {config.batch_size} env steps, "
        f"{n_dev} {jax.devices()[0].platform} device(s)"
        + (f" in {jax.process_count()} processes (this is process {jax.process_index()})"
           if many_hosts else "")
        + (", envs split over devices" if extras.env_parallel else ""),
        file=sys.stderr, flush=True,
    )
    # NOTE: every process must compile the same program, so with many hosts no program has the
    # bar's host callback (--no-run-dir); in a run directory process 0 shows it from the host.
    no_bar = extras.quiet or (many_hosts and (extras.no_run_dir or jax.process_index() != 0))
    try:  # before a run directory is created
        trackers = loggers.make_trackers(extras.track, extras.wandb_project, extras.wandb_group)
    except (ValueError, ImportError) as err:
        return _error(err)
    bar = None if no_bar else loggers.ProgressBarLogger(config.num_updates, runs)
    run_loggers = loggers.LoggerGroup(
        [*loggers.run_dir_loggers(not extras.no_tensorboard), *trackers, *([bar] if bar else [])]
    )
    run_dir = None
    try:
        if extras.no_run_dir:
            result = train(config, progress=bar, num_devices=n_dev, env_parallel=extras.env_parallel)
            loggers.log_result(loggers.LoggerGroup(trackers), result)
        else:
            result, run_dir = train_in_run_dir(
                config, out=extras.out, name=extras.name, resume=extras.resume, overwrite=extras.overwrite,
                checkpoint_every=extras.checkpoint_every, num_devices=n_dev,
                env_parallel=extras.env_parallel, loggers=run_loggers.loggers,
            )
    except RunInterrupted as stop:
        run_loggers.close()
        print(f"jaxgrid-train: {stop}", file=sys.stderr)
        return 130
    except RunIOError as err:
        run_loggers.close()
        if err.result is not None:  # training finished: show it although its files are not written
            print(report.format_table(report.summarize_result(err.result)))
        return _error(err, 1)
    except (RunDirExistsError, RunLockedError, ConfigMismatchError, CheckpointError, ValueError) as err:
        run_loggers.close()
        return _error(err)
    except OSError as err:  # any other OS error: one line, not a traceback
        run_loggers.close()
        return _error(f"{err.filename or ''}: {err.strerror or err}", 1)
    finally:
        if bar is not None:
            bar.close()
    print(report.format_table(report.summarize_result(result)), flush=True)
    # Final evaluation (issue 14): greedy and stochastic policies, success, fraction of the optimum.
    from train.evaluate import evaluate_result, format_eval

    evaluation = evaluate_result(result, run_dir)
    print(format_eval(evaluation), flush=True)
    for line in evaluation.get("not_written", []):
        print(f"jaxgrid-train: warning: {line}", file=sys.stderr)
    run_loggers.close()  # the plot, TensorBoard and W&B finish after the tables are shown
    if run_dir is not None:
        written = ["curves.csv", "results.json", "learning_curve.png", "tb/", "wandb/", "checkpoints/"]
        written = [w for w in written if (run_dir / w.rstrip("/")).exists()]
        print(f"run directory: {run_dir}  ({', '.join(written)})")
    this = " this invocation" if extras.resume is not None else ""
    print(
        f"compile {result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s, "
        f"{result.env_steps_per_second:,.0f} env steps/s ({result.env_steps:,} env steps{this})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
