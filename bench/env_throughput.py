"""Env steps per second against the batch size, for jaxgrid and the CPU envs people would otherwise use.

    python bench/env_throughput.py            # full run, a few minutes on a 2-core CPU
    python bench/env_throughput.py --quick    # smoke run, well under a minute

Implementations (one line each in the plot, per env):
- ``jaxgrid scan``: ``jit`` of ``lax.scan`` over ``jaxgrid.VecEnv.step`` (bitwise ``vmap(env.step)``,
  resets computed only for the envs that ended), actions sampled before the clock (the env's own cost).
- ``jaxgrid vmap`` (maze): the same over plain ``vmap(env.step)``, which computes a new maze for
  every env on every step (the auto-reset select): what ``VecEnv`` saves. Every output (obs, reward, terminated, truncated, final observation) feeds a
  checksum in the carry, so XLA cannot drop any of it as dead code.
- ``jaxgrid scan+rand``: the same with random actions drawn inside the program, as a user runs it.
- ``jaxgrid 2dev``: ``jaxgrid scan`` with the env batch sharded over 2 host devices
  (``JAX_NUM_CPU_DEVICES=2``, run in a subprocess because the device count is fixed at start-up).
- ``jaxgrid gym adapter`` / ``jaxgrid make_vec``: jaxgrid through its Gymnasium adapter, stepped from Python.
- ``gymnasium.make``: the plain-Python ``gymnasium.Env`` with the same rules (bench/cpu_gridworld.py), one env.
- ``SyncVectorEnv`` / ``AsyncVectorEnv``: that env in Gymnasium's vector envs (feasible sizes only).
- ``numpy``: the same rules hand-vectorised in NumPy (bench/cpu_gridworld.py), the strongest CPU baseline.
- CartPole-v1: gymnax (``scan``) vs Gymnasium (``gymnasium.make``, and its NumPy ``make_vec``).

Every timed call runs ``num_steps`` steps of ``num_envs`` envs; steps/s = num_envs * num_steps / median.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# bench/ for its helper modules; the repo root so a checkout's jaxgrid/train win over any stale install.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import cpu_gridworld  # noqa: E402
import harness  # noqa: E402

GRID_ID = "GridWorld-4x4-v0"
MAZE_ID = "Maze-9x9-v0"
NUM_ENVS = (1, 16, 256, 4096, 65536)
QUICK_NUM_ENVS = (1, 256)
SYNC_MAX_ENVS = 4096  # SyncVectorEnv: 65,536 Python env objects would take minutes to build and step
ASYNC_MAX_ENVS = 16  # AsyncVectorEnv: one process per env; more than a handful on 2 cores only thrashes


# ------------------------------------------------------------------------------------------------
# JAX builders: each returns (fn, args); the caller jits, compiles (timed apart) and times fn(*args).
def build_gymnax_scan(
    env, params, num_envs: int, num_steps: int, random_actions: bool, sharding=None, unroll: int = 1,
    vec: bool = True,
) -> tuple[Callable, tuple]:
    """``num_steps`` steps of ``num_envs`` envs of any gymnax-API env in one ``lax.scan``.

    Args:
        env, params: a gymnax ``Environment`` and its params (jaxgrid or gymnax).
        random_actions: draw actions inside the program (else they are an input, made beforehand).
        sharding: a ``NamedSharding`` over the env axis, or None for one device.
        unroll: ``lax.scan``'s ``unroll`` (steps per loop iteration).
        vec: step through ``jaxgrid.VecEnv`` (resets only for the envs that ended; bitwise the
            same results), else ``vmap(env.step)`` over ``split(key, num_envs)``.
    """
    import jax
    import jax.numpy as jnp

    import jaxgrid

    venv = jaxgrid.VecEnv(env, num_envs)
    if vec:
        step_batch = venv.step
    else:
        def step_batch(key, state, action, params):
            keys = jax.random.split(key, num_envs)
            return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)

    key_reset, key_actions, key_run = jax.random.split(jax.random.PRNGKey(0), 3)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params)
    num_actions = env.action_space(params).n
    actions = jax.random.randint(key_actions, (num_steps, num_envs), 0, num_actions, dtype=jnp.int32)
    if sharding is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        state = jax.device_put(state, sharding)
        actions = jax.device_put(actions, NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec)))

    def constrain(x):
        return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)

    def checksum(obs, reward, terminated, truncated, info):
        flat = lambda x: x.reshape(num_envs, -1).astype(jnp.float32).sum(axis=1)  # noqa: E731
        return flat(obs) + reward + terminated + truncated + flat(info["final_observation"])

    def run(state, actions, key):
        def body(carry, action):
            state, acc, key = carry
            key, key_step, key_action = jax.random.split(key, 3)
            if random_actions:
                action = constrain(jax.random.randint(key_action, (num_envs,), 0, num_actions))
            obs, state, reward, terminated, truncated, info = step_batch(key_step, state, action, params)
            acc = constrain(acc + checksum(obs, reward, terminated, truncated, info))
            return (state, acc, key), None

        acc = constrain(jnp.zeros(num_envs, jnp.float32))
        xs = actions if not random_actions else jnp.zeros((num_steps, 0), jnp.int32)
        (state, acc, _), _ = jax.lax.scan(body, (state, acc, key), xs, unroll=unroll)
        return state, acc

    return run, (state, actions if not random_actions else None, key_run)


def jax_num_steps(num_envs: int, budget: int, min_steps: int = 64) -> int:
    """Scan length: about ``budget`` env steps per call, at least ``min_steps`` and at most 65,536."""
    return int(np.clip(budget // num_envs, min_steps, 65536))


def measure_jax(
    env, params, num_envs: int, random_actions: bool, args, sharding=None, budget: int | None = None,
    min_steps: int = 64, repeats: int | None = None, vec: bool = True,
) -> dict[str, Any]:
    num_steps = jax_num_steps(num_envs, args.jax_budget if budget is None else budget, min_steps)
    fn, inputs = build_gymnax_scan(
        env, params, num_envs, num_steps, random_actions, sharding, unroll=getattr(args, "unroll", 1), vec=vec
    )
    timing = harness.time_jax(fn, inputs, args.repeats if repeats is None else repeats)
    return result_row(num_envs, num_steps, timing)


def result_row(num_envs: int, num_steps: int, timing: harness.Timing) -> dict[str, Any]:
    return {
        "num_envs": num_envs,
        "num_steps": num_steps,
        "steps_per_s": num_envs * num_steps / timing.median_s,
        "median_s": timing.median_s,
        "repeats_s": timing.seconds,
        "compile_s": timing.compile_s,
    }


# ------------------------------------------------------------------------------------------------
# CPU (Python / NumPy) builders: each returns step_fn(t) that advances every env one step.
def calibrated_steps(step_once: Callable[[int], Any], target_s: float, max_steps: int = 200_000) -> int:
    """Number of steps that take about ``target_s`` (measured on a short trial run)."""
    trial = 0
    start = time.perf_counter()
    while trial < 5 or time.perf_counter() - start < min(0.05, target_s / 4):
        step_once(trial)
        trial += 1
    per_step = (time.perf_counter() - start) / trial
    return int(np.clip(target_s / per_step, 3, max_steps))


def measure_loop(make_stepper: Callable[[], Callable[[int], Any]], num_envs: int, args) -> dict[str, Any]:
    """Times a Python-driven env: ``make_stepper()`` builds the env(s) (untimed) and returns ``step(t)``."""
    step_once = make_stepper()
    for t in range(3):  # untimed: the first steps of a jitted adapter compile its step
        step_once(t)
    num_steps = calibrated_steps(step_once, args.cpu_target_s)
    actions_t = range(num_steps)

    def call():
        for t in actions_t:
            step_once(t)

    timing = harness.time_calls(call, args.repeats, warmup=0)
    return result_row(num_envs, num_steps, timing)


def random_action_table(num_envs: int, num_actions: int, length: int = 1024) -> np.ndarray:
    """[length, num_envs] int64 actions made before the clock; step t uses row t % length."""
    return np.random.default_rng(0).integers(0, num_actions, (length, num_envs))


def stepper_single_gym(env_id: str, **make_kwargs) -> Callable[[], Callable[[int], Any]]:
    """One ``gymnasium.make`` env stepped in a Python loop, reset by hand at episode ends."""
    import gymnasium

    def make():
        env = gymnasium.make(env_id, **make_kwargs)
        env.reset(seed=0)
        actions = [int(a) for a in random_action_table(1, env.action_space.n)[:, 0]]

        def step(t):
            _, _, terminated, truncated, _ = env.step(actions[t % len(actions)])
            if terminated or truncated:
                env.reset()

        return step

    return make


def stepper_vector(make_vec_env: Callable[[], Any], num_envs: int, num_actions: int):
    """A Gymnasium ``VectorEnv`` (it auto-resets) stepped with pre-sampled actions."""

    def make():
        env = make_vec_env()
        env.reset(seed=0)
        actions = random_action_table(num_envs, num_actions, length=64)

        def step(t):
            env.step(actions[t % len(actions)])

        step.env = env
        return step

    return make


def stepper_numpy(num_envs: int):
    def make():
        env = cpu_gridworld.NumpyGridWorld(num_envs)
        env.reset()
        actions = random_action_table(num_envs, 4, length=256).astype(np.int8)

        def step(t):
            env.step(actions[t % len(actions)])

        return step

    return make


# ------------------------------------------------------------------------------------------------
def adapter_available(env_id: str) -> str | None:
    """None if ``gymnasium.make('jaxgrid/<env_id>')`` works, else the reason it does not."""
    try:
        import gymnasium

        import jaxgrid  # noqa: F401  (registers the adapter ids, once it exists)

        gymnasium.make(f"jaxgrid/{env_id}").close()
        return None
    except Exception as err:  # noqa: BLE001 - report any failure as "not available"
        return f"{type(err).__name__}: {err}"


def jaxgrid_available(env_id: str) -> str | None:
    try:
        import jaxgrid

        jaxgrid.make(env_id)
        return None
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"


class Runner:
    """Collects result rows and prints them as they come."""

    def __init__(self, args):
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []

    def add(self, env_id: str, impl: str, row: dict[str, Any]) -> None:
        row = {"env": env_id, "impl": impl, **row}
        self.rows.append(row)
        compile_s = f"  compile {row['compile_s']:.2f}s" if row.get("compile_s") is not None else ""
        print(
            f"{env_id:18s} {impl:22s} N={row['num_envs']:>6d}  {harness.format_rate(row['steps_per_s']):>7s} steps/s"
            f"  (T={row['num_steps']}, median {row['median_s'] * 1e3:.1f} ms){compile_s}",
            flush=True,
        )

    def skip(self, env_id: str, impl: str, reason: str, num_envs: int | None = None) -> None:
        self.skipped.append({"env": env_id, "impl": impl, "num_envs": num_envs, "reason": reason})
        print(f"{env_id:18s} {impl:22s} skipped{'' if num_envs is None else f' N={num_envs}'}: {reason}", flush=True)

    def attempt(self, env_id: str, impl: str, num_envs: int, measure: Callable[[], dict[str, Any]]) -> None:
        try:
            self.add(env_id, impl, measure())
        except Exception as err:  # noqa: BLE001 - one failing line must not lose the others
            self.skip(env_id, impl, f"{type(err).__name__}: {err}", num_envs)


def run_gridworld(runner: Runner, sizes) -> None:
    import gymnasium
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    import jaxgrid

    args = runner.args
    env, params = jaxgrid.make(GRID_ID)
    py_id = cpu_gridworld.register()
    adapter_missing = adapter_available(GRID_ID)
    if adapter_missing:
        runner.skip(GRID_ID, "jaxgrid gym adapter", f"adapter not available ({adapter_missing})")
    for n in sizes:
        runner.attempt(GRID_ID, "jaxgrid scan", n, lambda: measure_jax(env, params, n, False, args))
        runner.attempt(GRID_ID, "jaxgrid scan+rand", n, lambda: measure_jax(env, params, n, True, args))
        runner.attempt(GRID_ID, "numpy", n, lambda: measure_loop(stepper_numpy(n), n, args))
        if n == 1:
            runner.attempt(GRID_ID, "gymnasium.make", 1, lambda: measure_loop(stepper_single_gym(py_id), 1, args))
            if not adapter_missing:
                runner.attempt(
                    GRID_ID, "jaxgrid gym adapter", 1,
                    lambda: measure_loop(stepper_single_gym(f"jaxgrid/{GRID_ID}"), 1, args),
                )
        if not adapter_missing:
            runner.attempt(
                GRID_ID, "jaxgrid make_vec", n,
                lambda: measure_loop(
                    stepper_vector(lambda: gymnasium.make_vec(f"jaxgrid/{GRID_ID}", num_envs=n), n, 4), n, args
                ),
            )
        fns = [lambda: gymnasium.make(py_id)] * n
        if n <= min(SYNC_MAX_ENVS, args.max_python_envs):
            runner.attempt(
                GRID_ID, "SyncVectorEnv", n,
                lambda: measure_loop(
                    stepper_vector(lambda: SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), n, 4), n, args
                ),
            )
        else:
            runner.skip(GRID_ID, "SyncVectorEnv", f"N > {min(SYNC_MAX_ENVS, args.max_python_envs)} (minutes per point)", n)
        if n <= ASYNC_MAX_ENVS:
            runner.attempt(
                GRID_ID, "AsyncVectorEnv", n,
                lambda: measure_async(fns, n, args),
            )
        else:
            runner.skip(GRID_ID, "AsyncVectorEnv", f"N > {ASYNC_MAX_ENVS} (one process per env on 2 cores)", n)


def measure_async(fns, n, args) -> dict[str, Any]:
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode

    make = stepper_vector(lambda: AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), n, 4)
    holder = {}

    def make_and_keep():
        step = make()
        holder["env"] = step.env
        return step

    try:
        return measure_loop(make_and_keep, n, args)
    finally:
        if "env" in holder:
            holder["env"].close()


def run_maze(runner: Runner, sizes) -> None:
    missing = jaxgrid_available(MAZE_ID)
    if missing:
        runner.skip(MAZE_ID, "jaxgrid scan", f"not registered yet ({missing})")
        return
    import jaxgrid

    args = runner.args
    env, params = jaxgrid.make(MAZE_ID)
    # The maze draws a new layout at every reset: VecEnv computes it only for the envs that ended,
    # vmap(env.step) for every env on every step (~100x GridWorld's cost): short scans, 3 repeats.
    kw = dict(budget=args.jax_budget // 256, min_steps=16, repeats=min(3, args.repeats))
    for n in sizes[:1] if args.quick else sizes:
        runner.attempt(MAZE_ID, "jaxgrid scan", n, lambda: measure_jax(env, params, n, False, args, **kw))
        if not args.quick:
            runner.attempt(MAZE_ID, "jaxgrid scan+rand", n, lambda: measure_jax(env, params, n, True, args, **kw))
            slow = dict(kw, budget=args.jax_budget // 1024)
            runner.attempt(MAZE_ID, "jaxgrid vmap", n, lambda: measure_jax(env, params, n, False, args, vec=False, **slow))


def run_cartpole(runner: Runner, sizes) -> None:
    import gymnasium
    import gymnax

    args = runner.args
    env, params = gymnax.make("CartPole-v1")
    for n in sizes:
        runner.attempt(
            "CartPole-v1", "gymnax scan", n, lambda: measure_jax(env, params, n, False, args, budget=args.jax_budget // 16)
        )
        if n == 1:
            runner.attempt("CartPole-v1", "gymnasium.make", 1, lambda: measure_loop(stepper_single_gym("CartPole-v1"), 1, args))
        runner.attempt(
            "CartPole-v1", "gymnasium make_vec (numpy)", n,
            lambda: measure_loop(
                stepper_vector(
                    lambda: gymnasium.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point"), n, 2
                ),
                n, args,
            ),
        )


# ------------------------------------------------------------------------------------------------
# 2 host devices: a child process started with JAX_NUM_CPU_DEVICES=2 measures the sharded scan.
def run_devices_child(args) -> None:
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import jaxgrid

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("env",))
    sharding = NamedSharding(mesh, PartitionSpec("env"))
    env, params = jaxgrid.make(GRID_ID)
    rows = []
    for n in args.sizes:
        if n % len(devices):
            continue
        row = measure_jax(env, params, n, False, args, sharding=sharding)
        rows.append({"env": GRID_ID, "impl": f"jaxgrid scan {len(devices)}dev", **row})
    print("JSON:" + json.dumps(rows))


def run_devices(runner: Runner, sizes, num_devices: int = 2) -> None:
    cmd = [
        sys.executable, __file__, "--devices-child", "--repeats", str(runner.args.repeats),
        "--jax-budget", str(runner.args.jax_budget), "--unroll", str(runner.args.unroll), "--sizes", *map(str, sizes),
    ]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(num_devices), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("JSON:")]
    if proc.returncode or not lines:
        runner.skip(GRID_ID, f"jaxgrid scan {num_devices}dev", f"child failed: {proc.stderr[-500:]}")
        return
    for row in json.loads(lines[-1][5:]):
        env_id, impl = row.pop("env"), row.pop("impl")
        runner.add(env_id, impl, row)


# ------------------------------------------------------------------------------------------------
def rate(rows, env_id: str, impl: str, num_envs: int) -> float | None:
    for row in rows:
        if row["env"] == env_id and row["impl"] == impl and row["num_envs"] == num_envs:
            return row["steps_per_s"]
    return None


def compute_ratios(rows, largest: int) -> dict[str, Any]:
    """The issue's targets: jaxgrid scan at the largest batch vs NumPy (same batch) and gymnasium.make."""
    jax_rate = rate(rows, GRID_ID, "jaxgrid scan", largest)
    jax2_rate = rate(rows, GRID_ID, "jaxgrid scan 2dev", largest)
    numpy_rate = rate(rows, GRID_ID, "numpy", largest)
    gym_rate = rate(rows, GRID_ID, "gymnasium.make", 1)
    ratio = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
    return {
        "num_envs": largest,
        "jaxgrid_vs_numpy": ratio(jax_rate, numpy_rate),
        "jaxgrid_vs_numpy_target": 10.0,
        "jaxgrid_vs_gymnasium_make": ratio(jax_rate, gym_rate),
        "jaxgrid_vs_gymnasium_make_target": 200.0,
        "jaxgrid_2dev_vs_numpy": ratio(jax2_rate, numpy_rate),
        "jaxgrid_2dev_vs_gymnasium_make": ratio(jax2_rate, gym_rate),
        "gymnax_vs_gymnasium_cartpole_numpy": ratio(
            rate(rows, "CartPole-v1", "gymnax scan", largest),
            rate(rows, "CartPole-v1", "gymnasium make_vec (numpy)", largest),
        ),
    }


STYLES = {
    "jaxgrid scan": dict(color="C0", marker="o"),
    "jaxgrid scan+rand": dict(color="C0", marker="o", linestyle="--"),
    "jaxgrid vmap": dict(color="C7", marker="o", linestyle=":"),
    "jaxgrid scan 2dev": dict(color="C9", marker="D"),
    "jaxgrid gym adapter": dict(color="C4", marker="*"),
    "jaxgrid make_vec": dict(color="C4", marker="v"),
    "numpy": dict(color="C1", marker="s"),
    "gymnasium.make": dict(color="C3", marker="*", markersize=12),
    "SyncVectorEnv": dict(color="C3", marker="^"),
    "AsyncVectorEnv": dict(color="C5", marker="x"),
    "gymnax scan": dict(color="C2", marker="o"),
    "gymnasium make_vec (numpy)": dict(color="C1", marker="s"),
}


def plot(rows, info, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [e for e in (GRID_ID, MAZE_ID, "CartPole-v1") if any(r["env"] == e for r in rows)]
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.5), squeeze=False)
    for ax, env_id in zip(axes[0], envs):
        impls = dict.fromkeys(r["impl"] for r in rows if r["env"] == env_id)
        for impl in impls:
            pts = sorted((r["num_envs"], r["steps_per_s"]) for r in rows if r["env"] == env_id and r["impl"] == impl)
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=impl, **STYLES.get(impl, {}))
        harness.style_rate_axes(ax, env_id)
    harness.machine_title(fig, info)
    harness.save_figure(fig, path)
    plt.close(fig)


def print_table(rows) -> None:
    impls = list(dict.fromkeys((r["env"], r["impl"]) for r in rows))
    sizes = sorted({r["num_envs"] for r in rows})
    print("\n| env | implementation | " + " | ".join(f"N={n:,}" for n in sizes) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in sizes) + " |")
    for env_id, impl in impls:
        cells = [harness.format_rate(rate(rows, env_id, impl, n)) for n in sizes]
        print(f"| {env_id} | {impl} | " + " | ".join(cells) + " |")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer sizes, repeats and steps")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"num_envs values (default {NUM_ENVS})")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per point (median quoted)")
    p.add_argument("--jax-budget", type=int, default=None, help="env steps per timed JAX call (scan length = budget / num_envs)")
    p.add_argument("--cpu-target-s", type=float, default=None, help="seconds per timed repeat of a Python/NumPy env")
    p.add_argument("--max-python-envs", type=int, default=SYNC_MAX_ENVS, help="largest SyncVectorEnv")
    p.add_argument("--no-devices", action="store_true", help="skip the 2-host-device subprocess")
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll of the JAX loops (default 1: plain scan)")
    p.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "env_throughput.json")
    p.add_argument("--devices-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = harness.quick_out(args.out, args.quick, p.get_default("out"))  # never over bench/results
    if args.sizes is None:
        args.sizes = list(QUICK_NUM_ENVS if args.quick else NUM_ENVS)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.jax_budget is None:
        args.jax_budget = 2**18 if args.quick else 2**24
    if args.cpu_target_s is None:
        args.cpu_target_s = 0.02 if args.quick else 0.25
    if args.quick:
        args.max_python_envs = min(args.max_python_envs, 256)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.devices_child:
        run_devices_child(args)
        return 0
    info = harness.machine_info()
    harness.print_header(info)
    runner = Runner(args)
    start = time.perf_counter()
    run_gridworld(runner, args.sizes)
    if not args.no_devices:
        run_devices(runner, args.sizes)
    run_maze(runner, args.sizes)
    run_cartpole(runner, args.sizes)
    largest = max(args.sizes)
    ratios = compute_ratios(runner.rows, largest)
    print_table(runner.rows)
    print(f"\nratios at N={largest:,}: " + json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in ratios.items()}))
    payload = {
        "benchmark": "env_throughput",
        "machine": info,
        "protocol": {
            "repeats": args.repeats,
            "jax_budget_steps_per_call": args.jax_budget,
            "cpu_target_s_per_repeat": args.cpu_target_s,
            "statistic": "median",
            "compile": "jax.jit(fn).lower(...).compile() timed apart; one untimed warm-up call",
        },
        "results": runner.rows,
        "skipped": runner.skipped,
        "ratios": ratios,
        "wall_s": time.perf_counter() - start,
    }
    payload["loadavg_end_1_5_15min"] = list(os.getloadavg())
    harness.write_results(args.out, payload, lambda png: plot(runner.rows, info, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
