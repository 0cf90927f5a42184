"""PPO training throughput on 1, 2 and 4 host devices: seeds sharded, and one agent's envs split.

    python bench/scaling.py                 # 1, 2, 4 host devices; about 3 minutes on a 2-core CPU
    python bench/scaling.py --devices 1 2   # a subset
    python bench/scaling.py --quick         # smoke run

Each device count runs in its own process with ``JAX_NUM_CPU_DEVICES=N`` set before jax starts
(the device count is fixed when jax initialises). In each, on ``GridWorld-4x4-v0``:
- **seeds**: ``train(PPOConfig(seeds=8 seeds, num_envs=16))``: the seed axis sharded over the N
  devices (the default), no communication;
- **envs**: ``train(PPOConfig(seeds=(0,), num_envs=64), env_parallel=True)``: one agent whose envs
  are split over the N devices, gradients ``pmean``-ed every minibatch.
The first call compiles (reported apart); ``--repeats`` more calls run the compiled program and the
median run time is quoted as env steps per second. On a CPU, host devices are how XLA uses more
than about one core for these small programs, so on this 2-core machine 2 devices should help and
4 can only add overhead (two devices per core, plus the collectives in the envs mode).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import harness  # noqa: E402

ENV_ID = "GridWorld-4x4-v0"
MARK = "SCALING_ROW "


def measure(mode: str, total_timesteps: int, repeats: int) -> dict[str, Any]:
    """Compiles and times one mode on every device of this process."""
    import jax

    from train import PPOConfig
    from train.placement import Placement
    from train.trainer import train

    if mode == "seeds":
        config = PPOConfig(env_id=ENV_ID, seeds=tuple(range(8)), num_envs=16,
                           total_timesteps=total_timesteps)
        call = lambda: train(config)  # noqa: E731
    else:
        config = PPOConfig(env_id=ENV_ID, seeds=(0,), num_envs=64,
                           total_timesteps=total_timesteps * 2)
        call = lambda: train(config, env_parallel=True)  # noqa: E731
    first = call()
    runs = [call().run_seconds for _ in range(repeats)]
    return {
        "mode": mode,
        "devices": len(jax.devices()),
        # as train() resolves it: seeds over every device, or each seed's envs over them
        "seed_batching": Placement.build(config, env_parallel=mode == "envs").seed_batching,
        "num_seeds": config.num_seeds,
        "num_envs": config.num_envs,
        "num_updates": config.num_updates,
        **harness.train_row(first, runs),
    }


def worker(args) -> int:
    import jax

    info = harness.machine_info()
    print(MARK + json.dumps({"machine": info}), flush=True)
    for mode in args.modes:
        row = measure(mode, args.total_timesteps, args.repeats)
        assert row["devices"] == len(jax.devices())
        print(MARK + json.dumps(row), flush=True)
    return 0


def run_device_count(n: int, args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(n), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    cmd = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats),
           "--total-timesteps", str(args.total_timesteps), "--modes", *args.modes]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{n} device(s) failed:\n{proc.stdout}\n{proc.stderr}")
    rows = [json.loads(line[len(MARK):]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    return rows[0]["machine"], rows[1:]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mode, label in (("seeds", "8 seeds sharded over devices"),
                        ("envs", "1 agent, 64 envs split over devices")):
        pts = sorted((r["devices"], r["steps_per_s"]) for r in rows if r["mode"] == mode)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4], ["1", "2", "4"])
    ax.set_xlabel("host CPU devices (JAX_NUM_CPU_DEVICES), 2-core machine")
    ax.set_ylabel("training env steps / s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"PPO on {ENV_ID}: scaling over host devices", fontsize=9)
    harness.save_figure(fig, path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--modes", nargs="+", default=["seeds", "envs"], choices=["seeds", "envs"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--total-timesteps", type=int, default=65_536, help="env steps per seed (seeds mode)")
    p.add_argument("--quick", action="store_true", help="smoke run: small budget, one repeat")
    p.add_argument("--timeout", type=float, default=600, help="seconds per device count")
    p.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "scaling.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = harness.quick_out(args.out, args.quick, p.get_default("out"))  # never over bench/results
    if args.quick:
        args.repeats, args.total_timesteps = 1, 2048
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    rows, machines = [], {}
    for n in args.devices:
        machine, got = run_device_count(n, args)
        machines[str(n)] = machine
        rows.extend(got)
    base = {r["mode"]: r["steps_per_s"] for r in rows if r["devices"] == 1}
    for r in rows:
        r["speedup_vs_1_device"] = r["steps_per_s"] / base[r["mode"]] if r["mode"] in base else None
    first = machines[str(args.devices[0])]
    harness.print_header(first)
    print(f"{'mode':<6} {'devices':>7} {'seeds':>5} {'envs':>5} {'compile s':>9} {'run s':>7} "
          f"{'env steps/s':>12} {'vs 1 dev':>8}")
    for r in rows:
        speed = f"{r['speedup_vs_1_device']:.2f}x" if r["speedup_vs_1_device"] else "-"
        print(f"{r['mode']:<6} {r['devices']:>7} {r['num_seeds']:>5} {r['num_envs']:>5} "
              f"{r['compile_s']:>9.1f} {r['run_s']:>7.2f} {harness.format_rate(r['steps_per_s']):>12} "
              f"{speed:>8}")
    payload = {
        "benchmark": "scaling",
        "env_id": ENV_ID,
        "cpu_count": os.cpu_count(),
        "machine_per_device_count": machines,
        "rows": rows,
        "note": "host CPU devices on a 2-core machine: 2 devices use both cores; 4 oversubscribe "
                "them (and the envs mode adds an all_gather and a pmean per minibatch). The "
                "machine may be shared: see loadavg_1_5_15min per device count.",
    }
    harness.write_results(args.out, payload, lambda png: plot(rows, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
