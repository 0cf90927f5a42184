"""Maze env steps per second: the current maze generator against the one at a git revision.

    python bench/maze_speed.py                       # against HEAD's generator, 256 and 4096 envs
    python bench/maze_speed.py --rev 2ea96f4 --num-envs 256 4096 --repeats 5

Through ``jaxgrid.VecEnv`` a maze is generated only for the envs whose episode ended; with
``--vmap``, ``vmap(env.step)`` generates one in every step of every env (auto-reset is a
``jnp.where`` under ``vmap``), so the generator sets the step rate. Both envs are built side by side in one process
from the same template, differing only in ``generators.generate_maze``; the old one is the module
``jaxgrid/generators.py`` as it is at ``--rev`` (``git show``). Each timed call is ``jit`` of a
``lax.scan`` of ``--steps`` steps (``VecEnv.step``, or ``vmap(env.step)``) with actions made before the clock; compile
time is reported apart; the calls of the two versions alternate and the median is quoted.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxgrid  # noqa: E402
from jaxgrid import generators, procedural  # noqa: E402

MAZES = {"Maze-9x9-v0": 9, "Maze-15x15-v0": 15}


def load_generators_at(rev: str) -> types.ModuleType:
    """``jaxgrid/generators.py`` as it is at git revision ``rev``, as a module."""
    source = subprocess.run(
        ["git", "show", f"{rev}:jaxgrid/generators.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType(f"generators_at_{rev}")
    exec(compile(source, f"{rev}:jaxgrid/generators.py", "exec"), module.__dict__)
    return module


def make_maze_env(size: int, generate_maze: Callable) -> tuple[procedural.ProceduralGridWorld, object]:
    """The registered maze env of side ``size`` with its generator swapped for ``generate_maze``."""
    env, params = jaxgrid.make(f"Maze-{size}x{size}-v0")
    env = procedural.ProceduralGridWorld(
        env.layout, lambda key, _params: generate_maze(key, size, size), obs=env.obs_encoding,
        env_id=env.env_id,
    )
    return env, params


def build_rollout(env, params, num_envs: int, num_steps: int, vmap: bool = False) -> tuple[Callable, tuple]:
    """``(fn, args)``: ``num_steps`` auto-resetting steps of ``num_envs`` envs in one ``lax.scan``
    through ``jaxgrid.VecEnv`` (``vmap=True``: plain ``vmap(env.step)``, a maze per env per step);
    every output feeds a checksum so none of it is dead code."""
    venv = jaxgrid.VecEnv(env, num_envs)
    key_reset, key_actions, key_run = jax.random.split(jax.random.PRNGKey(0), 3)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params)
    actions = jax.random.randint(key_actions, (num_steps, num_envs), 0, env.num_actions, dtype=jnp.int32)

    def rollout(state, actions, key):
        def one_step(carry, action):
            state, key, total = carry
            key, key_step = jax.random.split(key)
            if vmap:
                obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(key_step, num_envs), state, action, params
                )
            else:
                obs, state, reward, terminated, truncated, _ = venv.step(key_step, state, action, params)
            total = total + obs.reshape(num_envs, -1).sum(axis=1) + reward + terminated + truncated
            return (state, key, total), None

        (state, _, total), _ = jax.lax.scan(one_step, (state, key, jnp.zeros(num_envs)), actions)
        return state, total

    return rollout, (state, actions, key_run)


def time_side_by_side(calls: dict[str, tuple[Callable, tuple]], repeats: int) -> dict[str, dict[str, float]]:
    """Compiles each call (timed apart), then times them alternately; seconds per call."""
    compiled, compile_s = {}, {}
    for name, (fn, args) in calls.items():
        start = time.perf_counter()
        compiled[name] = jax.jit(fn).lower(*args).compile()
        compile_s[name] = time.perf_counter() - start
        jax.block_until_ready(compiled[name](*args))  # warm-up
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (_, args) in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(compiled[name](*args))
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": float(np.median(times[name])), "compile_s": compile_s[name]} for name in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default="HEAD", help="git revision whose generator is the baseline")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--steps", type=int, default=16, help="steps per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vmap", action="store_true", help="time vmap(env.step) (a maze per env per step), not VecEnv")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "maze_speed.json")
    args = parser.parse_args()

    old = load_generators_at(args.rev)
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({platform.processor() or platform.machine()}); "
          f"command: python {' '.join(sys.argv)}", flush=True)
    rows = []
    for env_id, size in MAZES.items():
        for num_envs in args.num_envs:
            calls = {
                f"old ({args.rev})": build_rollout(*make_maze_env(size, old.generate_maze), num_envs, args.steps, args.vmap),
                "new": build_rollout(*make_maze_env(size, generators.generate_maze), num_envs, args.steps, args.vmap),
            }
            result = time_side_by_side(calls, args.repeats)
            rate = {name: num_envs * args.steps / r["median_s"] for name, r in result.items()}
            old_name = f"old ({args.rev})"
            print(f"{env_id:14s} envs={num_envs:5d}  old {rate[old_name] / 1e6:7.3f} M steps/s  "
                  f"new {rate['new'] / 1e6:7.3f} M steps/s  x{rate['new'] / rate[old_name]:5.1f}  "
                  f"(compile old {result[old_name]['compile_s']:.1f}s, new {result['new']['compile_s']:.1f}s)",
                  flush=True)
            rows.append({"env_id": env_id, "num_envs": num_envs, "steps": args.steps, "repeats": args.repeats,
                         "old_steps_per_s": rate[old_name], "new_steps_per_s": rate["new"],
                         "old_compile_s": result[old_name]["compile_s"], "new_compile_s": result["new"]["compile_s"]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rev": args.rev, "jax": jax.__version__, "command": sys.argv, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
