"""Per-env presets: every preset is a valid config of a registered id, the CLI uses it for
``--env-id ID`` alone (printed, stored in config.json), flags override it, and one fast preset trains
to the exact optimum end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jaxgrid
from train import presets
from train.config import PPOConfig


def test_presets__every_preset_is_a_valid_config_of_a_registered_id():
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    assert set(presets.PRESETS) <= set(jaxgrid.registered_ids())
    # every registered id has a preset, except the two that take a layout / size argument
    assert set(jaxgrid.registered_ids()) - set(presets.PRESETS) == {"GridWorld-v0", "Maze-v0"}
    for env_id, preset in presets.PRESETS.items():
        assert set(preset.overrides) <= fields - {"env_id", "seeds"}, env_id
        config = presets.preset_config(env_id)
        assert config.env_id == env_id
        for name, value in preset.overrides.items():
            assert getattr(config, name) == value
        assert env_id in preset.validate and preset.validate.startswith("python bench/solve.py")


def test_presets__changes_override_the_preset():
    config = presets.preset_config("FrozenLake-v1", total_timesteps=4096, seeds=(3,))
    assert config.total_timesteps == 4096 and config.seeds == (3,)
    assert config.num_steps == presets.PRESETS["FrozenLake-v1"].overrides["num_steps"]
    assert presets.preset_config("GridWorld-4x4-v0") == PPOConfig()  # its preset is the defaults


@pytest.mark.parametrize("argv, preset_id", [
    (["--env-id", "FrozenLake-v1"], "FrozenLake-v1"),
    (["--env_id=CliffWalking-v1", "--learning-rate", "1"], "CliffWalking-v1"),
    (["--env-id", "FrozenLake-v1", "--no-preset"], None),
    (["--env-id", "FrozenLake-v1", "--resume", "runs/x"], None),  # the run's own config instead
    (["--env-id", "GridWorld-v0"], None),  # no preset
    (["--total-timesteps", "10"], None),  # GridWorld-4x4-v0: its preset is PPOConfig's defaults
    (["--env-id", "GridWorld-4x4-v0"], None),
])
def test_cli_preset__parses_argv(argv, preset_id):
    """The preset whose fields become the config flags' defaults (``train/cli.py``; that a flag
    given still wins is tested in tests/train/test_cli.py)."""
    from train.cli import parse_command, preset_defaults

    defaults = preset_defaults(parse_command(argv))
    if preset_id is None:
        assert defaults == {}
    else:
        assert defaults == {"env_id": preset_id, **presets.PRESETS[preset_id].overrides}


@pytest.mark.timeout(600)
def test_cli__cliff_walking_with_its_preset_finishes_and_stores_it(tmp_path):
    """issue 11 item 14: CliffWalking (no time limit) evaluates in bounded time from the CLI; the
    preset is printed and stored in config.json, and a flag overrides one of its fields."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "train.cli", "--env-id", "CliffWalking-v1", "--seeds", "0",
           "--total-timesteps", "4096", "--out", str(tmp_path), "--name", "cliff", "--quiet",
           "--devices", "1", "--no-cache", "--no-tensorboard"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=500, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "preset for CliffWalking-v1" in proc.stderr
    preset = presets.PRESETS["CliffWalking-v1"].overrides
    assert f"at most {preset['eval_max_steps']} steps" in proc.stdout
    assert "optimum (value iteration" in proc.stdout and "return -13.0000" in proc.stdout
    config = json.loads((tmp_path / "cliff" / "config.json").read_text())
    config = config.get("config", config)
    assert config["eval_max_steps"] == preset["eval_max_steps"] and config["num_steps"] == preset["num_steps"]
    assert config["total_timesteps"] == 4096  # the flag (one update), not the preset
    results = json.loads((tmp_path / "cliff" / "results.json").read_text())
    greedy = results["evaluation"]["configs"][0]
    assert len(greedy["greedy"]) == 1 and -preset["eval_max_steps"] * 100 <= greedy["greedy"][0] <= -13


@pytest.mark.timeout(600)
def test_preset__gridworld_trains_to_the_optimum_end_to_end():
    """The 4x4 grid's preset, 4 seeds: every seed's greedy return is the exact optimum (0.8)."""
    from train.evaluate import evaluate_result
    from train.trainer import train

    config = presets.preset_config("GridWorld-4x4-v0", seeds=(0, 1, 2, 3))
    result = train(config, num_devices=1)
    out = evaluate_result(result)
    optimum = jaxgrid.optimal_return(*jaxgrid.make("GridWorld-4x4-v0"))
    assert out["optimum"]["expected_return"] == pytest.approx(optimum.expected_return)
    frac = np.asarray(out["configs"][0]["greedy_fraction_of_optimum"])
    np.testing.assert_allclose(frac, 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["configs"][0]["greedy_success"], 1.0)


@pytest.mark.parametrize("env_id", ["Maze-9x9-v0"])
def test_presets__procedural_views_show_the_whole_layout_from_every_start(env_id):
    """The maze preset reads an agent-centred view meant to cover the whole layout (the goal is
    always in sight): over 512 fresh layouts and starts, the goal channel (index 1) is set in every
    view. (A 13x13 view on the 9x9 maze, whose border has open cells, failed this.)
    FourRoomsRandom-v0's preset is partially observed on purpose (a 9x9 view: see the next test)."""
    import jax

    kwargs = presets.preset_overrides(env_id)["env_kwargs"]
    assert kwargs["obs"] == "view"
    env, params = jaxgrid.make(env_id, **kwargs)
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 512), params)
    goal_in_view = np.asarray(obs)[..., 1].reshape(512, -1).max(axis=1)
    assert (goal_in_view == 1).all(), int((goal_in_view == 1).sum())


def test_presets__four_rooms_random_view_is_partial_and_agent_centred():
    """FourRoomsRandom-v0's preset: a 9x9 agent-centred view (it learnt faster than the whole-grid
    21x21 view, README "Solving the family"): the agent is at the centre of every view, and over
    512 fresh layouts the goal is out of view in some starts and in view in others."""
    import jax

    kwargs = presets.preset_overrides("FourRoomsRandom-v0")["env_kwargs"]
    assert kwargs == {"obs": "view", "view_size": 9}
    env, params = jaxgrid.make("FourRoomsRandom-v0", **kwargs)
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 512), params)
    obs = np.asarray(obs)
    assert obs.shape == (512, 9, 9, 4)
    np.testing.assert_array_equal(obs[:, 4, 4, 3], 1.0)  # the agent channel, at the centre
    assert obs[..., 3].sum() == 512
    goal_in_view = obs[..., 1].reshape(512, -1).max(axis=1)
    assert 0 < goal_in_view.sum() < 512, int(goal_in_view.sum())
