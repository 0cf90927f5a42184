"""jaxgrid beside the JAX gridworld peers (NAVIX, XLand-MiniGrid) and the C++/Python envs (envpool,
Gymnasium): env steps per second at 1, 256, 4,096 and 65,536 envs, in one harness.

    pip install -e '.[peers]'                     # navix, xminigrid, envpool (optional)
    python bench/peers.py                         # full run, ~15-25 min on a 2-core CPU
    python bench/peers.py --quick                 # smoke run, 1 and 256 envs
    python bench/peers.py --quick --only jaxgrid  # jaxgrid rows only (tests/bench runs two of its tasks)

The harness, the same for every JAX library: one ``jit`` program runs ``num_steps`` steps of
``num_envs`` envs in a ``lax.fori_loop`` (the step count is an argument, so a point compiles once and
its length is calibrated to ``--target-s`` per call); actions come from a ``[64, N]`` table sampled
before the clock (step ``t`` uses row ``t % 64``); each library's own auto-reset runs inside the step;
the observation, reward and episode end of every step feed a checksum carried in the loop, so XLA
cannot drop them as dead code. Compile time is reported apart; the median of ``--repeats`` calls is
quoted. envpool and Gymnasium are stepped from Python with the same pre-sampled actions.

Where the dynamics differ (stated in the JSON's ``notes`` and the README):
- MiniGrid agents (NAVIX, XLand-MiniGrid) have a heading: actions turn left / turn right / move
  forward (and pick up, drop, toggle, done: NAVIX 7 actions, XLand-MiniGrid 6); jaxgrid moves
  up / right / down / left. Random actions are drawn over each library's own action set.
- Observations: jaxgrid ``view`` is a 7x7x4 float32 window centred on the agent (not rotated);
  NAVIX ``symbolic_first_person`` is a 7x7x3 uint8 window ahead of the agent, XLand-MiniGrid's
  default a 7x7x2 uint8 window ahead of the agent. ``index`` (jaxgrid) is one int32; ``grid`` the
  whole HxWx4 float32 image.
- Auto-reset: jaxgrid resets in the step that ends an episode (``VecEnv``: only envs that ended
  compute a reset); XLand-MiniGrid's ``GymAutoResetWrapper`` too, through a ``lax.cond`` (under
  ``vmap`` a select: every env computes a reset every step); NAVIX resets in the step after the
  end (also a ``lax.cond``), and envpool in the step after the end, a step that counts here.
- Time limits: jaxgrid EmptyRoom-v0 4*H*W steps, FourRoomsRandom-v0 100; NAVIX 100 (its default);
  XLand-MiniGrid its defaults. The tasks' layouts match (8x8 room with walls around for Empty-8x8:
  NAVIX and XLand-MiniGrid count the outer walls in their 8x8, jaxgrid's size=8 room is 8x8 of floor).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import env_throughput  # noqa: E402
import harness  # noqa: E402

NUM_ENVS = (1, 256, 4096, 65536)
QUICK_NUM_ENVS = (1, 256)
ACTION_ROWS = 64
SLOW_CALL_S = 3.0  # a point whose 2-step call takes longer is timed at 2 steps, 2 repeats
CAPACITY_SWEEP = (32, 8)  # VecEnv reset_capacity = N / this, beside the default N/128
GYM_VECTOR_MAX_ENVS = 4096  # Gymnasium's SyncVectorEnv: 65,536 Python envs take minutes to build
PEER_PACKAGES = ("navix", "xminigrid", "envpool")
LIBRARIES = ("jaxgrid", "navix", "xminigrid", "envpool", "gymnasium")

NOTES = {
    "actions": "MiniGrid agents (NAVIX, XLand-MiniGrid) turn left/right and move forward (plus "
    "pick up/drop/toggle/done); jaxgrid moves up/right/down/left. Random actions over each action set.",
    "observations": "jaxgrid view: 7x7x4 float32 window centred on the agent; NAVIX "
    "symbolic_first_person: 7x7x3 uint8 ahead of the agent; XLand-MiniGrid: 7x7x2 uint8 ahead of "
    "the agent; jaxgrid index: one int32; jaxgrid grid: HxWx4 float32.",
    "auto_reset": "jaxgrid: same step, VecEnv computes resets only for envs that ended; XLand-MiniGrid "
    "GymAutoResetWrapper: same step via lax.cond (a select under vmap); NAVIX and envpool: the step "
    "after the end is the reset (counted as a step).",
    "frozen_lake": "jaxgrid FrozenLake-v1 and envpool FrozenLake-v1 are both slippery (1/3 intended, "
    "1/3 each side); the deterministic grid of the same size is jaxgrid FrozenLake-v1 is_slippery=False.",
}


# ------------------------------------------------------------------------------------------------
# JAX builders. Each returns an ``EnvLoop``: ``init(key) -> carry`` (the batched env) and
# ``step(key, carry, action [N]) -> (carry, checksum [N] float32)``.
class EnvLoop:
    def __init__(self, init: Callable, step: Callable, num_actions: int):
        self.init, self.step, self.num_actions = init, step, num_actions


def _flat_sum(x, num_envs: int):
    import jax.numpy as jnp

    return x.reshape(num_envs, -1).astype(jnp.float32).sum(axis=1)


def jaxgrid_loop(
    env_id: str, num_envs: int, vec: bool = True, capacity_fraction: float | None = None, **make_kwargs
) -> EnvLoop:
    """jaxgrid ``env_id`` through ``VecEnv`` (``vec=False``: plain ``vmap(env.step)``), with
    ``reset_capacity = ceil(num_envs * capacity_fraction)`` (None: the default)."""
    import jax

    import jaxgrid

    env, params = jaxgrid.make(env_id, **make_kwargs)
    capacity = None if capacity_fraction is None else max(1, int(np.ceil(num_envs * capacity_fraction)))
    venv = jaxgrid.VecEnv(env, num_envs, reset_capacity=capacity)

    def init(key):
        return venv.reset(key, params)[1]

    def step(key, state, action):
        if vec:
            out = venv.step(key, state, action, params)
        else:
            keys = jax.random.split(key, num_envs)
            out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
        obs, state, reward, terminated, truncated, _ = out
        return state, _flat_sum(obs, num_envs) + reward + terminated + truncated

    return EnvLoop(init, step, env.action_space(params).n)


def vmap_loop(env_id: str, num_envs: int, **make_kwargs) -> EnvLoop:
    """Plain ``vmap(env.step)`` over ``split(key, N)`` of a jaxgrid env, using only ``jaxgrid.make`` and
    the gymnax step: it runs on any jaxgrid version (the old checkout of ``--old-root``)."""
    import jax

    import jaxgrid

    env, params = jaxgrid.make(env_id, **make_kwargs)

    def init(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)[1]

    def step(key, state, action):
        keys = jax.random.split(key, num_envs)
        obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, state, action, params
        )
        return state, _flat_sum(obs, num_envs) + reward + terminated + truncated

    return EnvLoop(init, step, env.action_space(params).n)


# ------------------------------------------------------------------------------------------------
# The "today's vmap(env.step)": the code of the checkout the issue was filed against
# (commit 699acb6), run in a child process (two jaxgrid versions cannot share one process) that
# compiles and calibrates its program, then times one call per "run" line it reads, so the parent
# can alternate its own calls with the child's as ``measure_pair_jax`` does.
OLD_CODE_COMMIT = "699acb6"


class OldCodeProgram:
    """``vmap(env.step)`` of ``env_id`` from the jaxgrid checkout at ``root``, in a child process."""

    def __init__(self, root: Path, env_id: str, obs: str, num_envs: int, args):
        import subprocess

        cmd = [sys.executable, __file__, "--serve-old", str(root), "--serve-env", env_id, "--serve-obs", obs,
               "--sizes", str(num_envs), "--target-s", str(args.target_s)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self._read()
        if not line.startswith("READY "):
            raise RuntimeError(f"old-code child did not start: {line!r}")
        _, self.num_steps, self.jaxgrid_file = line.split(maxsplit=2)
        self.num_steps = int(self.num_steps)

    def _read(self) -> str:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("old-code child exited")
            if line.startswith(("READY ", "SECONDS ")):
                return line.strip()

    def seconds(self) -> float:
        """One timed call in the child (its own clock around the compiled call)."""
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self._read().split()[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def serve_old_code(args) -> int:
    """``--serve-old ROOT``: the child of ``OldCodeProgram``."""
    root = Path(args.serve_old).resolve()
    sys.path.insert(0, str(root))
    import jaxgrid

    if not Path(jaxgrid.__file__).resolve().is_relative_to(root):
        raise RuntimeError(f"imported {jaxgrid.__file__}, not the checkout at {root}")
    num_envs = args.sizes[0]
    kwargs = {"obs": args.serve_obs, **({"view_size": 7} if args.serve_obs == "view" else {})}
    call, num_steps, _, _ = prepare_loop_jax(vmap_loop(args.serve_env, num_envs, **kwargs), num_envs, args)
    print(f"READY {num_steps} {jaxgrid.__file__}", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        call()
        print(f"SECONDS {time.perf_counter() - start!r}", flush=True)
    return 0


def measure_pair_old_code(build_a: Callable[[int], EnvLoop], env_id: str, obs: str, num_envs: int,
                          args) -> dict[str, Any]:
    """``measure_pair_jax`` with side b the old checkout's ``vmap(env.step)`` (``OldCodeProgram``)."""
    call_a, steps_a, _, _ = prepare_loop_jax(build_a(num_envs), num_envs, args)
    old = OldCodeProgram(args.old_root, env_id, obs, num_envs, args)
    try:
        rates_a, rates_b = [], []
        for _ in range(args.pair_rounds):
            start = time.perf_counter()
            call_a()
            rates_a.append(num_envs * steps_a / (time.perf_counter() - start))
            rates_b.append(num_envs * old.num_steps / old.seconds())
    finally:
        old.close()
    ratios = [a / b for a, b in zip(rates_a, rates_b)]
    return {"ratio": float(np.median(ratios)), "round_ratios": ratios, "rates_a": rates_a, "rates_b": rates_b,
            "num_steps": [steps_a, old.num_steps], "old_code": old.jaxgrid_file}


def place_start_and_goal_v1(key, base_kind):
    """FourRoomsRandom-v0's reset at results version 1 (two ``categorical`` draws over all cells),
    kept here as the "today's ``vmap(env.step)``" reference of the issue's 10x target."""
    import jax
    import jax.numpy as jnp

    from jaxgrid.types import FLOOR, GOAL

    key_goal, key_start = jax.random.split(key)
    base = jnp.where(base_kind == GOAL, jnp.int8(FLOOR), base_kind).astype(jnp.int8)
    floor = base == FLOOR
    goal = jax.random.categorical(key_goal, jnp.where(floor, 0.0, -jnp.inf)).astype(jnp.int32)
    cells = jnp.arange(base.shape[0], dtype=jnp.int32)
    start = jax.random.categorical(key_start, jnp.where(floor & (cells != goal), 0.0, -jnp.inf))
    return base.at[goal].set(jnp.int8(GOAL)), start.astype(jnp.int32)


def four_rooms_random_v1_loop(num_envs: int, obs: str = "grid") -> EnvLoop:
    """``vmap(env.step)`` of FourRoomsRandom-v0 with its version-1 reset: the step as it was."""
    import jax

    import jaxgrid
    from jaxgrid.procedural import ProceduralGridWorld

    env, params = jaxgrid.make("FourRoomsRandom-v0", obs=obs)
    env = ProceduralGridWorld(
        env.layout, lambda key, p: place_start_and_goal_v1(key, p.cell_kind), obs=obs,
        param_defaults=env._param_defaults, env_id="FourRoomsRandom-v0",
    )

    def step(key, state, action):
        keys = jax.random.split(key, num_envs)
        obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, state, action, params
        )
        return state, _flat_sum(obs, num_envs) + reward + terminated + truncated

    def init(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)[1]

    return EnvLoop(init, step, env.action_space(params).n)


def gymnax_loop(env_id: str, num_envs: int) -> EnvLoop:
    """A gymnax env (``CartPole-v1``) through ``VecEnv`` (``vmap(env.step)`` for gymnax's own envs)."""
    import gymnax

    import jaxgrid

    env, params = gymnax.make(env_id)
    venv = jaxgrid.VecEnv(env, num_envs)

    def step(key, state, action):
        obs, state, reward, terminated, truncated, _ = venv.step(key, state, action, params)
        return state, _flat_sum(obs, num_envs) + reward + terminated + truncated

    return EnvLoop(lambda key: venv.reset(key, params)[1], step, env.action_space(params).n)


def navix_loop(env_id: str, num_envs: int, first_person: bool = True) -> EnvLoop:
    import jax
    import navix as nx

    kwargs = {"observation_fn": nx.observations.symbolic_first_person} if first_person else {}
    env = nx.make(env_id, **kwargs)

    def init(key):
        return jax.vmap(env.reset)(jax.random.split(key, num_envs))

    def step(key, timestep, action):
        timestep = jax.vmap(env.step)(timestep, action)
        done = (timestep.step_type > 0).astype("float32")
        return timestep, _flat_sum(timestep.observation, num_envs) + timestep.reward + done

    return EnvLoop(init, step, int(env.action_space.n))


def xminigrid_loop(env_id: str, num_envs: int) -> EnvLoop:
    import jax
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(env_id)
    env = GymAutoResetWrapper(env)

    def init(key):
        return jax.vmap(env.reset, in_axes=(None, 0))(params, jax.random.split(key, num_envs))

    def step(key, timestep, action):
        timestep = jax.vmap(env.step, in_axes=(None, 0, 0))(params, timestep, action)
        done = timestep.last().astype("float32")
        return timestep, _flat_sum(timestep.observation, num_envs) + timestep.reward + done

    return EnvLoop(init, step, int(env.num_actions(params)))


def prepare_loop_jax(loop: EnvLoop, num_envs: int, args) -> tuple[Callable[[], Any], int, int, float]:
    """Compiles the fori_loop program once (timed apart) and calibrates its length to
    ``args.target_s`` per call. Returns ``(call, num_steps, repeats, compile_s)``; ``call()`` runs
    ``num_steps`` steps of ``num_envs`` envs (blocking on its result)."""
    import jax
    import jax.numpy as jnp

    key_init, key_actions, key_run = jax.random.split(jax.random.PRNGKey(0), 3)
    carry = loop.init(key_init)
    actions = jax.random.randint(key_actions, (ACTION_ROWS, num_envs), 0, loop.num_actions, dtype=jnp.int32)

    def run(carry, actions, key, num_steps):
        def body(t, c):
            carry, acc, key = c
            key, key_step = jax.random.split(key)
            carry, checksum = loop.step(key_step, carry, actions[t % ACTION_ROWS])
            return carry, acc + checksum, key

        _, acc, _ = jax.lax.fori_loop(0, num_steps, body, (carry, jnp.zeros(num_envs, jnp.float32), key))
        return acc

    start = time.perf_counter()
    compiled = jax.jit(run).lower(carry, actions, key_run, jnp.int32(1)).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(carry, actions, key_run, jnp.int32(2)))  # warm-up
    warmup_s = time.perf_counter() - start
    repeats = args.repeats
    if warmup_s > SLOW_CALL_S:  # two steps already take seconds (a slow peer at 65,536 envs)
        num_steps, repeats = 2, min(repeats, 2)
    else:
        trial_steps, elapsed = 2, 0.0
        while trial_steps < 1_000_000:  # double the length until a call takes a quarter of the target
            start = time.perf_counter()
            jax.block_until_ready(compiled(carry, actions, key_run, jnp.int32(trial_steps)))
            elapsed = time.perf_counter() - start
            if elapsed >= args.target_s / 4:
                break
            trial_steps *= 2
        num_steps = int(np.clip(args.target_s * trial_steps / max(elapsed, 1e-9), 2, 1_000_000))
    steps = jnp.int32(num_steps)
    return (lambda: jax.block_until_ready(compiled(carry, actions, key_run, steps))), num_steps, repeats, compile_s


def measure_loop_jax(loop: EnvLoop, num_envs: int, args) -> dict[str, Any]:
    """``prepare_loop_jax``, then ``repeats`` timed calls (median quoted)."""
    call, num_steps, repeats, compile_s = prepare_loop_jax(loop, num_envs, args)
    timing = harness.time_calls(call, repeats, warmup=0)
    timing.compile_s = compile_s
    return env_throughput.result_row(num_envs, num_steps, timing)


def measure_pair_jax(build_a: Callable[[int], EnvLoop], build_b: Callable[[int], EnvLoop], num_envs: int,
                     args) -> dict[str, Any]:
    """The ratio of two JAX programs' step rates, robust to a machine whose load comes and goes:
    both are compiled and calibrated, then called alternately (a, b, a, b, ...) for
    ``args.pair_rounds`` rounds; the median of the per-round ratios is quoted."""
    call_a, steps_a, _, _ = prepare_loop_jax(build_a(num_envs), num_envs, args)
    call_b, steps_b, _, _ = prepare_loop_jax(build_b(num_envs), num_envs, args)
    rates_a, rates_b = [], []
    for _ in range(args.pair_rounds):
        for call, steps, rates in ((call_a, steps_a, rates_a), (call_b, steps_b, rates_b)):
            start = time.perf_counter()
            call()
            rates.append(num_envs * steps / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(rates_a, rates_b)]
    return {"ratio": float(np.median(ratios)), "round_ratios": ratios, "rates_a": rates_a, "rates_b": rates_b,
            "num_steps": [steps_a, steps_b]}


# ------------------------------------------------------------------------------------------------
# envpool and Gymnasium, stepped from Python with pre-sampled actions.
def stepper_envpool(task_id: str, num_envs: int):
    def make():
        import envpool

        env = envpool.make(
            task_id, env_type="gymnasium", num_envs=num_envs, num_threads=min(os.cpu_count() or 1, num_envs), seed=0
        )
        env.reset()
        actions = env_throughput.random_action_table(num_envs, int(env.action_space.n), length=ACTION_ROWS)

        def step(t):
            env.step(actions[t % ACTION_ROWS])

        return step

    return make


def stepper_gym_vector(task_id: str, num_envs: int, num_actions: int):
    import gymnasium

    mode = "vector_entry_point" if task_id == "CartPole-v1" else "sync"
    return env_throughput.stepper_vector(
        lambda: gymnasium.make_vec(task_id, num_envs=num_envs, vectorization_mode=mode), num_envs, num_actions
    )


def measure_python(make_stepper, num_envs: int, args) -> dict[str, Any]:
    loop_args = argparse.Namespace(cpu_target_s=args.target_s, repeats=args.repeats)
    return env_throughput.measure_loop(make_stepper, num_envs, loop_args)


# ------------------------------------------------------------------------------------------------
# The table: (task, library, impl label, obs, measure(n) -> row)
JAX_BUILDERS: dict[tuple[str, str], tuple[str, Callable[[int], EnvLoop]]] = {}  # (impl, obs) -> (task, build(n)), by point_specs
PAIRED_SIZES = (4096, 65536)  # where the jaxgrid-vs-jaxgrid targets are judged
def point_specs(args) -> list[tuple[str, str, str, str, Callable[[int], dict[str, Any]], int]]:
    jax_point = lambda build: lambda n: measure_loop_jax(build(n), n, args)  # noqa: E731
    specs = []  # (task, library, impl, obs, measure(n), smallest num_envs measured)

    def jaxgrid_row(task, impl, obs, env_id, vec=True, min_envs=1, **kw):
        if obs == "view":
            kw["view_size"] = 7
        build = lambda n: jaxgrid_loop(env_id, n, vec=vec, obs=obs, **kw)  # noqa: E731
        JAX_BUILDERS[(impl, obs)] = (task, build)
        specs.append((task, "jaxgrid", impl, obs, jax_point(build), min_envs))

    # Empty 8x8
    jaxgrid_row("Empty-8x8", "jaxgrid EmptyRoom-v0", "index", "EmptyRoom-v0", size=8)
    jaxgrid_row("Empty-8x8", "jaxgrid EmptyRoom-v0", "view", "EmptyRoom-v0", size=8)
    specs.append(("Empty-8x8", "navix", "NAVIX Navix-Empty-8x8-v0", "view",
                  jax_point(lambda n: navix_loop("Navix-Empty-8x8-v0", n))))
    specs.append(("Empty-8x8", "xminigrid", "XLand-MiniGrid MiniGrid-Empty-8x8", "view",
                  jax_point(lambda n: xminigrid_loop("MiniGrid-Empty-8x8", n))))
    # FourRooms, random start and goal
    for obs in ("grid", "view"):
        jaxgrid_row("FourRooms", "jaxgrid FourRoomsRandom-v0", obs, "FourRoomsRandom-v0")
    specs.append(("FourRooms", "navix", "NAVIX Navix-FourRooms-v0", "view",
                  jax_point(lambda n: navix_loop("Navix-FourRooms-v0", n))))
    specs.append(("FourRooms", "xminigrid", "XLand-MiniGrid MiniGrid-FourRooms", "view",
                  jax_point(lambda n: xminigrid_loop("MiniGrid-FourRooms", n))))
    # Procedural beside fixed layouts of the same size and observation
    for obs in ("grid", "view"):
        jaxgrid_row("Procedural 9x9", "jaxgrid Maze-9x9-v0", obs, "Maze-9x9-v0")
        jaxgrid_row("Procedural 9x9", "jaxgrid EmptyRoom-v0 size=9", obs, "EmptyRoom-v0", size=9)
        jaxgrid_row("FourRooms", "jaxgrid EmptyRoom-v0 size=13", obs, "EmptyRoom-v0", size=13)
    jaxgrid_row("Procedural 15x15", "jaxgrid Maze-15x15-v0", "grid", "Maze-15x15-v0")
    jaxgrid_row("Procedural 15x15", "jaxgrid EmptyRoom-v0 size=15", "grid", "EmptyRoom-v0", size=15)
    jaxgrid_row("Procedural 9x9", "jaxgrid Maze-9x9-v0 vmap(env.step)", "grid", "Maze-9x9-v0", vec=False)
    jaxgrid_row("FourRooms", "jaxgrid FourRoomsRandom-v0 vmap(env.step)", "grid", "FourRoomsRandom-v0", vec=False)
    JAX_BUILDERS[("jaxgrid FourRoomsRandom-v0 v1 vmap(env.step)", "grid")] = ("FourRooms", four_rooms_random_v1_loop)
    specs.append(("FourRooms", "jaxgrid", "jaxgrid FourRoomsRandom-v0 v1 vmap(env.step)", "grid",
                  jax_point(lambda n: four_rooms_random_v1_loop(n))))
    # VecEnv's reset capacity beside the default (N/128), at the batch sizes where it matters.
    for denominator in CAPACITY_SWEEP:
        jaxgrid_row("Procedural 9x9", f"jaxgrid Maze-9x9-v0 K=N/{denominator}", "grid", "Maze-9x9-v0",
                    min_envs=4096, capacity_fraction=1 / denominator)
        jaxgrid_row("FourRooms", f"jaxgrid FourRoomsRandom-v0 K=N/{denominator}", "grid", "FourRoomsRandom-v0",
                    min_envs=4096, capacity_fraction=1 / denominator)
    # Classic control and toy text
    jaxgrid_row("FrozenLake-v1", "jaxgrid FrozenLake-v1", "index", "FrozenLake-v1")
    jaxgrid_row("FrozenLake-v1", "jaxgrid FrozenLake-v1 is_slippery=False", "index", "FrozenLake-v1", is_slippery=False)
    jaxgrid_row("CliffWalking-v1", "jaxgrid CliffWalking-v1", "index", "CliffWalking-v1")
    specs.append(("CartPole-v1", "jaxgrid", "gymnax CartPole-v1 (VecEnv)", "vector", jax_point(lambda n: gymnax_loop("CartPole-v1", n))))
    for task, num_actions in (("FrozenLake-v1", 4), ("CliffWalking-v1", 4), ("CartPole-v1", 2)):
        obs = "vector" if task == "CartPole-v1" else "index"
        specs.append((task, "envpool", f"envpool {task}", obs, lambda n, t=task: measure_python(stepper_envpool(t, n), n, args)))
        specs.append((task, "gymnasium", f"gymnasium {task}", obs,
                      lambda n, t=task, a=num_actions: measure_python(
                          env_throughput.stepper_single_gym(t) if n == 1 else stepper_gym_vector(t, n, a), n, args)))
    return [spec if len(spec) == 6 else (*spec, 1) for spec in specs]


def library_missing(library: str) -> str | None:
    """None if the library imports, else why not."""
    if library in ("jaxgrid", "gymnasium"):
        return None
    try:
        __import__(library)
        return None
    except Exception as err:  # noqa: BLE001 - any import failure is reported, not fatal
        return f"{type(err).__name__}: {err}"


# ------------------------------------------------------------------------------------------------
def rate(rows, impl: str, obs: str, num_envs: int) -> float | None:
    for row in rows:
        if row["impl"] == impl and row["obs"] == obs and row["num_envs"] == num_envs:
            return row["steps_per_s"]
    return None


# Each target: (name, numerator (impl, obs), denominator (impl, obs), target ratio)
TARGETS = (
    ("Maze-9x9 VecEnv / EmptyRoom 9x9, grid", ("jaxgrid Maze-9x9-v0", "grid"), ("jaxgrid EmptyRoom-v0 size=9", "grid"), 0.5),
    ("Maze-9x9 VecEnv / EmptyRoom 9x9, view", ("jaxgrid Maze-9x9-v0", "view"), ("jaxgrid EmptyRoom-v0 size=9", "view"), 0.5),
    ("FourRoomsRandom VecEnv / EmptyRoom 13x13, grid", ("jaxgrid FourRoomsRandom-v0", "grid"), ("jaxgrid EmptyRoom-v0 size=13", "grid"), 0.5),
    ("FourRoomsRandom VecEnv / EmptyRoom 13x13, view", ("jaxgrid FourRoomsRandom-v0", "view"), ("jaxgrid EmptyRoom-v0 size=13", "view"), 0.5),
    ("Maze-15x15 VecEnv / EmptyRoom 15x15, grid", ("jaxgrid Maze-15x15-v0", "grid"), ("jaxgrid EmptyRoom-v0 size=15", "grid"), None),
    ("Maze-9x9 VecEnv / vmap(env.step), grid", ("jaxgrid Maze-9x9-v0", "grid"), ("jaxgrid Maze-9x9-v0 vmap(env.step)", "grid"), 10.0),
    ("FourRoomsRandom VecEnv / vmap(env.step), grid", ("jaxgrid FourRoomsRandom-v0", "grid"), ("jaxgrid FourRoomsRandom-v0 vmap(env.step)", "grid"), None),
    ("Maze-9x9 VecEnv / 699acb6's vmap(env.step) (the issue's today), grid", ("jaxgrid Maze-9x9-v0", "grid"), ("old code Maze-9x9-v0", "grid"), 10.0),
    ("FourRoomsRandom VecEnv / 699acb6's vmap(env.step) (the issue's today), grid", ("jaxgrid FourRoomsRandom-v0", "grid"), ("old code FourRoomsRandom-v0", "grid"), 10.0),
    ("FourRoomsRandom VecEnv / v1 vmap(env.step) (before), grid", ("jaxgrid FourRoomsRandom-v0", "grid"), ("jaxgrid FourRoomsRandom-v0 v1 vmap(env.step)", "grid"), 10.0),
    ("Empty-8x8 view: jaxgrid / NAVIX", ("jaxgrid EmptyRoom-v0", "view"), ("NAVIX Navix-Empty-8x8-v0", "view"), 3.0),
    ("Empty-8x8 view: jaxgrid / XLand-MiniGrid", ("jaxgrid EmptyRoom-v0", "view"), ("XLand-MiniGrid MiniGrid-Empty-8x8", "view"), 5.0),
    ("FourRooms view: jaxgrid / NAVIX", ("jaxgrid FourRoomsRandom-v0", "view"), ("NAVIX Navix-FourRooms-v0", "view"), 3.0),
    ("FourRooms view: jaxgrid / XLand-MiniGrid", ("jaxgrid FourRoomsRandom-v0", "view"), ("XLand-MiniGrid MiniGrid-FourRooms", "view"), 5.0),
    ("FrozenLake-v1: jaxgrid / envpool", ("jaxgrid FrozenLake-v1", "index"), ("envpool FrozenLake-v1", "index"), 20.0),
    ("FrozenLake-v1: slippery / deterministic", ("jaxgrid FrozenLake-v1", "index"), ("jaxgrid FrozenLake-v1 is_slippery=False", "index"), 0.25),
    ("CliffWalking-v1: jaxgrid / envpool", ("jaxgrid CliffWalking-v1", "index"), ("envpool CliffWalking-v1", "index"), None),
    ("CartPole-v1: gymnax / envpool", ("gymnax CartPole-v1 (VecEnv)", "vector"), ("envpool CartPole-v1", "vector"), None),
)


def compute_ratios(rows, sizes) -> list[dict[str, Any]]:
    out = []
    for name, (num_impl, num_obs), (den_impl, den_obs), target in TARGETS:
        for n in sizes:
            a, b = rate(rows, num_impl, num_obs, n), rate(rows, den_impl, den_obs, n)
            if a is None or b is None:
                continue
            ratio = a / b
            out.append({"name": name, "num_envs": n, "ratio": ratio, "target": target,
                        "met": None if target is None else bool(ratio >= target)})
    return out


def compute_paired_ratios(args) -> list[dict[str, Any]]:
    """``measure_pair_jax`` for every target whose two sides are jaxgrid programs (of ``args.tasks``,
    with a name containing one of ``args.pairs``), at ``PAIRED_SIZES`` (those in ``args.sizes``); the
    "old code" sides need ``args.old_root`` (``measure_pair_old_code``)."""
    out = []
    for name, (num_impl, num_obs), (den_impl, den_obs), target in TARGETS:
        a, b = JAX_BUILDERS.get((num_impl, num_obs)), JAX_BUILDERS.get((den_impl, den_obs))
        old_env = den_impl.split()[-1] if den_impl.startswith("old code ") else None
        if old_env is not None and args.old_root is not None:
            b = (None, None)
        if a is None or b is None or (args.tasks and a[0] not in args.tasks):
            continue
        if args.pairs and not any(part in name for part in args.pairs):
            continue
        (_, build_a), (_, build_b) = a, b
        for n in (n for n in args.sizes if n in PAIRED_SIZES):
            try:
                if old_env is not None:
                    pair = measure_pair_old_code(build_a, old_env, den_obs, n, args)
                else:
                    pair = measure_pair_jax(build_a, build_b, n, args)
            except Exception as err:  # noqa: BLE001 - reported, the rest still runs
                print(f"paired {name} N={n}: FAILED {type(err).__name__}: {err}", flush=True)
                continue
            met = None if target is None else bool(pair["ratio"] >= target)
            out.append({"name": name, "num_envs": n, "target": target, "met": met, **pair})
            print(f"paired {name:58s} N={n:6d} {pair['ratio']:.3g}"
                  + ("" if target is None else f" (target >= {target:g}: {'met' if met else 'MISSED'})"), flush=True)
    return out


def print_tables(rows, ratios, sizes) -> None:
    keys = list(dict.fromkeys((r["task"], r["impl"], r["obs"]) for r in rows))
    print("\n| task | implementation | obs | " + " | ".join(f"N={n:,}" for n in sizes) + " |")
    print("| --- | --- | --- | " + " | ".join("---:" for _ in sizes) + " |")
    for task, impl, obs in keys:
        cells = [harness.format_rate(rate(rows, impl, obs, n)) for n in sizes]
        print(f"| {task} | {impl} | {obs} | " + " | ".join(cells) + " |")
    print("\n| ratio | N | measured | target |")
    print("| --- | ---: | ---: | ---: |")
    for r in ratios:
        target = "-" if r["target"] is None else f">= {r['target']:g}" + (" met" if r["met"] else " MISSED")
        print(f"| {r['name']} | {r['num_envs']:,} | {r['ratio']:.3g} | {target} |")


def plot(rows, info, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cols = min(3, len(tasks))
    nrows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.5 * cols, 4.2 * nrows), squeeze=False)
    for ax, task in zip(axes.ravel(), tasks):
        for impl, obs in dict.fromkeys((r["impl"], r["obs"]) for r in rows if r["task"] == task):
            pts = sorted((r["num_envs"], r["steps_per_s"]) for r in rows if r["impl"] == impl and r["obs"] == obs)
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=f"{impl} ({obs})")
        harness.style_rate_axes(ax, task, legend_size=7)
    for ax in axes.ravel()[len(tasks):]:
        ax.axis("off")
    harness.machine_title(fig, info)
    harness.save_figure(fig, path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 and 256 envs, short calls, 2 repeats")
    p.add_argument("--only", nargs="+", choices=LIBRARIES, default=None, help="libraries to run (default: all)")
    p.add_argument("--tasks", nargs="+", default=None, help="tasks to run (default: all), e.g. 'Procedural 9x9' FrozenLake-v1")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"num_envs values (default {NUM_ENVS})")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per point (median quoted)")
    p.add_argument("--target-s", type=float, default=None, help="seconds per timed call (the step count is calibrated)")
    p.add_argument("--pair-rounds", type=int, default=None, help="rounds of alternate calls per paired ratio (default 7; quick 2); pairs run at 4,096 and 65,536 envs")
    p.add_argument("--paired-only", action="store_true",
                   help="measure only the paired jaxgrid ratios and add them to the existing --out JSON")
    p.add_argument("--pairs", nargs="+", default=None,
                   help="paired ratios whose name contains one of these strings (default: all)")
    p.add_argument("--old-root", type=Path, default=None,
                   help=f"a checkout of commit {OLD_CODE_COMMIT} (the issue's 'today'): pairs against its "
                   "vmap(env.step), run in a child process (e.g. git worktree add /tmp/old 699acb6)")
    p.add_argument("--out", type=Path, default=harness.RESULTS_DIR / "peers.json")
    p.add_argument("--update", action="store_true",
                   help="replace only the measured tasks' rows (and paired ratios) in an existing --out JSON")
    p.add_argument("--serve-old", default=None, help=argparse.SUPPRESS)
    p.add_argument("--serve-env", default=None, help=argparse.SUPPRESS)
    p.add_argument("--serve-obs", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = harness.quick_out(args.out, args.quick, p.get_default("out"))  # never over bench/results
    if args.pair_rounds is None:
        args.pair_rounds = 2 if args.quick else 7
    if args.sizes is None:
        args.sizes = list(QUICK_NUM_ENVS if args.quick else NUM_ENVS)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.target_s is None:
        args.target_s = 0.02 if args.quick else 0.2
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve_old:
        return serve_old_code(args)
    info = harness.machine_info()
    info["versions"].update(harness.package_versions(PEER_PACKAGES))
    harness.print_header(info)
    start = time.perf_counter()
    specs = point_specs(args)
    if args.paired_only:
        return add_paired_ratios(args, info, start)
    runner = env_throughput.Runner(args)
    libraries = args.only or LIBRARIES
    missing = {lib: library_missing(lib) for lib in libraries}
    for task, library, impl, obs, measure, min_envs in specs:
        if library not in libraries or (args.tasks and task not in args.tasks):
            continue
        if missing[library]:
            runner.skip(task, impl, f"{library} not available ({missing[library]})")
            continue
        for n in args.sizes:
            if n < min_envs:
                continue
            if library == "gymnasium" and n > GYM_VECTOR_MAX_ENVS:
                runner.skip(task, impl, f"N > {GYM_VECTOR_MAX_ENVS} Python envs (minutes per point)", n)
                continue
            before = len(runner.rows)
            runner.attempt(task, f"{impl} [{obs}]", n, lambda: measure(n))
            if len(runner.rows) > before:
                row = runner.rows[-1]
                row.update(task=task, library=library, impl=impl, obs=obs)
                row.pop("env", None)
    ratios = compute_ratios(runner.rows, args.sizes)
    print_tables(runner.rows, ratios, args.sizes)
    paired = compute_paired_ratios(args) if "jaxgrid" in libraries else []
    if args.update and args.out.exists():
        return update_results(args, info, runner, paired, start)
    payload = {
        "benchmark": "peers",
        "machine": info,
        "protocol": {
            "repeats": args.repeats,
            "target_s_per_call": args.target_s,
            "statistic": "median",
            "jax": "jit(fori_loop(step)) compiled once per point (timed apart); steps calibrated to target_s",
            "python": "envpool / Gymnasium stepped from Python with the same pre-sampled actions",
            "envpool_threads": os.cpu_count(),
        },
        "notes": NOTES,
        "results": runner.rows,
        "skipped": runner.skipped,
        "ratios": ratios,
        "paired_ratios": paired,
        "paired_protocol": PAIRED_PROTOCOL,
        "wall_s": time.perf_counter() - start,
        "loadavg_end_1_5_15min": list(os.getloadavg()),
    }
    harness.write_results(args.out, payload, lambda png: plot(runner.rows, info, png))
    return 0


PAIRED_PROTOCOL = (
    "jaxgrid-vs-jaxgrid targets: both programs compiled and calibrated to target_s per call, then called "
    "alternately for pair_rounds rounds; the median of the per-round ratios (robust to load that comes and goes)"
)


def merge_paired(old: list[dict[str, Any]], new: list[dict[str, Any]], info) -> list[dict[str, Any]]:
    """``old`` paired ratios with those of ``new`` (stamped with the time and load) replacing theirs."""
    stamp = {"measured_utc": info["date_utc"], "loadavg_1_5_15min": list(os.getloadavg())}
    new = [{**row, **stamp} for row in new]
    fresh = {(row["name"], row["num_envs"]) for row in new}
    return [row for row in old if (row["name"], row["num_envs"]) not in fresh] + new


def update_results(args, info, runner, paired, start: float) -> int:
    """``--update``: the rows measured now replace theirs (same task, implementation, obs and size) in
    ``args.out``, the others and the paired ratios not measured again are kept; each new row records
    when and under what load it was measured."""
    payload = json.loads(args.out.read_text())
    stamp = {"measured_utc": info["date_utc"], "loadavg_1_5_15min": list(os.getloadavg())}
    tasks = {row["task"] for row in runner.rows}
    point = lambda row: (row["task"], row["impl"], row["obs"], row["num_envs"])  # noqa: E731
    fresh = {point(row) for row in runner.rows}
    rows = [row for row in payload["results"] if point(row) not in fresh] + [{**row, **stamp} for row in runner.rows]
    sizes = sorted({row["num_envs"] for row in rows})
    payload.update(results=rows, ratios=compute_ratios(rows, sizes),
                   paired_ratios=merge_paired(payload.get("paired_ratios", []), paired, info))
    payload.setdefault("updates", []).append({"machine": info, "tasks": sorted(tasks), "wall_s": time.perf_counter() - start,
                                              "loadavg_end_1_5_15min": list(os.getloadavg())})
    harness.write_results(args.out, payload, lambda png: plot(rows, info, png))
    print(f"updated {len(runner.rows)} rows of {sorted(tasks)} in {args.out}")
    return 0


def add_paired_ratios(args, info, start: float) -> int:
    """``--paired-only``: the paired ratios, added to the JSON at ``args.out`` (its rows untouched);
    earlier paired ratios not measured again (other names or sizes) are kept, and each entry records
    when and under what load it was measured."""
    payload = json.loads(args.out.read_text()) if args.out.exists() else {"benchmark": "peers", "results": []}
    fresh = compute_paired_ratios(args)
    paired = merge_paired(payload.get("paired_ratios", []), fresh, info)
    payload.update(paired_ratios=paired, paired_protocol=PAIRED_PROTOCOL, paired_machine=info,
                   paired_pair_rounds=args.pair_rounds, paired_wall_s=time.perf_counter() - start,
                   paired_loadavg_end_1_5_15min=list(os.getloadavg()))
    harness.write_json(args.out, payload)
    print(f"added {len(fresh)} paired ratios to {args.out} ({len(paired)} in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
