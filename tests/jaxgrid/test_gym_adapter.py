"""The Gymnasium adapters: every id through gymnasium.make and make_vec, Gymnasium's env checker,
the vector env against Gymnasium's own SyncVectorEnv, invalid actions, seeding, rendering, SB3."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import jaxgrid
from jaxgrid.gym_adapter import JaxGridEnv, JaxGridVectorEnv

pytestmark = pytest.mark.timeout(120)

KWARGS = {"GridWorld-v0": {"layout": "S..\n.#.\n..G"}}


def _make(env_id, **kwargs):
    return gymnasium.make(f"jaxgrid/{env_id}", **{**KWARGS.get(env_id, {}), **kwargs})


@pytest.mark.parametrize("env_id", jaxgrid.registered_ids())
def test_every_id__passes_gymnasiums_env_checker(env_id):
    render_mode = "ansi" if "Maze" in env_id else "rgb_array"
    env = _make(env_id, render_mode=render_mode)
    assert isinstance(env.unwrapped, JaxGridEnv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    frame = env.render()
    if render_mode == "ansi":
        assert isinstance(frame, str) and frame.count("A") == 1
    else:
        inner = env.unwrapped.env
        assert frame.dtype == np.uint8 and frame.shape == (16 * inner.height, 16 * inner.width, 3)


@pytest.mark.parametrize("env_id", ["GridWorld-4x4-v0", "FrozenLake-v1", "Maze-9x9-v0"])
def test_make_vec__one_jitted_vmapped_env_in_same_step_mode(env_id):
    limit = {"max_steps_in_episode": 30} if env_id.startswith("Maze") else {}
    venv = gymnasium.make_vec(f"jaxgrid/{env_id}", num_envs=5, autoreset_mode=AutoresetMode.SAME_STEP, **limit)
    assert isinstance(venv, JaxGridVectorEnv) and venv.num_envs == 5
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, info = venv.reset(seed=1)
    assert isinstance(obs, np.ndarray) and venv.observation_space.contains(obs)
    ends = 0
    for _ in range(120):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert all(isinstance(x, np.ndarray) for x in (obs, reward, terminated, truncated))
        assert venv.observation_space.contains(obs)
        assert reward.shape == (5,) and terminated.dtype == bool and truncated.dtype == bool
        done = terminated | truncated
        if done.any():
            ends += int(done.sum())
            np.testing.assert_array_equal(info["_final_obs"], done)
            for i in range(5):
                assert (info["final_obs"][i] is None) != bool(done[i])
                if done[i]:
                    assert venv.single_observation_space.contains(info["final_obs"][i])
    assert ends > 0
    venv.close()


@pytest.mark.parametrize(
    "env_id, kwargs",
    [("GridWorld-4x4-v0", {}), ("FrozenLake-v1", {"is_slippery": False}),
     ("CliffWalking-v1", {"max_steps_in_episode": 20}),
     ("FrozenLake8x8-v1", {"is_slippery": False, "max_steps_in_episode": 7})],
)
def test_make_vec__matches_gymnasiums_sync_vector_env(env_id, kwargs):
    """Deterministic envs: the jitted vector env and Gymnasium's SyncVectorEnv over the single
    adapter (same-step autoreset) return the same arrays step for step."""
    n = 4
    ours = gymnasium.make_vec(f"jaxgrid/{env_id}", num_envs=n, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    sync = gymnasium.make_vec(
        f"jaxgrid/{env_id}", num_envs=n, vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs,
    )
    np.testing.assert_array_equal(ours.reset(seed=0)[0], sync.reset(seed=0)[0])
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(150):
        actions = rng.integers(4, size=n)
        a = ours.step(actions)
        b = sync.step(actions)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        if (a[2] | a[3]).any():
            ends += 1
            np.testing.assert_array_equal(a[4]["_final_obs"], b[4]["_final_obs"])
            for i in np.flatnonzero(a[4]["_final_obs"]):
                np.testing.assert_array_equal(a[4]["final_obs"][i], b[4]["final_obs"][i])
    assert ends > 0


def test_invalid_actions__raise_a_clear_error():
    env = _make("FrozenLake-v1", is_slippery=False)
    env.reset(seed=0)
    for bad in (4, -1, 1.5, "left", np.array([1, 2]), None):
        with pytest.raises(ValueError, match=r"invalid action .* expected an int in \[0, 4\) \(0 left, 1 down"):
            env.unwrapped.step(bad)
    assert env.unwrapped.step(np.int64(2))[0] == 1  # right from the start
    venv = gymnasium.make_vec("jaxgrid/GridWorld-4x4-v0", num_envs=3)
    venv.reset(seed=0)
    for bad in (np.array([0, 1]), np.array([0, 1, 4]), np.array([0.0, 1.0, 2.0]), 1):
        with pytest.raises(ValueError, match=r"invalid actions .* expected 3 ints in \[0, 4\) \(0 up"):
            venv.step(bad)
    with pytest.raises(RuntimeError, match="call reset"):
        _make("GridWorld-4x4-v0").unwrapped.step(0)
    with pytest.raises(RuntimeError, match="call reset"):
        gymnasium.make_vec("jaxgrid/GridWorld-4x4-v0", num_envs=2).step(np.array([0, 1]))


def test_seeding__same_seed_same_trajectory_on_a_slippery_env():
    def run(seed):
        venv = gymnasium.make_vec("jaxgrid/FrozenLake8x8-v1", num_envs=8)
        obs = [venv.reset(seed=seed)[0]]
        for t in range(40):
            obs.append(venv.step(np.full(8, t % 4))[0])
        return np.stack(obs)

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_vector_render__a_batch_of_frames():
    venv = gymnasium.make_vec("jaxgrid/Maze-9x9-v0", num_envs=3, render_mode="rgb_array")
    venv.reset(seed=0)
    frames = venv.render()
    assert frames.shape == (3, 9 * 16, 9 * 16, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # each env has its own maze


def test_gymnasium_make__imports_jaxgrid_through_the_module_prefix():
    code = (
        "import gymnasium, sys; env = gymnasium.make('jaxgrid:jaxgrid/FourRooms-v0'); "
        "print(env.reset(seed=0)[0], 'jaxgrid' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["14", "True"]


def test_stable_baselines3__ppo_learns_gridworld_through_the_adapter():
    """Behind the optional ``bench`` extra (torch, stable-baselines3): PPO from SB3 trains on
    ``gymnasium.make("jaxgrid/GridWorld-4x4-v0")`` and its greedy policy takes the 6-step path."""
    sb3 = pytest.importorskip("stable_baselines3", reason="optional extra: pip install -e '.[bench]'")
    import torch

    torch.set_num_threads(1)
    env = gymnasium.make("jaxgrid/GridWorld-4x4-v0")
    model = sb3.PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=4, learning_rate=1e-3,
                    gamma=0.95, seed=0, verbose=0)
    model.learn(total_timesteps=3000)
    obs, _ = env.reset(seed=0)
    total, steps, done = 0.0, 0, False
    while not done and steps < 50:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(int(action))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    assert terminated and steps == 6 and np.isclose(total, 0.8)


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_make_vec__procedural_env_through_vec_env_runs_as_the_single_adapter(mode):
    """``make_vec`` steps through ``jaxgrid.VecEnv`` (resets compacted: capacity 4 of 12 envs) and
    env i seeded ``s`` still runs exactly as ``gymnasium.make`` seeded ``s + i`` (SyncVectorEnv over
    the single adapter), new mazes included; a short limit ends all 12 episodes at once, more than
    the capacity, so the extra reset rounds run too."""
    from jaxgrid.vec import VecEnv

    kwargs = {"num_envs": 12, "max_episode_steps": 6, "obs": "view", "view_size": 3}
    ours = gymnasium.make_vec("jaxgrid/Maze-9x9-v0", autoreset_mode=mode, **kwargs)
    theirs = gymnasium.make_vec("jaxgrid/Maze-9x9-v0", vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": mode}, **kwargs)
    assert isinstance(ours.venv, VecEnv) and ours.venv.compacted and ours.venv.reset_capacity == 4
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(ours.reset(seed=5)[0], theirs.reset(seed=5)[0])
    ends = 0
    for t in range(40):
        actions = rng.integers(4, size=12)
        a, b = ours.step(actions), theirs.step(actions)
        for name, x, y in zip(("obs", "reward", "terminated", "truncated"), a[:4], b[:4]):
            np.testing.assert_array_equal(x, y, err_msg=f"{mode} step {t} {name}")
        assert a[4].keys() == b[4].keys()
        for i in np.flatnonzero(a[4].get("_final_obs", [])):
            np.testing.assert_array_equal(a[4]["final_obs"][i], b[4]["final_obs"][i])
        done = a[2] | a[3]
        ends += int(done.sum())
        if mode == AutoresetMode.DISABLED and done.any():
            mask = done.copy()
            np.testing.assert_array_equal(ours.reset(options={"reset_mask": mask})[0],
                                          theirs.reset(options={"reset_mask": mask})[0])
    assert ends >= 12 * 4
