"""Where a slippery FrozenLake step's time goes, beside the deterministic step of the same grid.

    python bench/slip_profile.py                  # 4,096 and 65,536 envs, 9 rounds
    taskset -c 0 python bench/slip_profile.py     # on one core (no XLA:CPU thread split)

Programs (each in ``bench/peers.py``'s harness: a ``fori_loop`` of steps, actions from a table, a
checksum of every output), called in turn for ``--rounds`` rounds; each is quoted as the median of its
per-round ratios to the deterministic ``FrozenLake-v1 is_slippery=False`` through ``VecEnv``:

- ``vec``: slippery ``FrozenLake-v1`` through ``VecEnv`` (results version 3: one Threefry hash per env).
- ``v2``: version 2's slippery step rebuilt here: the env key, its step half, then ``jax.random.bits``
  of that half (three Threefry hashes per env), and the move read from the cell's row of actions.
- ``key``: only what the ``VecEnv`` contract fixes: each env's key ``split(key, N)[i]`` (one hash),
  summed into the checksum with the actions; no step at all. Its ratio bounds any slippery step.
- ``key+word``: ``key`` plus the slip word hashed from the key's words (``generators.key_word_bits``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import peers  # noqa: E402

PROGRAMS = ("vec", "v2", "key", "key+word")


def v2_loop(num_envs: int) -> peers.EnvLoop:
    """Version 2's slippery FrozenLake step (no auto-reset work: the lake's start is fixed)."""
    import jax
    import jax.numpy as jnp

    import jaxgrid
    from jaxgrid import generators, vec
    from jaxgrid.types import GOAL, LAVA, GridState

    env, params = jaxgrid.make("FrozenLake-v1")
    venv = jaxgrid.VecEnv(env, num_envs)

    def one(bits, state, action):
        slip = (bits >> 9).astype(jnp.float32) * jnp.float32(2.0**-23) < params.slip_prob
        action = jnp.where(slip, (action + jnp.where((bits & 1) == 1, 1, 3)) % 4, action)
        target = params.next_cell.astype(jnp.int32)
        packed = target * 256 + params.cell_kind.astype(jnp.int32)[target]
        row = packed[state.pos]  # the cell's row of all actions, picked elementwise (version 2)
        entry = jnp.sum(jnp.where(jnp.arange(row.shape[0]) == action, row, 0))
        pos, kind = entry >> 8, entry & 0xFF
        terminated = (kind == GOAL) | ((kind == LAVA) & params.lava_terminates)
        reward = jnp.where(kind == GOAL, params.goal_reward, params.step_reward).astype(jnp.float32)
        time_ = state.time + 1
        truncated = (time_ >= params.max_steps_in_episode) & ~terminated
        done = terminated | truncated
        state = GridState(time=jnp.where(done, 0, time_), pos=jnp.where(done, params.start_cell, pos))
        return state, reward, terminated, truncated

    def step(key, state, action):
        key_step = vec.child_keys(vec.env_keys(key, num_envs), 0)
        bits = jax.vmap(generators.key_bits)(key_step)
        state, reward, terminated, truncated = jax.vmap(one)(bits, state, action)
        return state, state.pos.astype(jnp.float32) + reward + terminated + truncated

    return peers.EnvLoop(lambda key: venv.reset(key, params)[1], step, 4)


def key_loop(num_envs: int, word: bool) -> peers.EnvLoop:
    import jax
    import jax.numpy as jnp

    from jaxgrid import generators, vec

    def step(key, carry, action):
        keys = vec.env_keys(key, num_envs)
        bits = jax.vmap(generators.key_word_bits)(keys) if word else keys[:, 0] ^ keys[:, 1]
        return carry, (bits & 1).astype(jnp.float32) + action.astype(jnp.float32)

    return peers.EnvLoop(lambda key: jnp.zeros(num_envs), step, 4)


def build(name: str, num_envs: int) -> peers.EnvLoop:
    if name == "det":
        return peers.jaxgrid_loop("FrozenLake-v1", num_envs, obs="index", is_slippery=False)
    if name == "vec":
        return peers.jaxgrid_loop("FrozenLake-v1", num_envs, obs="index")
    if name == "v2":
        return v2_loop(num_envs)
    return key_loop(num_envs, word=name == "key+word")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 65536])
    p.add_argument("--programs", nargs="+", choices=PROGRAMS, default=list(PROGRAMS))
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--target-s", type=float, default=0.15, help="seconds per call (the step count is calibrated)")
    args = p.parse_args(argv)
    args.repeats = 1  # prepare_loop_jax's field; the rounds below are the repeats
    print(f"# load average {os.getloadavg()}, CPU affinity {sorted(os.sched_getaffinity(0))}")
    for n in args.sizes:
        calls = {}
        for name in ["det", *args.programs]:
            call, steps, _, _ = peers.prepare_loop_jax(build(name, n), n, args)
            calls[name] = (call, steps)
        rates = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, (call, steps) in calls.items():
                start = time.perf_counter()
                call()
                rates[name].append(n * steps / (time.perf_counter() - start))
        for name in args.programs:
            ratio = np.median(np.array(rates[name]) / np.array(rates["det"]))
            print(f"N={n:6d} {name:9s} / deterministic step: {ratio:.3f}", flush=True)
    print(f"# load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
