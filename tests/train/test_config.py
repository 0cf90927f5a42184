"""PPOConfig validation, derived values and sweep grids."""

import pytest

from train import PPOConfig


def test_defaults_are_valid_and_derived_values():
    c = PPOConfig()
    assert c.env_id == "GridWorld-4x4-v0"
    assert c.batch_size == c.num_envs * c.num_steps
    assert c.minibatch_size * c.num_minibatches == c.batch_size
    assert c.num_updates == c.total_timesteps // c.batch_size
    assert c.grid_shape == () and c.num_grid_points == 1
    assert c.grid_points() == [{}]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"num_envs": 0}, "PPOConfig.num_envs=0 is invalid: must be a positive int"),
        ({"num_steps": -3}, "num_steps=-3"),
        ({"num_minibatches": 3}, "must divide num_envs * num_steps = 512"),
        ({"total_timesteps": 100}, "must be at least num_envs * num_steps"),
        ({"gamma": 1.5}, "gamma=1.5 is invalid: must be in (0, 1]"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"seeds": ()}, "at least one seed"),
        ({"seeds": (1, 1)}, "must not repeat"),
        ({"activation": "gelu"}, "activation='gelu'"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
    ],
)
def test_validation_errors_name_field_value_and_rule(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        PPOConfig(**kwargs)
    assert fragment in str(err.value)


def test_unknown_env_id_lists_valid_choices():
    with pytest.raises(ValueError) as err:
        PPOConfig(env_id="NoSuchEnv-v9")
    msg = str(err.value)
    assert "NoSuchEnv-v9" in msg and "GridWorld-4x4-v0" in msg and "CartPole-v1" in msg
    with pytest.raises(ValueError, match=r"must be a known env id \(did you mean 'FrozenLake-v1'"):
        PPOConfig(env_id="frozenlake-v1")


def test_sweep_grid():
    c = PPOConfig(sweep={"learning_rate": (1e-3, 3e-4), "ent_coef": (0.0, 0.01, 0.1)})
    assert c.grid_shape == (2, 3) and c.num_grid_points == 6
    points = c.grid_points()
    assert points[0] == {"learning_rate": 1e-3, "ent_coef": 0.0}
    assert points[5] == {"learning_rate": 3e-4, "ent_coef": 0.1}
    values = c.hparam_values()
    assert values["learning_rate"] == [1e-3] * 3 + [3e-4] * 3
    assert values["gamma"] == [c.gamma] * 6


@pytest.mark.parametrize("key", ["num_envs", "hidden_sizes", "num_minibatches", "seeds"])
def test_sweep_rejects_shape_changing_keys(key):
    with pytest.raises(ValueError, match="cannot be swept"):
        PPOConfig(sweep={key: (1.0, 2.0)})


def test_sweep_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="sweepable keys"):
        PPOConfig(sweep={"learning_rat": (1.0,)})
    with pytest.raises(ValueError, match=r"gamma \(in sweep\)=2.0"):
        PPOConfig(sweep={"gamma": (0.9, 2.0)})


def test_config_is_frozen():
    c = PPOConfig()
    with pytest.raises(Exception):
        c.num_envs = 3  # type: ignore[misc]
    assert c.replace(num_envs=8).num_envs == 8 and c.num_envs == 16


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"seeds": (1.5, 2.7)}, "PPOConfig.seeds=(1.5, 2.7) is invalid: must be a tuple of ints, e.g. (0, 1, 2); 1.5"),
        ({"seeds": (True, False)}, "PPOConfig.seeds=(True, False) is invalid: must be a tuple of ints"),
        ({"seeds": 5}, "PPOConfig.seeds=5 is invalid: must be a tuple of ints, e.g. (0, 1, 2)"),
        ({"seeds": "01"}, "PPOConfig.seeds='01' is invalid: must be a tuple of ints"),
        ({"hidden_sizes": (64.9,)}, "PPOConfig.hidden_sizes=(64.9,) is invalid: must be a tuple of ints, e.g. (64, 64)"),
        ({"hidden_sizes": 64}, "PPOConfig.hidden_sizes=64 is invalid: must be a tuple of ints"),
        ({"sweep": {"learning_rate": "3"}}, "PPOConfig.sweep['learning_rate']='3' is invalid: must be a tuple of numbers"),
        ({"sweep": {"learning_rate": (1e-3, "3")}}, "'3' is not a number"),
        ({"sweep": {"learning_rate": (True,)}}, "True is not a number"),
        ({"sweep": None}, 'PPOConfig.sweep=None is invalid: must be a dict {name: (value, ...)}, e.g. {"learning_rate"'),
        ({"env_kwargs": None}, "PPOConfig.env_kwargs=None is invalid: must be a dict of keyword arguments"),
        ({"env_kwargs": {"step_reward": float("nan")}},
         "PPOConfig.env_kwargs={'step_reward': nan} is invalid: GridWorld-4x4-v0: env param step_reward must be a finite float"),
        ({"env_kwargs": {"max_steps_in_episod": 100}}, "unknown override(s) 'max_steps_in_episod'"),
        ({"env_kwargs": {"lava_terminates": "no"}}, "env param lava_terminates must be True or False, got 'no'"),
        ({"env_id": "CartPole-v1", "env_kwargs": {"gravity": float("inf")}},
         "PPOConfig.env_kwargs['gravity']=inf is invalid: must be a finite number or a bool"),
        ({"env_id": "CartPole-v1", "env_kwargs": {"gravty": 9.8}}, "unknown keys ['gravty']"),
    ],
)
def test_validation__malformed_fields_are_refused_naming_the_field_and_valid_form(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        PPOConfig(**kwargs)
    assert fragment in str(err.value)


def test_validation__sequences_of_exact_ints_and_numbers_are_normalised():
    import numpy as np

    c = PPOConfig(seeds=[3, np.int64(4)], hidden_sizes=np.array([8, 8]), sweep={"learning_rate": [1e-3, np.float32(2e-3)]})
    assert c.seeds == (3, 4) and type(c.seeds[1]) is int
    assert c.hidden_sizes == (8, 8)
    assert c.sweep["learning_rate"][0] == 1e-3 and len(c.sweep["learning_rate"]) == 2
    assert PPOConfig(env_id="CartPole-v1", env_kwargs={"gravity": 9.0}).env_kwargs == {"gravity": 9.0}


@pytest.mark.parametrize("num_devices", [0, -1, 2.0, True, "1", 10**6])
def test_train__bad_num_devices_is_refused_naming_it(num_devices):
    from train import train

    with pytest.raises(ValueError, match=r"num_devices=.* is invalid: must be None \(all\) or an int in \[1, "):
        train(PPOConfig(seeds=(0,), total_timesteps=512), num_devices=num_devices)


@pytest.mark.timeout(120)
def test_cli__non_finite_env_kwarg_fails_before_compiling_and_writes_nothing(tmp_path):
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo)
    proc = subprocess.run(
        [sys.executable, "-m", "train.cli", "--env-kwargs", "step_reward=nan", "--out", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=100, cwd=tmp_path,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "env param step_reward must be a finite float" in proc.stderr and "got 'nan'" in proc.stderr
    assert "compil" not in (proc.stdout + proc.stderr).lower()
    assert list(tmp_path.iterdir()) == []  # no run directory, nothing written
