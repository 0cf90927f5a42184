"""Image encoders and training throughput beyond the 16-state grid (issue 14 item 5).

    python bench/encoders.py                    # both parts -> results/encoders.{json,png}
    python bench/encoders.py --part minibatch   # only the encoders' fwd+bwd per minibatch
    python bench/encoders.py --part train       # only the env steps/s of training per env

Part ``minibatch``: one PPO minibatch's forward and backward pass (the gradient of a loss on the
policy logits and the value) of ``train.networks.ActorCritic`` with each image encoder
(``PPOConfig.encoder``: ``dense``, ``embed``, ``cnn``) on the procedural envs' observation shapes:
Maze-9x9-v0 and Maze-15x15-v0 (``grid``), FourRoomsRandom-v0 (``grid`` 13x13, ``view`` 7x7 and
5x5). Batched over seeds as the trainer batches them on CPU (``lax.map`` over ``--seeds`` seeds,
each its own parameters and minibatch); inputs are made before the clock, compile time apart,
median of ``--repeats``.

Part ``train``: env steps per second of training (``Trainer.run_updates``: rollouts and updates,
compile and evaluation excluded) at one config for every env: GridWorld-4x4-v0 (the reference),
FourRooms-v0 and FrozenLake8x8-v1 (``index`` observations), Maze-9x9-v0 (``grid``) with each encoder;
the envs run alternately, one call each per repeat, so their ratios are measured side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# bench/ for its helper modules; the repo root so a checkout's jaxgrid/train win over any stale install.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import harness  # noqa: E402
from train.cli import configure_host_devices  # noqa: E402

configure_host_devices()

ENCODERS = ("dense", "embed", "cnn")
SHAPES = {  # name: [H, W, C] of the observation
    "Maze-9x9-v0 grid": (9, 9, 4),
    "Maze-15x15-v0 grid": (15, 15, 4),
    "FourRoomsRandom-v0 grid": (13, 13, 4),
    "FourRoomsRandom-v0 view 7x7": (7, 7, 4),
    "FourRoomsRandom-View5-v0 view 5x5": (5, 5, 4),
}
TRAIN_ENVS = (  # (label, env id, PPOConfig changes)
    ("GridWorld-4x4-v0", "GridWorld-4x4-v0", {}),
    ("FourRooms-v0", "FourRooms-v0", {}),
    ("FourRooms-v0 obs_table=on", "FourRooms-v0", {"obs_table": "on"}),
    ("FrozenLake8x8-v1", "FrozenLake8x8-v1", {}),
    ("Maze-9x9-v0 dense", "Maze-9x9-v0", {"encoder": "dense"}),
    ("Maze-9x9-v0 embed", "Maze-9x9-v0", {"encoder": "embed"}),
    ("Maze-9x9-v0 cnn", "Maze-9x9-v0", {"encoder": "cnn"}),
)
# The CNN is left out of the training part by default: at seconds per minibatch on 9x9 grids
# (part minibatch), 16 updates take many minutes on a 2-core CPU; name it in --train-envs to run it.
DEFAULT_TRAIN_ENVS = tuple(label for label, _, _ in TRAIN_ENVS if not label.endswith("cnn"))


def build_minibatch_step(encoder: str, shape: tuple[int, ...], num_seeds: int, batch: int):
    """``(fn, args)``: the gradient of a PPO-like loss for ``num_seeds`` seeds under ``lax.map``."""
    import jax
    import jax.numpy as jnp

    from train import networks

    net = networks.ActorCritic(action_dim=4, discrete_actions=True, obs_kind="image", encoder=encoder)
    key_obs, key_params = jax.random.split(jax.random.PRNGKey(0))
    # One-hot cell kinds as jaxgrid draws them: kind 0..3 per cell (floor has no flag), one agent.
    kinds = jax.random.randint(key_obs, (num_seeds, batch) + shape[:2], 0, shape[2])
    obs = jax.nn.one_hot(kinds, shape[2], dtype=jnp.float32)
    params = jax.vmap(lambda k, o: networks.init_params(k, net, o))(
        jax.random.split(key_params, num_seeds), obs
    )

    def loss(p, o):
        logits, value = net.apply(p, o)
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0]) + jnp.sum(value**2)

    def fn(params, obs):
        return jax.lax.map(lambda po: jax.grad(loss)(*po), (params, obs))

    return fn, (params, obs)


def measure_minibatches(args) -> list[dict[str, Any]]:
    rows = []
    for name, shape in SHAPES.items():
        for encoder in ENCODERS:
            fn, fn_args = build_minibatch_step(encoder, shape, args.seeds, args.minibatch)
            t = harness.time_jax(fn, fn_args, args.repeats)
            rows.append({"obs": name, "shape": list(shape), "encoder": encoder, "seeds": args.seeds,
                         "minibatch": args.minibatch, "median_ms": 1e3 * t.median_s,
                         "runs_ms": [1e3 * s for s in t.seconds], "compile_s": t.compile_s})
            print(f"{name:36s} {encoder:6s} {1e3 * t.median_s:9.2f} ms per fwd+bwd of {args.seeds} seeds x "
                  f"{args.minibatch} (compile {t.compile_s:.1f} s)", flush=True)
    return rows


def build_training(env_id: str, changes: dict[str, Any], args):
    """``(call, env steps per call, compile s)``: ``--updates`` updates of every seed, compiled."""
    import jax

    from train import PPOConfig
    from train.placement import Placement, compile_program, rng_config
    from train.ppo import make_train

    config = PPOConfig(env_id=env_id, seeds=tuple(range(args.seeds)), **changes)
    config = config.replace(total_timesteps=config.batch_size * args.updates)
    placement = Placement.build(config, len(jax.devices()))
    trainer = make_train(config, placement)
    keys, hparams = placement.keys(), placement.hparams()
    with rng_config():
        t0 = time.perf_counter()
        state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
        state = compile_program(trainer.init, keys, out_shardings=state_out)(keys)
        run = compile_program(lambda s, h: trainer.run_updates(s, h, args.updates), state, hparams,
                              out_shardings=(state_out, out))
        compile_s = time.perf_counter() - t0

    def call():
        with rng_config():
            return run(state, hparams)

    return call, config.env_steps_per_seed * config.num_seeds, compile_s


def measure_training(args) -> list[dict[str, Any]]:
    envs = [e for e in TRAIN_ENVS if e[0] in (args.train_envs or DEFAULT_TRAIN_ENVS)]
    built = {label: build_training(env_id, changes, args) for label, env_id, changes in envs}
    seconds: dict[str, list[float]] = {label: [] for label in built}
    for label, (call, _, _) in built.items():  # warm-up
        harness.time_calls(call, 0, warmup=1)
    for _ in range(args.repeats):  # alternate, so every env sees the same load
        for label, (call, _, _) in built.items():
            seconds[label] += harness.time_calls(call, 1, warmup=0).seconds
    ref = statistics.median(seconds[envs[0][0]])
    rows = []
    for label, env_id, changes in envs:
        _, steps, compile_s = built[label]
        med = statistics.median(seconds[label])
        rows.append({"label": label, "env_id": env_id, "changes": changes, "seeds": args.seeds,
                     "updates": args.updates, "env_steps": steps, "median_s": med, "runs_s": seconds[label],
                     "steps_per_s": steps / med, "ratio_to_first": ref / med, "compile_s": compile_s})
        print(f"{label:24s} {steps / med / 1e3:9.1f}k env steps/s  x{ref / med:5.2f} of {envs[0][0]}  "
              f"(compile {compile_s:.1f} s)", flush=True)
    return rows


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    mb = payload.get("minibatch", [])
    names = list(dict.fromkeys(r["obs"] for r in mb))
    for j, enc in enumerate(ENCODERS):
        vals = [next(r["median_ms"] for r in mb if r["obs"] == n and r["encoder"] == enc) for n in names]
        axes[0].bar(np.arange(len(names)) + 0.27 * (j - 1), vals, 0.27, label=enc)
    axes[0].set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=6)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("ms per minibatch fwd+bwd")
    axes[0].legend(fontsize=7)
    tr = payload.get("train", [])
    axes[1].barh([r["label"] for r in tr], [r["steps_per_s"] for r in tr])
    axes[1].set_xscale("log")
    axes[1].set_xlabel("training env steps/s")
    axes[1].tick_params(labelsize=7)
    fig.suptitle(f"{payload['machine']['cpu']} x{payload['machine']['cpu_count']}, load "
                 f"{payload['machine']['loadavg_1_5_15min'][0]:.1f}", fontsize=8)
    fig.tight_layout()
    harness.save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("minibatch", "train", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=8, help="seeds (lax.map in minibatch; train's seeds)")
    parser.add_argument("--minibatch", type=int, default=512, help="samples per minibatch and seed")
    parser.add_argument("--updates", type=int, default=16, help="updates per timed training call")
    parser.add_argument("--train-envs", nargs="+", default=None, help="labels of the training part to run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "encoders.json")
    parser.add_argument("--keep", action="store_true",
                        help="keep the part of --out not run now (with --part minibatch or train)")
    args = parser.parse_args(argv)

    info = harness.machine_info()
    harness.print_header(info)
    t0 = time.perf_counter()
    payload: dict[str, Any] = {"machine": info, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                          for k, v in vars(args).items()}}
    if args.part in ("minibatch", "both"):
        payload["minibatch"] = measure_minibatches(args)
    if args.part in ("train", "both"):
        payload["train"] = measure_training(args)
    payload["wall_s"] = time.perf_counter() - t0
    if args.keep and args.out.exists():
        import json

        old = json.loads(args.out.read_text())
        payload.update({k: old[k] for k in ("minibatch", "train") if k in old and k not in payload})
    harness.write_results(args.out, payload, lambda png: plot(payload, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
