"""Dense-encoded image training, ``ActorCritic`` against ``train.feature_major`` (issue 14 item 5).

    python bench/feature_major_images.py                              # Maze-9x9-v0 preset (13x13 view), 8 seeds
    python bench/feature_major_images.py --env-kwargs '{"obs": "grid"}'  # the env's own 9x9 grid

``train.setup.make_setup`` evaluates images through the ``"dense"`` encoder feature-major (the same
parameters and function as ``ActorCritic.apply``, to float rounding: tests/train/test_feature_major.py).
This times ``Trainer.run_updates`` of the Maze-9x9-v0 preset (``--env-kwargs`` on top of its own) (8 seeds sharded over the host CPU
devices, ``--updates`` PPO updates per call, compile apart) both ways in one process: the two
compiled programs alternate, ``--repeats`` times, and the median is quoted (env steps per second of
all seeds together; rollout and update included, evaluation excluded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import harness  # noqa: E402
from train.cli import configure_host_devices  # noqa: E402

configure_host_devices()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-id", default="Maze-9x9-v0")
    parser.add_argument("--env-kwargs", type=json.loads, default={}, help="JSON dict, on top of the preset's")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--updates", type=int, default=4, help="PPO updates per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "feature_major_images.json")
    args = parser.parse_args()

    import jax
    import numpy as np

    from train import ppo, presets
    from train import setup as setup_mod
    from train.placement import Placement, compile_program, rng_config

    base = presets.preset_config(args.env_id, seeds=tuple(range(args.seeds)))
    config = base.replace(env_kwargs={**base.env_kwargs, **args.env_kwargs})
    real = setup_mod.make_setup
    programs = {}
    for name, flag in (("actor_critic", False), ("feature_major", True)):
        ppo.make_setup = lambda c, flag=flag: dataclasses.replace(real(c), feature_major=flag)
        placement = Placement.build(config, len(jax.devices()))
        trainer = ppo.make_train(config, placement)
        assert trainer.setup.feature_major == flag and trainer.setup.network.encoder == "dense"
        keys, hparams = placement.keys(), placement.hparams()
        with rng_config():
            state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
            state = compile_program(trainer.init, keys, out_shardings=state_out)(keys)
            start = time.perf_counter()
            run = compile_program(lambda s, h: trainer.run_updates(s, h, args.updates), state, hparams,
                                  out_shardings=(state_out, out))
            compile_s = time.perf_counter() - start
            jax.block_until_ready(run(state, hparams))  # warm-up
        programs[name] = (run, state, hparams, compile_s)
    ppo.make_setup = real
    times = {name: [] for name in programs}
    for _ in range(args.repeats):
        for name, (run, state, hparams, _) in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(run(state, hparams))
            times[name].append(time.perf_counter() - start)
    steps = args.updates * config.batch_size * config.num_seeds
    rows = {name: {"median_s": float(np.median(t)), "env_steps_per_s": steps / float(np.median(t)),
                   "compile_s": programs[name][3], "times_s": t} for name, t in times.items()}
    payload = {"machine": harness.machine_info(), "env_id": args.env_id, "env_kwargs": config.env_kwargs,
               "seeds": config.num_seeds, "updates": args.updates, "env_steps_per_call": steps,
               "loadavg_1_5_15min": list(os.getloadavg()), "rows": rows,
               "speedup": rows["actor_critic"]["median_s"] / rows["feature_major"]["median_s"]}
    print(json.dumps({k: payload[k] for k in ("env_id", "env_kwargs", "loadavg_1_5_15min", "speedup")}))
    for name, row in rows.items():
        print(f"{name}: {row['env_steps_per_s']:,.0f} env steps/s (median of {args.repeats}), compile {row['compile_s']:.0f} s")
    harness.write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
