"""XLA:CPU's concurrency-optimised scheduler on and off, for the trainer's programs (``train.xla_flags``).

    python bench/xla_scheduler.py            # 3 configs x 2 settings x 3 processes -> results/xla_scheduler.{json,png}
    python bench/xla_scheduler.py --quick    # 1 process per setting, 4 calls each

``import train`` sets ``--xla_cpu_enable_concurrency_optimized_scheduler=false``. XLA reads its
flags once per process, so each setting runs in its own child processes, alternated (on, off, on,
off, ...). A child compiles ``Trainer.run_updates`` for ``--updates`` PPO updates, warms it up, and
times ``--calls`` identical calls (same state, same inputs). Every call's time is kept, because the
default schedule's slowdown is per call: a process's calls switch between two speeds. Reported per
config and setting: the median env steps/s over all calls of all its processes, and the slowest and
fastest call. Training results are bitwise the same in both settings (tests/train/test_xla_flags.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import harness  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPTION = "--xla_cpu_enable_concurrency_optimized_scheduler"
# (label, env id, PPOConfig fields on top of its preset, host devices)
CONFIGS = (
    ("Maze-9x9-v0 preset, 2 seeds, 1 device", "Maze-9x9-v0", {"seeds": [0, 1]}, 1),
    ("GridWorld-4x4-v0 defaults, 8 seeds, 2 devices", "GridWorld-4x4-v0", {"seeds": list(range(8))}, 2),
    ("CartPole-v1 defaults, 8 seeds, 1 device", "CartPole-v1", {"seeds": list(range(8))}, 1),
)

_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
import jax
from train import ppo, presets
from train.placement import Placement, compile_program, rng_config

config = presets.preset_config({env_id!r}, **{fields!r})
config = config.replace(seeds=tuple(config.seeds))
placement = Placement.build(config, len(jax.devices()))
trainer = ppo.make_train(config, placement)
keys, hparams = placement.keys(), placement.hparams()
with rng_config():
    state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
    state = compile_program(trainer.init, keys, out_shardings=state_out)(keys)
    run = compile_program(lambda s, h: trainer.run_updates(s, h, {updates}), state, hparams,
                          out_shardings=(state_out, out))
    jax.block_until_ready(run(state, hparams))
    times = []
    for _ in range({calls}):
        t = time.perf_counter()
        jax.block_until_ready(run(state, hparams))
        times.append(time.perf_counter() - t)
print(json.dumps({{"times_s": times, "env_steps_per_call": {updates} * config.batch_size * config.num_seeds}}))
"""


def run_child(env_id: str, fields: dict[str, Any], devices: int, scheduler: bool, updates: int, calls: int) -> dict:
    """One child process: every call's time of ``run_updates`` with the scheduler ``scheduler``."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "PYTHONPATH": str(REPO),
           "XLA_FLAGS": f"{OPTION}={'true' if scheduler else 'false'}"}
    code = _CHILD.format(repo=str(REPO), env_id=env_id, fields=fields, updates=updates, calls=calls)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({env_id}, scheduler={scheduler}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plot(rows: list[dict[str, Any]], path: Path, info: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        for i, (name, color) in enumerate((("on", "C3"), ("off", "C0"))):
            rates = np.asarray(row[name]["per_call_env_steps_per_s"]) / 1e3
            jitter = np.linspace(-0.15, 0.15, len(rates))
            ax.scatter(i + jitter, rates, s=12, color=color, alpha=0.7)
            ax.hlines(np.median(rates), i - 0.25, i + 0.25, color="k", lw=1.5)
        ax.set_xticks([0, 1], ["scheduler on\n(XLA default)", "off\n(import train)"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylim(bottom=0)
        ax.set_title(row["label"], fontsize=9)
        ax.set_ylabel("k env steps/s, each call")
    harness.machine_title(fig, info)
    fig.tight_layout()
    harness.save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="child processes per config and setting")
    parser.add_argument("--calls", type=int, default=8, help="timed calls per child process")
    parser.add_argument("--updates", type=int, default=2, help="PPO updates per call")
    parser.add_argument("--quick", action="store_true", help="1 process per setting, 4 calls")
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "xla_scheduler.json")
    args = parser.parse_args(argv)
    args.out = harness.quick_out(args.out, args.quick, parser.get_default("out"))
    processes, calls = (1, 4) if args.quick else (args.processes, args.calls)
    if processes < 1 or calls < 1 or args.updates < 1:
        parser.error("--processes, --calls and --updates must be >= 1")

    info = harness.machine_info()
    harness.print_header(info)
    rows = []
    for label, env_id, fields, devices in CONFIGS:
        runs: dict[str, list[float]] = {"on": [], "off": []}
        steps = 0
        for _ in range(processes):
            for name in ("on", "off"):
                child = run_child(env_id, fields, devices, name == "on", args.updates, calls)
                steps = child["env_steps_per_call"]
                runs[name].extend(child["times_s"])
        row: dict[str, Any] = {"label": label, "env_id": env_id, "fields": fields, "devices": devices,
                               "env_steps_per_call": steps, "loadavg_1_5_15min": list(os.getloadavg())}
        for name, times in runs.items():
            rates = steps / np.asarray(times)
            row[name] = {"times_s": times, "per_call_env_steps_per_s": rates.tolist(),
                         "median_env_steps_per_s": float(np.median(rates)),
                         "slowest": float(rates.min()), "fastest": float(rates.max())}
        row["off_over_on_median"] = row["off"]["median_env_steps_per_s"] / row["on"]["median_env_steps_per_s"]
        print(f"{label}: scheduler on {row['on']['median_env_steps_per_s']:,.0f} env steps/s "
              f"(calls {row['on']['slowest']:,.0f}-{row['on']['fastest']:,.0f}), off "
              f"{row['off']['median_env_steps_per_s']:,.0f} ({row['off']['slowest']:,.0f}-"
              f"{row['off']['fastest']:,.0f}): off/on {row['off_over_on_median']:.2f}x", flush=True)
        rows.append(row)
    payload = {"machine": info, "processes": processes, "calls": calls, "updates": args.updates,
               "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
    harness.write_results(args.out, payload, lambda png: plot(rows, png, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
