"""Memory: the feedforward against the recurrent (GRU) PPO policy on partially observed grids.

    python bench/memory.py            # TMaze-v0 and FourRoomsRandom-View5-v0, 16 seeds each
    python bench/memory.py --quick    # a smoke run: 2 seeds, tiny budgets (tests/bench/test_memory.py)

For each task: its preset (``train/presets.py``, the recurrent GRU policy) and the same config
with ``rnn_hidden_size=0`` (the feedforward policy), each one ``train.train`` call over all seeds
in one program (recurrent: the preset's ``seed_batching="vmap"``, which batches its many small
sequential GRU steps over the seeds; feedforward: ``"map"``, the CPU default). Reported per task and policy: the greedy evaluation after training over
``num_eval_envs`` fresh episodes per seed (TMaze-v0: success = (return + 1) / 2, the episode
return being +1 at the goal and -1 in the lava), its IQM with a 95% stratified-bootstrap CI
(``train.report``), every seed's score, the wall time of the whole call (compile + run), and the
learning curves (mean training-episode return per update, IQM over seeds).

The feedforward policy trains ``feedforward_updates`` updates only: on ``TMaze-v0`` no memoryless
policy can exceed success 1/2 whatever its budget (exact, ``tests/jaxgrid/test_tmaze.py``).

Throughput (skip with ``--no-throughput``): both policies at the TMaze-v0 preset's config, 1 seed,
3 updates, compiled first, then timed alternately (``--repeats``, median), so the ratio is
measured side by side under the same load; the recurrent one also with truncated BPTT
(``bptt_length``); with the preset's ``view`` observation and with ``obs="onehot"`` (the same
dense encoder for both: the GRU's own cost), beside each network's multiply-adds per sample. The
machine is shared: the load average is recorded before and after.

Writes ``results/memory.json`` and ``results/memory.png`` (``--out`` to change; the committed
results are ``memory_tmaze``, ``memory_fourrooms`` and ``memory_throughput``, one ``--tasks`` each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from harness import RESULTS_DIR, machine_info, print_header, quick_out, save_figure, write_results  # noqa: E402

SEEDS = tuple(range(16))
# The tasks: each trains its preset (train/presets.py: the recurrent policy, rnn_hidden_size > 0)
# and the same config with rnn_hidden_size=0 (the feedforward policy) for feedforward_updates
# updates only (on TMaze-v0 no memoryless policy exceeds success 1/2 whatever its budget: exact,
# tests/jaxgrid/test_tmaze.py).
TASKS = {
    "TMaze-v0": dict(
        feedforward_updates=4,
        success=lambda ret: (ret + 1.0) / 2.0,  # return = 2 * success - 1
    ),
    "FourRoomsRandom-View5-v0": dict(
        feedforward_updates=2,
        success=None,  # the return is the success (+1 at the goal, 0 otherwise)
    ),
}
QUICK = dict(num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 4, num_eval_envs=8,
             rnn_hidden_size=16)


def task_configs(name: str, seeds: tuple[int, ...], quick: bool) -> dict:
    """``{"recurrent": PPOConfig, "feedforward": PPOConfig}`` of a task: its preset, and the preset
    with ``rnn_hidden_size=0`` and ``feedforward_updates`` updates (``--quick``: tiny budgets)."""
    from train.presets import preset_config

    recurrent = preset_config(name, seeds=seeds, **(QUICK if quick else {}))
    assert recurrent.rnn_hidden_size > 0, f"the {name} preset should train the recurrent policy"
    updates = 4 if quick else TASKS[name]["feedforward_updates"]
    # NOTE: "map" for the feedforward policy (the CPU default: one seed after another is bitwise
    # independent of the others); the recurrent preset vmaps its small GRU steps over the seeds.
    feedforward = recurrent.replace(
        rnn_hidden_size=0, seed_batching="map",
        total_timesteps=updates * recurrent.num_envs * recurrent.num_steps,
    )
    return {"recurrent": recurrent, "feedforward": feedforward}


def run_task(name: str, task: dict, seeds: tuple[int, ...], quick: bool) -> dict:
    from train import train
    from train.report import summarize

    rows = {}
    for policy, config in task_configs(name, seeds, quick).items():
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = train(config)
        wall = time.perf_counter() - start
        returns = np.asarray(result.eval_returns, np.float64)
        score = task["success"](returns) if task["success"] else returns
        summary = summarize(score, seeds, f"{name} {policy}")
        curve = np.asarray(result.metrics["episode_return"], np.float64)  # [S, U]
        rows[policy] = {
            "config": {k: v for k, v in vars(config).items() if k not in ("seeds", "sweep")},
            "metric": "success" if task["success"] else "greedy return",
            "scores": score.tolist(),
            "mean": summary.mean, "iqm": summary.iqm, "iqm_ci95": list(summary.iqm_ci),
            "min": float(score.min()),
            "wall_s": wall, "compile_s": result.compile_seconds, "run_s": result.run_seconds,
            "env_steps": result.env_steps, "steps_per_s": result.env_steps_per_second,
            "curve_env_steps": np.asarray(result.metrics["env_steps"])[0].tolist(),
            "curve_return_iqm": [_iqm_nan(curve[:, u]) for u in range(curve.shape[1])],
            "curve_return_per_seed": curve.tolist(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0],
        }
        r = rows[policy]
        print(f"{name:<26} {policy:<12} {r['metric']} IQM {r['iqm']:.3f} "
              f"[{r['iqm_ci95'][0]:.3f}, {r['iqm_ci95'][1]:.3f}]  min {r['min']:.3f}  "
              f"wall {wall:.0f}s (compile {result.compile_seconds:.0f}s)  "
              f"{r['steps_per_s']:.0f} env steps/s  load {load_before:.1f}", flush=True)
    return rows


def _iqm_nan(values: np.ndarray) -> float | None:
    from train.report import iqm

    values = values[np.isfinite(values)]
    return iqm(values) if len(values) else None


POLICIES = ("feedforward", "recurrent", "recurrent_bptt", "feedforward_wide")


def multiply_adds_per_sample(config, features: int) -> int:
    """Multiply-adds of one forward pass per sample (the dense layers; ``features`` input width):
    the feedforward network's two towers, or the GRU (input and recurrent projections, 3 gates)
    and the towers after it. The recurrent network's extra arithmetic is what limits its speed
    where the network, not the env or per-kernel latency, dominates (XLA:CPU, small grids)."""
    def towers(width: int) -> int:
        sizes = (width,) + tuple(config.hidden_sizes)
        hidden = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        return 2 * hidden + sizes[-1] * 5  # actor and critic towers; 4 logits + 1 value
    H = config.rnn_hidden_size
    return towers(features) if H == 0 else 3 * H * (features + H) + towers(H)


def equal_arithmetic_sizes(config, features: int) -> tuple[int, int]:
    """``(h, h)``: the narrowest two-layer feedforward towers whose multiply-adds per sample reach
    the recurrent network's of ``config`` (a control: a feedforward network doing the GRU policy's
    arithmetic, to tell the cost of arithmetic from the cost of recurrence)."""
    target = multiply_adds_per_sample(config, features)
    width = 1
    while multiply_adds_per_sample(config.replace(rnn_hidden_size=0, hidden_sizes=(width, width)), features) < target:
        width += 1
    return (width, width)


def measure_throughput(quick: bool, repeats: int, updates: int) -> dict:
    """Env steps/s of both policies at the same config: the TMaze-v0 preset, one seed, ``updates``
    updates, every config compiled first, then timed alternately (median of ``repeats`` run
    times). Four policies: feedforward, recurrent (BPTT through whole rollouts, the preset),
    recurrent with truncated BPTT (``bptt_length`` = num_steps / 8) and, as a control, a
    feedforward network as wide as makes its arithmetic the recurrent one's
    (``equal_arithmetic_sizes``). Two observations: the
    preset's ``view`` 3x3 and ``obs="onehot"`` (both read the vector through dense layers), each
    with the per-sample multiply-adds of both networks (``multiply_adds_per_sample``)."""
    import jaxgrid
    from train import train

    base = task_configs("TMaze-v0", (0,), quick)["recurrent"]
    base = base.replace(total_timesteps=base.num_envs * base.num_steps * updates)
    configs, features = {}, {}
    for obs, env_kwargs in (("view", {}), ("onehot", {"obs": "onehot"})):
        env, params = jaxgrid.make("TMaze-v0", **env_kwargs)
        space = env.observation_space(params)
        features[obs] = int(np.prod(space.shape)) if space.shape else int(space.n)
        changes = {"feedforward": dict(rnn_hidden_size=0), "recurrent": {},
                   "recurrent_bptt": dict(bptt_length=base.num_steps // 8),
                   "feedforward_wide": dict(rnn_hidden_size=0,
                                            hidden_sizes=equal_arithmetic_sizes(base, features[obs]))}
        for policy in POLICIES:
            configs[obs, policy] = base.replace(env_kwargs=env_kwargs, **changes[policy])
    compile_s = {k: train(c).compile_seconds for k, c in configs.items()}
    runs: dict[tuple[str, str], list[float]] = {k: [] for k in configs}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        for k, config in configs.items():
            runs[k].append(train(config).run_seconds)
    load.append(os.getloadavg()[0])
    steps = base.env_steps_per_seed
    out: dict = {"env_steps": steps, "updates": updates, "repeats": repeats, "loadavg_before_after": load,
                 "config": {k: v for k, v in vars(base).items() if k not in ("seeds", "sweep")},
                 "bptt_length": configs["view", "recurrent_bptt"].bptt_length}
    for obs in ("view", "onehot"):
        row = {p: {"compile_s": compile_s[obs, p], "runs_s": runs[obs, p],
                   "run_s": statistics.median(runs[obs, p]),
                   "steps_per_s": steps / statistics.median(runs[obs, p]),
                   "multiply_adds_per_sample": multiply_adds_per_sample(configs[obs, p], features[obs]),
                   "hidden_sizes": list(configs[obs, p].hidden_sizes)}
               for p in POLICIES}
        ff = row["feedforward"]["steps_per_s"]
        row["ratio_recurrent_over_feedforward"] = row["recurrent"]["steps_per_s"] / ff
        row["ratio_recurrent_bptt_over_feedforward"] = row["recurrent_bptt"]["steps_per_s"] / ff
        row["ratio_feedforward_wide_over_feedforward"] = row["feedforward_wide"]["steps_per_s"] / ff
        row["arithmetic_ratio_recurrent_over_feedforward"] = (
            row["recurrent"]["multiply_adds_per_sample"] / row["feedforward"]["multiply_adds_per_sample"])
        out[obs] = row
        print(f"throughput, obs={obs} (1 seed, {updates} updates, median of {repeats}): feedforward "
              f"{ff:.0f}, recurrent {row['recurrent']['steps_per_s']:.0f} (ratio "
              f"{row['ratio_recurrent_over_feedforward']:.2f}), truncated BPTT "
              f"{row['recurrent_bptt']['steps_per_s']:.0f} (ratio "
              f"{row['ratio_recurrent_bptt_over_feedforward']:.2f}), feedforward of the recurrent "
              f"arithmetic {row['feedforward_wide']['steps_per_s']:.0f} (ratio "
              f"{row['ratio_feedforward_wide_over_feedforward']:.2f}) env steps/s; multiply-adds per "
              f"sample {row['arithmetic_ratio_recurrent_over_feedforward']:.1f}x  load {load}", flush=True)
    return out


def plot_throughput(throughput: dict, path: Path) -> None:
    """Bars: env steps/s of each policy per observation, the ratio written above each pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"feedforward": "feedforward", "recurrent": "recurrent",
              "recurrent_bptt": f"recurrent, bptt_length {throughput['bptt_length']}",
              "feedforward_wide": "feedforward, the recurrent arithmetic"}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, obs in enumerate(("view", "onehot")):
        row = throughput[obs]
        for j, policy in enumerate(POLICIES):
            ax.bar(i * 5 + j, row[policy]["steps_per_s"], color=f"C{j}", label=labels[policy] if i == 0 else None)
        top = max(row[p]["steps_per_s"] for p in POLICIES)
        ax.text(i * 5 + 1.5, top, f"ratio {row['ratio_recurrent_over_feedforward']:.2f}\n"
                f"arithmetic {row['arithmetic_ratio_recurrent_over_feedforward']:.1f}x",
                ha="center", va="bottom")
    ax.set_xticks([1.5, 6.5], ["TMaze-v0 view 3x3", "TMaze-v0 onehot"])
    ax.set_ylabel("env steps/s (1 seed, median)")
    ax.set_title("recurrent vs feedforward at the TMaze-v0 preset config")
    ax.legend()
    save_figure(fig, path)
    plt.close(fig)


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = payload["tasks"]
    if not tasks:  # --tasks with none: the throughput section only
        plot_throughput(payload["throughput"], path)
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], tasks.items()):
        for policy, row in rows.items():
            x = np.asarray(row["curve_env_steps"], np.float64)
            per_seed = np.asarray(row["curve_return_per_seed"], np.float64)
            iqm = np.asarray([np.nan if v is None else v for v in row["curve_return_iqm"]])
            lo, hi = np.nanpercentile(per_seed, 25, axis=0), np.nanpercentile(per_seed, 75, axis=0)
            line, = ax.plot(x, iqm, label=f"{policy} (final {row['metric']} IQM {row['iqm']:.2f})")
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_title(f"{name}, {len(payload['seeds'])} seeds (IQM, band: quartiles)")
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("training episode return")
        ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, tiny budgets (a smoke run)")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS),
                        help="tasks to train (none: only the throughput section)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the side-by-side timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "memory.json")
    args = parser.parse_args(argv)
    args.out = quick_out(args.out, args.quick, parser.get_default("out"))  # never over bench/results
    info = machine_info()
    print_header(info)
    seeds = SEEDS[:2] if args.quick else SEEDS
    start = time.perf_counter()
    payload = {"machine": info, "seeds": list(seeds), "quick": args.quick, "tasks": {}}
    for name in args.tasks:
        payload["tasks"][name] = run_task(name, TASKS[name], seeds, args.quick)
    if not args.no_throughput:
        payload["throughput"] = measure_throughput(args.quick, 1 if args.quick else args.repeats,
                                                   2 if args.quick else 3)
    payload["wall_s"] = time.perf_counter() - start
    write_results(args.out, payload, lambda png: plot(payload, png))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
