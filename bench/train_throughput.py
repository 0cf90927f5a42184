"""PPO training throughput and time-to-solve: jaxgrid's fused trainer vs Stable-Baselines3.

    python bench/train_throughput.py            # full run, a few minutes on a 2-core CPU
    python bench/train_throughput.py --quick    # smoke run
    pip install -e ".[bench]"                   # torch (CPU) + stable-baselines3 for the SB3 lines

Measured on ``GridWorld-4x4-v0`` (the optimal policy's return is 0.8):
- **jaxgrid throughput**: ``train.train(PPOConfig(...))`` for 1, 8 and 64 seeds in one call, a few
  ``num_envs``, and PureJaxRL's configuration (4 envs x 128 steps); env steps per second of run time
  (updates included), compile time apart. The first call compiles; the repeats reuse the compiled
  program; the median run time is quoted. Seeds are sharded over one host CPU device per core, as
  ``train()`` and ``jaxgrid-train`` run them.
- **jaxgrid time-to-solve**: ``Trainer.run_until`` (``train/loop.py``) trains all seeds of the default
  config in one program, one call, evaluating every seed's greedy policy after every update, and
  stops when all are optimal (greedy return 0.8). The evaluations are inside the timed call.
- **SB3**: ``stable_baselines3.PPO`` with the same hyperparameters (16 envs, 32 steps, 4 epochs,
  4 minibatches, lr 2.5e-3 annealed, 64x64 tanh MLPs), on the same env through jaxgrid's Gymnasium
  adapter (``gymnasium.make("jaxgrid/GridWorld-4x4-v0")``) and, to separate SB3 from the adapter,
  on the plain-Python env of ``bench/cpu_gridworld.py``. Throughput from a fixed-budget ``learn``;
  time-to-solve with a callback that evaluates the greedy policy after every rollout (eval time
  subtracted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# bench/ for its helper modules; the repo root so a checkout's jaxgrid/train win over any stale install.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import cpu_gridworld  # noqa: E402
import harness  # noqa: E402
from train.cli import configure_host_devices  # noqa: E402

# One CPU host device per core (before jax starts its backend), as jaxgrid-train runs.
configure_host_devices()

ENV_ID = "GridWorld-4x4-v0"
OPTIMAL_RETURN = 0.8
# Every non-optimal greedy path returns <= 0.76 (or never reaches the goal), so this is exact.
SOLVED = OPTIMAL_RETURN - 0.01


# ------------------------------------------------------------------------------------------------
# jaxgrid
def jaxgrid_config(
    num_seeds: int, num_envs: int, total_timesteps: int | None = None, num_steps: int | None = None
):
    from train import PPOConfig

    base = PPOConfig(env_id=ENV_ID)
    if num_steps is not None:
        base = base.replace(num_steps=num_steps, total_timesteps=max(base.total_timesteps, num_envs * num_steps))
    kwargs: dict[str, Any] = {"seeds": tuple(range(num_seeds)), "num_envs": num_envs}
    if total_timesteps is not None:
        batch = num_envs * base.num_steps
        kwargs["total_timesteps"] = max(batch, total_timesteps // batch * batch)
    return base.replace(**kwargs)


def measure_jaxgrid_throughput(
    num_seeds: int, num_envs: int, args, num_steps: int | None = None
) -> dict[str, Any]:
    """``train(config)`` once to compile (timed apart), then ``repeats`` timed runs of the compiled program."""
    from train import train

    batch = num_envs * jaxgrid_config(1, num_envs, num_steps=num_steps).num_steps
    num_updates = int(np.clip(args.train_budget // (num_seeds * batch), args.min_updates, args.max_updates))
    config = jaxgrid_config(num_seeds, num_envs, num_updates * batch, num_steps=num_steps)
    first = train(config)
    runs = [first.run_seconds] + [train(config).run_seconds for _ in range(args.repeats - 1)]
    return {
        "num_seeds": num_seeds,
        "num_envs": num_envs,
        "num_steps": config.num_steps,
        "total_timesteps_per_seed": config.env_steps_per_seed,
        "num_updates": config.num_updates,
        **harness.train_row(first, runs),
    }


def measure_jaxgrid_solve(num_seeds: int, num_envs: int, args) -> dict[str, Any]:
    """Wall-clock until every seed's greedy policy is optimal: all seeds in one program, one call.

    ``Trainer.run_until`` updates every seed and evaluates every seed's greedy policy after each
    update, inside one ``while_loop``, until all are optimal. The greedy evaluations are inside
    the timed call (SB3's are subtracted from its time), so this is conservative; building the
    networks and envs (``init``, like SB3's model construction) is outside it.
    """
    import jax

    from train.placement import Placement, compile_program
    from train.ppo import make_train

    config = jaxgrid_config(num_seeds, num_envs, args.solve_max_steps)
    # Seeds sharded over the host devices, as train() and jaxgrid-train run them; here only over as
    # many devices as divide the seeds, so no padding seed is added (run_until would not wait for
    # one, but it would still cost time).
    n_dev = max(d for d in range(1, len(jax.devices()) + 1) if num_seeds % d == 0)
    placement = Placement.build(config, n_dev)
    trainer = make_train(config, placement)
    keys, hparams = placement.keys(), placement.hparams()
    out, _ = placement.out_shardings(None)  # leaves lead [G, S]
    start = time.perf_counter()
    init = compile_program(trainer.init, keys, out_shardings=out)
    runner = init(keys)
    solve = compile_program(
        lambda r, h: trainer.run_until(r, h, config.num_updates, SOLVED), runner, hparams,
        out_shardings=(out, None, out),
    )
    update = compile_program(lambda r, h: trainer.run_updates(r, h, 1), runner, hparams,
                             out_shardings=out)
    evaluate = compile_program(trainer.evaluate, runner, out_shardings=out)
    compile_s = time.perf_counter() - start

    def solve_once() -> tuple[int, float, np.ndarray]:
        runner = jax.block_until_ready(init(keys))
        t0 = time.perf_counter()
        _, updates, returns = jax.block_until_ready(solve(runner, hparams))
        return int(updates), time.perf_counter() - t0, np.asarray(returns).reshape(-1)

    def solve_stepwise() -> tuple[int | None, float]:
        """SB3's protocol: one call per update, the greedy evaluation after each one not timed."""
        runner = jax.block_until_ready(init(keys))
        train_s = 0.0
        for updates in range(1, config.num_updates + 1):
            t0 = time.perf_counter()
            runner, _ = jax.block_until_ready(update(runner, hparams))
            train_s += time.perf_counter() - t0
            if (np.asarray(evaluate(runner)) >= SOLVED).all():
                return updates, train_s
        return None, train_s

    # Training is deterministic, so every repeat solves after the same updates; only the time varies.
    runs = [solve_once() for _ in range(args.repeats)]
    updates, _, returns = runs[0]
    solved = bool((returns >= SOLVED).all())
    stepwise = [solve_stepwise() for _ in range(args.repeats)]
    times = [r[1] for r in runs]
    return {
        "num_seeds": num_seeds,
        "num_envs": num_envs,
        "num_devices": n_dev,
        "max_updates": config.num_updates,
        "compile_s": compile_s,
        "solved": solved,
        "updates_to_solve": updates if solved else None,
        "env_steps_per_seed_to_solve": updates * config.batch_size if solved else None,
        "time_to_solve_s": statistics.median(times) if solved else None,
        "repeats_s": times,
        "greedy_evaluation": "inside the timed call, after every update",
        "stepwise_updates_to_solve": stepwise[0][0],
        "stepwise_time_to_solve_s": statistics.median(r[1] for r in stepwise) if stepwise[0][0] else None,
        "stepwise_repeats_s": [r[1] for r in stepwise],
        "final_greedy_returns": returns.tolist(),
    }


def measure_jaxgrid_one_call(num_seeds: int) -> dict[str, Any]:
    """What a user sees: ``train(PPOConfig(seeds=...))`` with every other setting at its default."""
    from train import train

    config = jaxgrid_config(num_seeds, jaxgrid_config(1, 16).num_envs)
    result = train(config)
    returns = np.asarray(result.eval_returns).reshape(-1)
    return {
        "num_seeds": num_seeds,
        "num_envs": config.num_envs,
        "total_timesteps_per_seed": config.env_steps_per_seed,
        "compile_s": result.compile_seconds,
        "run_s": result.run_seconds,
        "steps_per_s": result.env_steps_per_second,
        "all_optimal": bool((returns >= SOLVED).all()),
        "eval_returns": returns.tolist(),
    }


# ------------------------------------------------------------------------------------------------
# Stable-Baselines3
def sb3_available() -> str | None:
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401

        return None
    except ImportError as err:
        return f"{err} (pip install -e '.[bench]')"


def sb3_env_id(which: str) -> str:
    if which == "adapter":
        import jaxgrid  # noqa: F401  (registers jaxgrid/<id> with Gymnasium)

        return f"jaxgrid/{ENV_ID}"
    return cpu_gridworld.register()


def make_sb3(which: str, seed: int):
    """SB3 PPO with the hyperparameters of ``PPOConfig``'s defaults, its envs reset and stepped once.

    The warm-up step matters for the adapter: each adapter instance jit-compiles its own step on
    first use, so 16 envs compile 16 times; that is set-up (reported apart), not training.
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    config = jaxgrid_config(1, 16)
    vec_env = make_vec_env(sb3_env_id(which), n_envs=config.num_envs, seed=seed)
    vec_env.reset()
    vec_env.step(np.zeros(config.num_envs, np.int64))
    lr = config.learning_rate
    return PPO(
        "MlpPolicy",
        vec_env,
        learning_rate=(lambda remaining: lr * remaining) if config.anneal_lr else lr,
        n_steps=config.num_steps,
        batch_size=config.minibatch_size,
        n_epochs=config.update_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_eps,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        normalize_advantage=config.normalize_advantage,
        policy_kwargs={"net_arch": list(config.hidden_sizes), "activation_fn": torch.nn.Tanh},
        seed=seed,
        device="cpu",
        verbose=0,
    )


def greedy_return(model, env) -> float:
    """Return of one greedy episode (the env is deterministic, so one episode decides optimality)."""
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(int(action))
        total += reward
        done = terminated or truncated
    return total


def measure_sb3_throughput(which: str, args) -> dict[str, Any]:
    """Env steps/s of ``learn`` (rollouts and updates), after set-up and one untimed warm-up rollout."""
    runs, setup = [], []
    steps = args.sb3_throughput_steps
    for repeat in range(args.sb3_repeats):
        t0 = time.perf_counter()
        model = make_sb3(which, seed=repeat)
        setup.append(time.perf_counter() - t0)
        model.learn(total_timesteps=model.n_steps * model.n_envs)  # warm-up: torch's first calls
        start = time.perf_counter()
        model.learn(total_timesteps=steps)
        runs.append(time.perf_counter() - start)
        done_steps = model.num_timesteps
    run_s = statistics.median(runs)
    return {
        "env": which, "env_steps": done_steps, "run_s": run_s, "runs_s": runs, "setup_s": setup,
        "steps_per_s": done_steps / run_s, "torch_threads": args.torch_threads,
    }


def measure_sb3_solve(which: str, seed: int, args) -> dict[str, Any]:
    import gymnasium
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = gymnasium.make(cpu_gridworld.register())  # same rules; fast, and its time is excluded anyway

    class SolveCallback(BaseCallback):
        def __init__(self):
            super().__init__()
            self.eval_s = 0.0
            self.solved_at: tuple[int, float] | None = None
            self.start = time.perf_counter()
            self.stop = False

        def _on_rollout_end(self) -> None:
            t0 = time.perf_counter()
            ret = greedy_return(self.model, eval_env)
            t1 = time.perf_counter()
            self.eval_s += t1 - t0
            if ret >= SOLVED and self.solved_at is None:
                # The policy evaluated here is the one after the previous update.
                self.solved_at = (self.num_timesteps - self.model.n_steps * self.model.n_envs, t0 - self.start - (self.eval_s - (t1 - t0)))
                self.stop = True

        def _on_step(self) -> bool:
            return not self.stop

    t0 = time.perf_counter()
    model = make_sb3(which, seed)
    setup_s = time.perf_counter() - t0
    callback = SolveCallback()
    callback.start = time.perf_counter()
    model.learn(total_timesteps=args.solve_max_steps, callback=callback)
    wall = time.perf_counter() - callback.start
    solved = callback.solved_at is not None
    return {
        "env": which,
        "seed": seed,
        "solved": solved,
        "env_steps_to_solve": callback.solved_at[0] if solved else None,
        "time_to_solve_s": callback.solved_at[1] if solved else None,
        "max_steps": args.solve_max_steps,
        "eval_s": callback.eval_s,
        "wall_s": wall,
        "setup_s": setup_s,
        "torch_threads": args.torch_threads,
    }


# ------------------------------------------------------------------------------------------------
def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = payload["machine"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"wspace": 0.55})
    labels, values, colors = [], [], []
    for row in payload["jaxgrid_throughput"]:
        labels.append(f"jaxgrid\n{row['num_seeds']} seeds x {row['num_envs']} envs x {row.get('num_steps', 32)}")
        values.append(row["steps_per_s"])
        colors.append("C0")
    for row in payload["sb3_throughput"]:
        labels.append(f"SB3 ({row['env']})\n1 seed x 16 envs")
        values.append(row["steps_per_s"])
        colors.append("C3")
    ax1.barh(range(len(values)), values, color=colors)
    ax1.set_yticks(range(len(values)), labels, fontsize=7)
    ax1.set_xscale("log")
    ax1.invert_yaxis()
    ax1.set_xlabel("PPO training env steps / s (compile excluded)")
    for i, v in enumerate(values):
        ax1.text(v, i, " " + harness.format_rate(v), va="center", fontsize=7)

    labels, values, colors = [], [], []
    for row in payload["jaxgrid_solve"]:
        if row["solved"]:
            labels.append(f"jaxgrid: all {row['num_seeds']} seeds\n({row['num_envs']} envs each)")
            values.append(row["time_to_solve_s"])
            colors.append("C0")
    by_env: dict[str, list[float]] = {}
    for row in payload["sb3_solve"]:
        if row["solved"]:
            by_env.setdefault(row["env"], []).append(row["time_to_solve_s"])
    for env, times in by_env.items():
        labels.append(f"SB3 ({env}): 1 seed\n(median of {len(times)})")
        values.append(statistics.median(times))
        colors.append("C3")
    if values:
        ax2.barh(range(len(values)), values, color=colors)
        ax2.set_yticks(range(len(values)), labels, fontsize=7)
        ax2.set_xscale("log")
        ax2.invert_yaxis()
        for i, v in enumerate(values):
            ax2.text(v, i, f" {v:.3g}s", va="center", fontsize=7)
    ax2.set_xlabel("wall-clock s until greedy policy optimal (return 0.8), compile excluded")
    fig.suptitle(f"PPO on {ENV_ID} - {info['cpu']} x{info['cpu_count']}, jax {info['versions']['jax']}", fontsize=9)
    harness.save_figure(fig, path)
    plt.close(fig)


def summarise(payload: dict[str, Any]) -> dict[str, Any]:
    def find(rows, **match):
        return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)

    sb3_rates = [r["steps_per_s"] for r in payload["sb3_throughput"]]
    sb3_best = max(sb3_rates) if sb3_rates else None
    jg_default = find(payload["jaxgrid_throughput"], num_seeds=8, num_envs=16, num_steps=32)
    # PureJaxRL's configuration (4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64 tanh); the
    # issue quotes PureJaxRL at ~240k steps/s (1 seed) and 300-335k (8 seeds) on this machine class.
    pjr = {n: find(payload["jaxgrid_throughput"], num_seeds=n, num_envs=4, num_steps=128) for n in (1, 8)}
    jg_best = max(payload["jaxgrid_throughput"], key=lambda r: r["steps_per_s"], default=None)
    # SB3's time to solve one seed: the median over seeds, on whichever env makes SB3 fastest.
    by_env: dict[str, list[float]] = {}
    for r in payload["sb3_solve"]:
        if r["solved"]:
            by_env.setdefault(r["env"], []).append(r["time_to_solve_s"])
    sb3_solve = min((statistics.median(v) for v in by_env.values()), default=None)
    jg8 = find(payload["jaxgrid_solve"], num_seeds=8, solved=True)
    ratio = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
    return {
        "sb3_steps_per_s_best": sb3_best,
        "jaxgrid_8x16_steps_per_s": jg_default and jg_default["steps_per_s"],
        "jaxgrid_best_steps_per_s": jg_best and jg_best["steps_per_s"],
        "jaxgrid_best_config": jg_best and f"{jg_best['num_seeds']} seeds x {jg_best['num_envs']} envs x {jg_best['num_steps']} steps",
        "throughput_ratio_8x16_vs_sb3": ratio(jg_default and jg_default["steps_per_s"], sb3_best),
        "throughput_ratio_best_vs_sb3": ratio(jg_best and jg_best["steps_per_s"], sb3_best),
        "throughput_target": 100.0,
        "purejaxrl_config_1_seed_steps_per_s": pjr[1] and pjr[1]["steps_per_s"],
        "purejaxrl_config_8_seeds_steps_per_s": pjr[8] and pjr[8]["steps_per_s"],
        "purejaxrl_config_targets_steps_per_s": {"1_seed": 1.3 * 240e3, "8_seeds": 1.3 * 300e3},
        "sb3_time_to_solve_1_seed_s": sb3_solve,
        "sb3_solved_seeds": {env: len(v) for env, v in by_env.items()},
        "sb3_seeds_tried": len(payload["sb3_solve"]),
        "jaxgrid_time_to_solve_8_seeds_s": jg8 and jg8["time_to_solve_s"],
        "jaxgrid_compile_s_8_seeds": jg8 and jg8["compile_s"],
        "solve_ratio_sb3_1_vs_jaxgrid_8": ratio(sb3_solve, jg8 and jg8["time_to_solve_s"]),
        "jaxgrid_stepwise_time_to_solve_8_seeds_s": jg8 and jg8["stepwise_time_to_solve_s"],
        "solve_ratio_sb3_1_vs_jaxgrid_8_stepwise": ratio(sb3_solve, jg8 and jg8["stepwise_time_to_solve_s"]),
        "solve_ratio_including_compile": ratio(sb3_solve, jg8 and jg8["time_to_solve_s"] + jg8["compile_s"]),
        "solve_target": 20.0,
    }


def print_tables(payload: dict[str, Any]) -> None:
    print("\n| trainer | seeds x envs x steps | env steps/s | run s | compile s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in payload["jaxgrid_throughput"]:
        print(f"| jaxgrid PPO | {r['num_seeds']} x {r['num_envs']} x {r['num_steps']} | {harness.format_rate(r['steps_per_s'])} | "
              f"{r['run_s']:.2f} | {r['compile_s']:.1f} |")
    for r in payload["sb3_throughput"]:
        print(f"| SB3 PPO ({r['env']}) | 1 x 16 x 32 | {harness.format_rate(r['steps_per_s'])} | {r['run_s']:.2f} | - |")
    print("\n| trainer | seeds solved | env steps per seed | time to solve s | compile s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in payload["jaxgrid_solve"]:
        solved = f"all {r['num_seeds']}" if r["solved"] else f"not all {r['num_seeds']} in {r['max_updates']} updates"
        tts = f"{r['time_to_solve_s']:.3f}" if r["solved"] else "-"
        steps = r["env_steps_per_seed_to_solve"] if r["solved"] else "-"
        print(f"| jaxgrid PPO ({r['num_envs']} envs), one call, evaluations inside | {solved} | {steps} | {tts} | {r['compile_s']:.1f} |")
        if r.get("stepwise_time_to_solve_s") is not None:
            steps = r["stepwise_updates_to_solve"] * r["env_steps_per_seed_to_solve"] // r["updates_to_solve"]
            print(f"| jaxgrid PPO ({r['num_envs']} envs), a call per update, evaluations not timed | {solved} | {steps} | "
                  f"{r['stepwise_time_to_solve_s']:.3f} | - |")
    one = payload.get("jaxgrid_one_call")
    if one:
        print(f"| jaxgrid train() defaults, one call | {'all' if one['all_optimal'] else 'not all'} {one['num_seeds']} | "
              f"{one['total_timesteps_per_seed']} | {one['run_s']:.2f} (whole budget) | {one['compile_s']:.1f} |")
    for r in payload["sb3_solve"]:
        tts = f"{r['time_to_solve_s']:.3f}" if r["solved"] else f"not in {r['max_steps']} steps"
        steps = r["env_steps_to_solve"] if r["solved"] else "-"
        print(f"| SB3 PPO ({r['env']}, seed {r['seed']}), evaluations not timed | {'1' if r['solved'] else '0'} | {steps} | {tts} | - |")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer configs, small budgets")
    p.add_argument("--configs", nargs="+", default=None,
                   help="throughput points as SEEDSxENVS or SEEDSxENVSxSTEPS (rollout length; default 32). "
                        "Default: 1x16 8x16 64x16 8x256 64x256, and PureJaxRL's 4 envs x 128 steps as 1x4x128 8x4x128")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seed counts timed to solve (default 1 8 64)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per jaxgrid throughput point")
    p.add_argument("--train-budget", type=int, default=None,
                   help="env steps (all seeds) per throughput run, within --min-updates and --max-updates")
    p.add_argument("--min-updates", type=int, default=2)
    p.add_argument("--max-updates", type=int, default=64)
    p.add_argument("--solve-max-steps", type=int, default=None, help="env steps per seed before giving up on solving")
    p.add_argument("--sb3-throughput-steps", type=int, default=None)
    p.add_argument("--sb3-repeats", type=int, default=None)
    p.add_argument("--sb3-seeds", type=int, default=None, help="SB3 seeds timed to solve (median quoted)")
    p.add_argument("--sb3-envs", nargs="+", default=["adapter", "python"], choices=["adapter", "python"])
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads for SB3 (1 is fastest for 64x64 MLPs on this machine)")
    p.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "train_throughput.json")
    args = p.parse_args(argv)
    args.out = harness.quick_out(args.out, args.quick, p.get_default("out"))  # never over bench/results
    quick = args.quick
    defaults = {
        "configs": ["1x16", "8x16"] if quick else ["1x16", "8x16", "64x16", "8x256", "64x256", "1x4x128", "8x4x128"],
        "seeds": [1, 8] if quick else [1, 8, 64],
        "repeats": 2 if quick else 3,
        "train_budget": 2**15 if quick else 2**20,
        "solve_max_steps": 2**14 if quick else 2**17,
        "sb3_throughput_steps": 1024 if quick else 16384,
        "sb3_repeats": 1 if quick else 3,
        "sb3_seeds": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    info = harness.machine_info()
    harness.print_header(info)
    start = time.perf_counter()
    payload: dict[str, Any] = {
        "benchmark": "train_throughput",
        "env_id": ENV_ID,
        "machine": info,
        "protocol": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "jaxgrid_throughput": [],
        "jaxgrid_solve": [],
        "jaxgrid_one_call": None,
        "sb3_throughput": [],
        "sb3_solve": [],
        "skipped": [],
    }
    for point in args.configs:
        num_seeds, num_envs, *steps = (int(x) for x in point.lower().split("x"))
        row = measure_jaxgrid_throughput(num_seeds, num_envs, args, num_steps=steps[0] if steps else None)
        payload["jaxgrid_throughput"].append(row)
        print(f"jaxgrid throughput {num_seeds:>3d} seeds x {num_envs:>4d} envs x {row['num_steps']:>3d} steps: "
              f"{harness.format_rate(row['steps_per_s'])} steps/s (run {row['run_s']:.2f}s, compile {row['compile_s']:.1f}s)",
              flush=True)
    for num_seeds in args.seeds:
        row = measure_jaxgrid_solve(num_seeds, 16, args)
        payload["jaxgrid_solve"].append(row)
        print(f"jaxgrid solve {num_seeds:>3d} seeds: solved={row['solved']} after {row['updates_to_solve']} updates, "
              f"{row['time_to_solve_s'] if row['solved'] else float('nan'):.3f}s in one call, "
              f"{row['stepwise_time_to_solve_s'] or float('nan'):.3f}s a call per update "
              f"(compile {row['compile_s']:.1f}s, {row['num_devices']} device(s))", flush=True)
    if not args.quick:  # the default budget takes a while: not in a smoke run
        row = payload["jaxgrid_one_call"] = measure_jaxgrid_one_call(8)
        print(f"jaxgrid train(PPOConfig(seeds=range(8))) defaults: compile {row['compile_s']:.1f}s, run {row['run_s']:.2f}s, "
              f"all greedy optimal: {row['all_optimal']}", flush=True)
    missing = None if not args.no_sb3 else "--no-sb3"
    missing = missing or sb3_available()
    if missing:
        payload["skipped"].append({"what": "stable-baselines3", "reason": missing})
        print(f"SB3 skipped: {missing}")
    else:
        import torch

        torch.set_num_threads(args.torch_threads)
        for which in args.sb3_envs:
            row = measure_sb3_throughput(which, args)
            payload["sb3_throughput"].append(row)
            print(f"SB3 throughput ({which}): {harness.format_rate(row['steps_per_s'])} steps/s", flush=True)
        for which in args.sb3_envs:
            for seed in range(args.sb3_seeds):
                row = measure_sb3_solve(which, seed, args)
                payload["sb3_solve"].append(row)
                print(f"SB3 solve ({which}, seed {seed}): solved={row['solved']} "
                      f"steps={row['env_steps_to_solve']} time={row['time_to_solve_s']}", flush=True)
    payload["summary"] = summarise(payload)
    payload["wall_s"] = time.perf_counter() - start
    print_tables(payload)
    print("\nsummary: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in payload["summary"].items()))
    payload["loadavg_end_1_5_15min"] = list(os.getloadavg())
    harness.write_results(args.out, payload, lambda png: plot(payload, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
