"""Seed batching in the fused PPO program: ``vmap`` vs ``lax.map`` over seeds (``PPOConfig.seed_batching``).

    python bench/seed_batching.py                 # 1 and 2 host devices, a few minutes on 2 cores
    python bench/seed_batching.py --devices 1     # one device count only

For each device count (its own process, ``JAX_NUM_CPU_DEVICES=N`` set before jax starts), each
config (the PureJaxRL-style one: 4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64 tanh; and the
default ``PPOConfig``) and each seed count, both modes are compiled first (compile time reported
apart), then timed in alternation (``train.train`` reuses the compiled program), median of the
repeats. Env steps per second count training steps of all seeds.

Measured on the shared 2-core CPU (load average 3-7, so absolute numbers vary ~2x between runs;
compare modes within one run): one device, 8 seeds, ``"map"`` ~5-10% faster than ``"vmap"``; two
host devices, ``"vmap"`` ~10-20% faster. ``seed_batching="auto"`` is nevertheless ``"map"`` on CPU:
it alone trains a seed bitwise the same whatever runs beside it and on any device count
(``train.placement.resolve_seed_batching``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

CONFIGS = {
    "purejaxrl": dict(num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4, total_timesteps=4 * 128 * 64),
    "default": dict(),
}
MODES = ("vmap", "map")


def measure(args) -> list[dict]:
    import jax

    from train import PPOConfig
    from train.trainer import train

    rows = []
    for name, kwargs in CONFIGS.items():
        for num_seeds in args.seeds:
            base = PPOConfig(env_id="GridWorld-4x4-v0", seeds=tuple(range(num_seeds)), **kwargs)
            compile_s, runs = {}, {m: [] for m in MODES}
            for mode in MODES:
                compile_s[mode] = train(base.replace(seed_batching=mode)).compile_seconds
            for _ in range(args.repeats):
                for mode in MODES:
                    runs[mode].append(train(base.replace(seed_batching=mode)).run_seconds)
            steps = num_seeds * base.env_steps_per_seed
            for mode in MODES:
                med = statistics.median(runs[mode])
                rows.append(dict(config=name, devices=len(jax.devices()), seeds=num_seeds, mode=mode,
                                 compile_s=compile_s[mode], run_s=med, steps_per_s=steps / med,
                                 runs_s=runs[mode]))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    rows = []
    for n in args.devices:
        env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(n), JAX_PLATFORMS="cpu")
        cmd = [sys.executable, __file__, "--child", "--seeds", *map(str, args.seeds), "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"child with {n} devices failed:\n{proc.stderr[-4000:]}")
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'config':10} {'dev':>3} {'seeds':>5} {'mode':>5} {'compile s':>9} {'run s':>7} {'steps/s':>9}")
    for r in rows:
        print(f"{r['config']:10} {r['devices']:>3} {r['seeds']:>5} {r['mode']:>5} {r['compile_s']:9.1f} "
              f"{r['run_s']:7.3f} {r['steps_per_s'] / 1e3:8.0f}k")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
