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
import time
from typing import Any

_EXTRA_HELP = """\
extra options (handled before the config flags):
  --seeds SPEC ...       seeds as ints or ranges: 0-15, 0-3,8, 0 1 2
  --env-kwargs K=V ...   env overrides (python literals), e.g. max_steps_in_episode=100
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
  --name NAME            run directory name (default: <env_id>__<date-time>__<random>)
  --resume RUN_DIR       continue RUN_DIR from its last checkpoint (config flags, if any, must match)
  --overwrite            replace an existing run directory of the same name
  --checkpoint-every N   updates between checkpoints (default: about a tenth of the run)
  --no-tensorboard       do not write TensorBoard event files
  --no-run-dir           write nothing; just train and print the table

evaluate a run:  jaxgrid-train eval RUN_DIR [--episodes N] [--no-gif]
"""


def parse_seeds(tokens: list[str]) -> tuple[int, ...]:
    """``["0-3,8", "10"]`` -> ``(0, 1, 2, 3, 8, 10)``; order kept, duplicates rejected."""
    seeds: list[int] = []
    for token in tokens:
        for part in token.replace(",", " ").split():
            if "-" in part[1:]:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if hi < lo:
                    raise ValueError(f"--seeds range {part!r} is empty (end < start)")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
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


def _split_extras(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--seeds", nargs="+", default=None)
    parser.add_argument("--env-kwargs", "--env_kwargs", nargs="+", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--no-cache", "--no_cache", action="store_true")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--name", default=None)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--checkpoint-every", "--checkpoint_every", type=int, default=None)
    parser.add_argument("--no-tensorboard", "--no_tensorboard", action="store_true")
    parser.add_argument("--no-run-dir", "--no_run_dir", action="store_true")
    parser.add_argument("--env-parallel", "--env_parallel", action="store_true")
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--num-processes", "--num_processes", type=int, default=None)
    parser.add_argument("--process-id", "--process_id", type=int, default=None)
    parser.add_argument("--distributed", choices=["auto"], default=None)
    parser.add_argument("--distributed-timeout", "--distributed_timeout", type=int, default=30)
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
    print(format_eval(out))
    return 0


def _enable_compilation_cache() -> str:
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "jaxgrid", "jax-compilation-cache")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


class ProgressBar:
    """A tqdm bar of updates, env steps, steps/s and the latest mean return.

    In a run directory (the default) it advances after every chunk of updates, from the host, so
    every program stays cacheable by jax's persistent compilation cache; with ``--no-run-dir`` it
    is fed by a host callback from inside the single fused program (throttled, ordered on one
    device).
    """

    def __init__(self, num_updates: int, runs: int):
        from tqdm import tqdm

        self.bar = tqdm(total=num_updates, unit="upd", mininterval=0.25, file=sys.stderr)
        self.runs = runs  # seeds x grid points: env steps advance this many times faster
        self.start: float | None = None
        self.start_steps = 0
        self.last_return = float("nan")

    def __call__(self, index, env_steps, episode_return) -> None:
        import numpy as np

        now = time.perf_counter()
        steps = int(env_steps) * self.runs
        if self.start is None:
            self.start, self.start_steps = now, steps
        returns = np.asarray(episode_return)
        if np.isfinite(returns).any():
            self.last_return = float(np.nanmean(returns))
        rate = (steps - self.start_steps) / max(now - self.start, 1e-9)
        self.bar.update(int(index) + 1 - self.bar.n)
        self.bar.set_postfix(
            env_steps=f"{steps:,}", steps_per_s=f"{rate:,.0f}", ret=f"{self.last_return:.3f}",
            refresh=False,
        )

    def close(self) -> None:
        self.bar.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jaxgrid-train``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"]:
        configure_host_devices(1)
        return eval_main(argv[1:])
    if "-h" in argv or "--help" in argv:
        print(_EXTRA_HELP)
    extras, rest = _split_extras(argv)

    # Before jax initialises: one host device per core (unless the user chose).
    # NOTE: XLA's SPMD partitioner warns (C++ log) about the progress callback's read of sharded
    # metrics; the CLI keeps its output to errors unless the user set a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    count, set_here = configure_host_devices(extras.devices)
    if set_here and count > 1:
        print(f"jaxgrid-train: using {count} host CPU devices (one per core; set "
              "JAX_NUM_CPU_DEVICES to change)", file=sys.stderr)
    try:
        many_hosts = initialize_distributed(extras)
    except (ValueError, RuntimeError) as err:  # bad flags, or the job did not form in time
        print(f"jaxgrid-train: error: jax.distributed.initialize failed: {err}", file=sys.stderr)
        return 2

    import tyro

    from train.config import PPOConfig

    defaults: dict[str, Any] = {}
    try:
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
                default_config = PPOConfig(**defaults)
    except (ValueError, FileNotFoundError) as err:
        print(f"jaxgrid-train: error: {err}", file=sys.stderr)
        return 2
    try:
        config = tyro.cli(
            PPOConfig, args=rest, default=default_config, description=__doc__.split("\n\n")[0]
        )
    except ValueError as err:  # validation in PPOConfig.__post_init__
        print(f"jaxgrid-train: error: {err}", file=sys.stderr)
        return 2

    import jax

    if not extras.no_cache:
        _enable_compilation_cache()
    from train import report
    from train.checkpoint import CheckpointError
    from train.runs import ConfigMismatchError, RunInterrupted, train_in_run_dir
    from train.tracking import RunDirExistsError
    from train.trainer import train

    platform = jax.devices()[0].platform
    n_dev = len(jax.devices()) if extras.devices is None else extras.devices
    n_dev = max(1, min(n_dev, len(jax.devices())))
    if many_hosts:  # the mesh must span every process's devices
        n_dev = len(jax.devices())
    if extras.env_parallel and n_dev > 1:
        from train.dataparallel import check_env_parallel

        try:  # before a run directory is created
            check_env_parallel(config, n_dev)
        except ValueError as err:
            print(f"jaxgrid-train: error: {err}", file=sys.stderr)
            return 2
    runs = config.num_seeds * config.num_grid_points
    print(
        f"jaxgrid-train: {config.env_id}, {config.num_seeds} seed(s) x {config.num_grid_points} "
        f"config(s), {config.num_updates} updates of {config.batch_size} env steps, "
        f"{n_dev} {platform} device(s)"
        + (f" in {jax.process_count()} processes (this is process {jax.process_index()})"
           if many_hosts else "")
        + (", envs split over devices" if extras.env_parallel else ""),
        file=sys.stderr,
    )
    # NOTE: every process must compile the same program, so with many hosts no program has the
    # bar's host callback (--no-run-dir); in a run directory process 0 shows it from the host.
    no_bar = extras.quiet or (many_hosts and (extras.no_run_dir or jax.process_index() != 0))
    bar = None if no_bar else ProgressBar(config.num_updates, runs)
    run_dir = None
    try:
        if extras.no_run_dir:
            result = train(config, progress=bar, num_devices=n_dev, env_parallel=extras.env_parallel)
        else:
            result, run_dir = train_in_run_dir(
                config,
                out=extras.out,
                name=extras.name,
                resume=extras.resume,
                overwrite=extras.overwrite,
                checkpoint_every=extras.checkpoint_every,
                progress=bar,
                num_devices=n_dev,
                tensorboard=not extras.no_tensorboard,
                env_parallel=extras.env_parallel,
            )
    except RunInterrupted as stop:
        if bar is not None:
            bar.close()
        print(f"jaxgrid-train: {stop}", file=sys.stderr)
        return 130
    except (RunDirExistsError, ConfigMismatchError, CheckpointError, ValueError) as err:
        if bar is not None:
            bar.close()
        print(f"jaxgrid-train: error: {err}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    print(report.format_table(report.summarize_result(result)))
    # Final evaluation (issue 14): greedy and stochastic policies, success, fraction of the optimum.
    from train.evaluate import evaluate_result, format_eval

    print(format_eval(evaluate_result(result, run_dir)))
    if run_dir is not None:
        written = ["curves.csv", "results.json", "learning_curve.png", "tb/", "checkpoints/"]
        written = [w for w in written if (run_dir / w.rstrip("/")).exists()]
        print(f"run directory: {run_dir}  ({', '.join(written)})")
    print(
        f"compile {result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s, "
        f"{result.env_steps_per_second:,.0f} env steps/s ({result.env_steps:,} env steps)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
