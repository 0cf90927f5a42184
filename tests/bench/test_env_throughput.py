"""The benchmark's CPU baselines implement GridWorld-4x4-v0's rules exactly, and the script runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import cpu_gridworld  # noqa: E402
import env_throughput  # noqa: E402


def jaxgrid_rollout(actions: np.ndarray):
    """[T, N] actions through jaxgrid's auto-resetting step.

    Returns per-step obs (the next episode's first one after an episode end), reward, terminated,
    truncated and the final observation (the cell the step reached, before any reset).
    """
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    num_envs = actions.shape[1]
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def body(state, action):
        obs, state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, state, action, params
        )
        return state, (obs, reward, terminated, truncated, info["final_observation"])

    _, out = jax.lax.scan(body, state, jnp.asarray(actions, jnp.int32))
    return [np.asarray(x) for x in out]


def test_numpy_gridworld__matches_jaxgrid_in_lock_step():
    actions = np.random.default_rng(1).integers(0, 4, (300, 64))
    obs, reward, terminated, truncated, final = jaxgrid_rollout(actions)
    env = cpu_gridworld.NumpyGridWorld(64)
    env.reset()
    for t in range(actions.shape[0]):
        o, r, te, tr, f = env.step(actions[t].astype(np.int8))
        np.testing.assert_array_equal(o, obs[t])
        np.testing.assert_array_equal(f, final[t])
        np.testing.assert_allclose(r, reward[t], rtol=0, atol=1e-7)
        np.testing.assert_array_equal(te, terminated[t])
        np.testing.assert_array_equal(tr, truncated[t])
    assert terminated.any() and truncated.any()  # both episode ends were exercised


def test_python_gridworld__matches_jaxgrid_through_gymnasium_make():
    actions = np.random.default_rng(2).integers(0, 4, (400, 1))
    _, reward, terminated, truncated, final = jaxgrid_rollout(actions)
    env = gymnasium.make(cpu_gridworld.register())
    env.reset(seed=0)
    for t in range(actions.shape[0]):
        o, r, te, tr, _ = env.step(int(actions[t, 0]))
        assert (o, te, tr) == (final[t, 0], terminated[t, 0], truncated[t, 0])
        assert r == pytest.approx(float(reward[t, 0]))
        if te or tr:
            env.reset()
    assert terminated.any() and truncated.any()


def test_optimal_path__returns_0_8_in_every_baseline():
    path = [2, 2, 2, 1, 1, 1]  # down x3, right x3 from cell 0 around the wall at 5: 6 steps
    env = cpu_gridworld.NumpyGridWorld(1)
    env.reset()
    rewards = [float(env.step(np.array([a], np.int8))[1][0]) for a in path]
    assert sum(rewards) == pytest.approx(0.8)
    py = gymnasium.make(cpu_gridworld.register())
    py.reset(seed=0)
    assert sum(py.step(a)[1] for a in path) == pytest.approx(0.8)


def test_scan_builder__checksum_is_deterministic_and_uses_every_step():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    fn, inputs = env_throughput.build_gymnax_scan(env, params, num_envs=8, num_steps=60, random_actions=False)
    state_a, acc_a = jax.jit(fn)(*inputs)
    state_b, acc_b = jax.jit(fn)(*inputs)
    np.testing.assert_array_equal(acc_a, acc_b)
    assert acc_a.shape == (8,)
    # 60 steps > the 50-step limit, so every env's clock has been reset at least once.
    assert int(state_a.time.max()) < 60


def test_env_throughput_quick__writes_json_and_plot(tmp_path):
    out = tmp_path / "env.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "env_throughput.py"), "--quick", "--no-devices", "--sizes", "1", "16",
         "--out", str(out)],
        capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(out.read_text())
    impls = {(r["impl"], r["num_envs"]) for r in payload["results"]}
    for key in [("jaxgrid scan", 16), ("numpy", 16), ("gymnasium.make", 1), ("SyncVectorEnv", 16), ("gymnax scan", 16)]:
        assert key in impls, key
    assert all(r["steps_per_s"] > 0 for r in payload["results"])
    assert payload["machine"]["versions"]["jax"]
    assert out.with_suffix(".png").stat().st_size > 1000
