"""Solve the family: every registered id with its preset, 16 seeds, scored against the exact optimum.

    python bench/solve.py                       # every preset id, 16 seeds -> results/solve.{json,png}
    python bench/solve.py --env-ids FrozenLake-v1 CliffWalking-v1 --seeds 16
    python bench/solve.py --quick               # smoke run: 4 seeds, 1/8 of each budget, 4 ids

For each id (``train/presets.py``; the same config ``jaxgrid-train --env-id ID`` uses):
- the exact optimum, ``jaxgrid.optimal_return`` (value iteration on fixed layouts; the mean of the
  per-layout optimum over 1000 fresh layouts on procedural ones), with the horizon cut to the
  evaluation's step cap;
- training in ``--points`` chunks of updates, the greedy policy of every seed evaluated after each
  chunk (``PPOConfig.eval_episodes`` fresh episodes: 1068 on stochastic envs): the learning curve as
  fraction of the optimum (IQM over seeds with its 95% stratified-bootstrap CI, as rliable plots it),
  and the env steps per seed and the training wall time (compile and evaluations excluded) until the
  IQM first reaches 95% of the optimum;
- the final greedy and stochastic score per seed as fraction of the optimum (IQM [95% CI]), the
  success rate, and whether the issue's targets hold (IQM >= 0.95, every seed >= 0.85, compile +
  training within 10 minutes for all seeds).

Seeds are sharded over one host CPU device per core, as ``jaxgrid-train`` runs them. Procedural
envs are evaluated on fresh layouts (keys never used in training). The fraction of the optimum of a
negative optimum (CliffWalking, -13) is ``optimum / score`` (``train.report.fraction_of_optimum``).
"""

from __future__ import annotations

import argparse
import os
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

TARGET = 0.95  # IQM over seeds, as a fraction of the optimum
SEED_FLOOR = 0.85  # every seed
WALL_LIMIT_S = 600.0  # compile + training, all seeds
QUICK_IDS = ("GridWorld-4x4-v0", "CliffWalking-v1", "EmptyRoom-v0", "FrozenLake-v1")


def solve_env(env_id: str, num_seeds: int, points: int, budget_scale: float, num_devices: int,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trains ``env_id``'s preset on ``num_seeds`` seeds in ``points`` chunks; returns its row.

    ``extra``: PPOConfig fields set on top of the preset (``--set``), recorded in the row.
    """
    import jax

    from train import presets, report
    from train.evaluate import evaluate_policies, optimum_of
    from train.placement import Placement, compile_program, rng_config
    from train.ppo import make_train
    from train.setup import make_setup
    from train.rollout import evaluation_budget

    overrides = presets.preset_overrides(env_id)
    config = presets.preset_config(env_id, seeds=tuple(range(num_seeds)), **(extra or {}))
    if budget_scale != 1.0:
        steps = max(config.batch_size, int(config.total_timesteps * budget_scale))
        config = config.replace(total_timesteps=steps)
    # The learning curve's greedy evaluations use the final evaluation's episode count (1068 on a
    # stochastic env), not the in-program default of 16.
    setup_episodes = evaluation_budget(config, make_setup(config).spec)[0]
    config = config.replace(num_eval_envs=setup_episodes)
    num_updates = config.num_updates
    points = max(1, min(points, num_updates))
    bounds = np.linspace(0, num_updates, points + 1).round().astype(int)
    chunks = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    t_start = time.perf_counter()
    placement = Placement.build(config, num_devices)
    trainer = make_train(config, placement)
    setup = trainer.setup
    episodes, max_steps = evaluation_budget(config, setup.spec)
    optimum = optimum_of(setup.spec, max_steps)
    if optimum is None:
        raise ValueError(f"{env_id}: no exact optimum (not a jaxgrid grid env)")
    keys, hparams = placement.keys(), placement.hparams()
    n = config.num_seeds
    with rng_config():
        t0 = time.perf_counter()
        # NOTE: every program keeps the runner state in the placement's shardings, as train()
        # does, so the chunks' compiled input shardings match the state they are given.
        state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
        init = compile_program(trainer.init, keys, out_shardings=state_out)
        state = init(keys)
        compiled = {
            c: compile_program(lambda s, h, c=c: trainer.run_updates(s, h, c), state, hparams,
                               out_shardings=(state_out, out))
            for c in sorted(set(chunks))
        }
        evaluate = compile_program(trainer.evaluate, state, out_shardings=out)
        compile_s = time.perf_counter() - t0

        curve_steps, curve_frac, train_s, eval_s, done = [], [], 0.0, 0.0, 0
        wall_at: list[float] = []
        for c in chunks:
            t0 = time.perf_counter()
            state, _ = jax.block_until_ready(compiled[c](state, hparams))
            train_s += time.perf_counter() - t0
            done += c
            t0 = time.perf_counter()
            greedy = np.asarray(evaluate(state))[0, :n]
            eval_s += time.perf_counter() - t0
            curve_steps.append(done * config.batch_size)
            curve_frac.append(np.asarray(report.fraction_of_optimum(greedy, optimum.expected_return), np.float64))
            wall_at.append(train_s)

    t0 = time.perf_counter()
    params = jax.tree.map(lambda x: x[:, :n], state.params)
    final = evaluate_policies(config, setup, params)
    final_eval_s = time.perf_counter() - t0

    curve = np.stack(curve_frac)  # [points, seeds]
    iqm = [report.iqm(row) for row in curve]
    cis = [report.stratified_bootstrap_ci(row) for row in curve]
    reached = next((i for i, v in enumerate(iqm) if v >= TARGET), None)
    out: dict[str, Any] = {
        "env_id": env_id,
        "measured": {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "loadavg_1_5_15min": list(os.getloadavg()), "num_devices": num_devices},
        "preset": overrides,
        "set": dict(extra or {}),
        "config": {k: getattr(config, k) for k in ("total_timesteps", "num_envs", "num_steps", "learning_rate",
                                                    "gamma", "ent_coef", "hidden_sizes")},
        "seeds": list(config.seeds),
        "env_steps_per_seed": config.env_steps_per_seed,
        "eval_episodes": episodes,
        "eval_max_steps": max_steps,
        "optimum": {"expected_return": optimum.expected_return, "success_prob": optimum.success_prob,
                    "layouts": len(optimum.returns), "stderr": optimum.stderr},
        "compile_s": compile_s,
        "train_s": train_s,
        "curve_eval_s": eval_s,
        "final_eval_s": final_eval_s,
        "wall_s": time.perf_counter() - t_start,
        "curve": {
            "env_steps": curve_steps,
            "iqm": iqm,
            "ci95": [list(c) for c in cis],
            "per_seed": curve.T.tolist(),
        },
        "to_95": None if reached is None else {"env_steps": curve_steps[reached], "train_s": wall_at[reached]},
    }
    for kind in ("greedy", "stochastic"):
        ret = final[f"{kind}_return"][0]
        frac = np.asarray(report.fraction_of_optimum(ret, optimum.expected_return), np.float64)
        out[kind] = {
            "return": ret.tolist(),
            "success": final[f"{kind}_success"][0].tolist(),
            "fraction": frac.tolist(),
            "iqm": report.iqm(frac),
            "ci95": list(report.stratified_bootstrap_ci(frac)),
            "min": float(frac.min()),
            "success_mean": float(np.nanmean(final[f"{kind}_success"][0])),
        }
    g = out["greedy"]
    out["targets"] = {
        "iqm_ge_0.95": bool(g["iqm"] >= TARGET),
        "every_seed_ge_0.85": bool(g["min"] >= SEED_FLOOR),
        "within_10_min": bool(compile_s + train_s <= WALL_LIMIT_S),
    }
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """The README table: one row per env."""
    lines = [
        "| env | budget / seed | optimum | greedy: fraction of optimum, IQM [95% CI] | min seed | success | "
        "stochastic IQM | steps to 95% | train s to 95% | compile + train s | targets |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        g, s = r["greedy"], r["stochastic"]
        to95 = r["to_95"]
        steps95 = "-" if to95 is None else f"{to95['env_steps']:,}"
        wall95 = "-" if to95 is None else f"{to95['train_s']:.0f}"
        met = "all met" if all(r["targets"].values()) else "missed: " + ", ".join(
            k for k, v in r["targets"].items() if not v)
        lines.append(
            f"| {r['env_id']} | {r['env_steps_per_seed']:,} | {r['optimum']['expected_return']:.3f} | "
            f"{g['iqm']:.3f} [{g['ci95'][0]:.3f}, {g['ci95'][1]:.3f}] | {g['min']:.3f} | "
            f"{g['success_mean']:.3f} | {s['iqm']:.3f} | {steps95} | {wall95} | "
            f"{r['compile_s'] + r['train_s']:.0f} | {met} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(rows))
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        steps = np.asarray(r["curve"]["env_steps"])
        iqm = np.asarray(r["curve"]["iqm"])
        ci = np.asarray(r["curve"]["ci95"])
        ax.plot(steps, iqm, color="C0", label="IQM")
        ax.fill_between(steps, ci[:, 0], ci[:, 1], color="C0", alpha=0.25, label="95% CI")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(TARGET, color="C3", lw=0.8, ls="--", label="95% of optimum")
        ax.set_title(f"{r['env_id']} ({len(r['seeds'])} seeds)", fontsize=9)
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("greedy return / optimum")
        ax.set_ylim(min(0.0, float(np.nanmin(ci[:, 0]))), 1.1)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    harness.save_figure(fig, path)
    plt.close(fig)


def parse_sets(parser: argparse.ArgumentParser, sets: list[str]) -> dict[str, Any]:
    """``--set FIELD=JSON`` pairs as a dict; an unknown field or bad JSON is a parser error."""
    import dataclasses
    import json

    from train.config import PPOConfig

    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    extra: dict[str, Any] = {}
    for item in sets:
        name, sep, raw = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected FIELD=JSON")
        if name in ("seeds", "env_id"):
            parser.error(f"--set {name}: give it with --{'seeds' if name == 'seeds' else 'env-ids'} instead")
        if name not in fields:
            parser.error(f"--set {name}: not a PPOConfig field; fields: {', '.join(sorted(fields))}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            parser.error(f"--set {name}: value {raw!r} is not JSON ({e.msg})")
        extra[name] = tuple(value) if isinstance(value, list) else value
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-ids", nargs="+", default=None, help="ids to solve (default: every preset id)")
    parser.add_argument("--seeds", type=int, default=16, help="seeds per id (0..N-1)")
    parser.add_argument("--points", type=int, default=20, help="evaluations along each learning curve")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply each preset's total_timesteps")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 seeds, 1/8 budgets, 4 points, 4 ids")
    parser.add_argument("--devices", type=int, default=None, help="host devices (default: one per core)")
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "solve.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of --out for ids not run now (replace those run)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=JSON",
                        help="a PPOConfig field on top of each preset, its value as JSON, e.g. "
                             "--set ent_coef=0.03 --set 'env_kwargs={\"obs\": \"view\", \"view_size\": 9}' "
                             "(repeatable; recorded in each row's \"set\")")
    args = parser.parse_args(argv)
    extra = parse_sets(parser, args.sets)
    args.out = harness.quick_out(args.out, args.quick, parser.get_default("out"))  # never over bench/results

    import jax

    from train import presets

    ids = args.env_ids or (list(QUICK_IDS) if args.quick else list(presets.PRESETS))
    unknown = [i for i in ids if presets.preset_for(i) is None]
    if unknown:
        parser.error(f"no preset for {', '.join(unknown)}; ids with one: {', '.join(presets.PRESETS)}")
    seeds, points, scale = args.seeds, args.points, args.budget_scale
    if args.quick:
        seeds, points, scale = min(seeds, 4), min(points, 4), scale / 8
    if seeds < 1 or points < 1 or scale <= 0:
        parser.error("--seeds and --points must be >= 1 and --budget-scale > 0")
    num_devices = args.devices or len(jax.devices())

    info = harness.machine_info()
    harness.print_header(info)
    t0 = time.perf_counter()
    rows = []
    for env_id in ids:
        row = solve_env(env_id, seeds, points, scale, num_devices, extra)
        g = row["greedy"]
        print(f"{env_id}: greedy fraction of optimum IQM {g['iqm']:.3f} [{g['ci95'][0]:.3f}, {g['ci95'][1]:.3f}], "
              f"min {g['min']:.3f}, per seed {np.round(g['fraction'], 3).tolist()}; "
              f"compile {row['compile_s']:.0f} s, train {row['train_s']:.0f} s; targets {row['targets']}",
              flush=True)
        rows.append(row)
    if args.merge and args.out.exists():
        import json

        kept = [r for r in json.loads(args.out.read_text())["rows"] if r["env_id"] not in ids]
        rows = kept + rows
        order = list(presets.PRESETS)
        rows.sort(key=lambda r: order.index(r["env_id"]) if r["env_id"] in order else len(order))
    table = format_table(rows)
    print(table)
    payload = {"machine": info, "num_devices": num_devices, "seeds": seeds, "budget_scale": scale,
               "points": points, "quick": args.quick, "rows": rows, "table": table,
               "wall_s": time.perf_counter() - t0}
    harness.write_results(args.out, payload, lambda png: plot(rows, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
