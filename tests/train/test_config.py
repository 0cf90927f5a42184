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
