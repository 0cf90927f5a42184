"""Each hyperparameter and metric declared once: what is derived from the declarations."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import PPOConfig, train
from train.config import SHAPE_CHANGING, SWEEPABLE
from train.losses import LossInfo
from train.placement import resolve_num_devices
from train.types import METRIC_NAMES, HParams, UpdateMetrics, make_hparams, stack_fields, unstack_fields


def test_sweepable_and_shape_changing__partition_the_config_fields():
    names = [f.name for f in dataclasses.fields(PPOConfig)]
    assert set(SWEEPABLE) | set(SHAPE_CHANGING) == set(names)
    assert not set(SWEEPABLE) & set(SHAPE_CHANGING)
    assert SWEEPABLE == ("learning_rate", "gamma", "gae_lambda", "clip_eps", "ent_coef",
                         "vf_coef", "max_grad_norm")
    # each traced field carries its own rule: a sweep value is checked by it
    with pytest.raises(ValueError, match=r"gae_lambda.*1\.5.*must be in \[0, 1\]"):
        PPOConfig(sweep={"gae_lambda": (0.9, 1.5)})
    with pytest.raises(ValueError, match="sweep"):
        PPOConfig(sweep={"num_envs": (4.0, 8.0)})


def test_hparams__one_leaf_per_sweepable_in_order_and_immutable():
    config = PPOConfig(sweep={"ent_coef": (0.0, 0.02)})
    hp = make_hparams(config)
    assert [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(hp)[0]] == [
        f".{k}" for k in SWEEPABLE
    ]
    np.testing.assert_array_equal(hp.ent_coef, np.float32([0.0, 0.02]))
    assert hp.learning_rate.dtype == jnp.float32 and hp.learning_rate.shape == (2,)
    first = jax.tree.map(lambda x: x[0], hp)  # a pytree: tree.map rebuilds it
    assert isinstance(first, HParams) and first.ent_coef == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.gamma = 0.5
    with pytest.raises(TypeError, match="exactly"):
        HParams(learning_rate=1.0)
    with pytest.raises(TypeError, match="exactly"):
        hp.replace(num_envs=4)
    assert hp.replace(gamma=jnp.float32(0.5)).gamma == 0.5 and hp.gamma.shape == (2,)
    with pytest.raises(AttributeError, match="num_envs"):
        hp.num_envs


def test_metric_names__the_update_metrics_then_env_steps():
    assert METRIC_NAMES == tuple(f.name for f in dataclasses.fields(UpdateMetrics)) + ("env_steps",)


def test_stack_and_unstack_fields__round_trip_by_name():
    info = LossInfo(*(jnp.float32(i) for i in range(6)))
    packed = stack_fields(info)
    assert packed.shape == (6,)
    back = unstack_fields(LossInfo, packed)
    for f in dataclasses.fields(LossInfo):
        assert getattr(back, f.name) == getattr(info, f.name), f.name


@pytest.mark.parametrize("bad", [0, -1, 10_000, 1.5, True])
def test_num_devices__out_of_range_refused_before_compiling(bad):
    with pytest.raises(ValueError, match="num_devices"):
        resolve_num_devices(bad)
    config = PPOConfig(seeds=(0,), total_timesteps=128, num_envs=4, num_steps=32, num_minibatches=1)
    with pytest.raises(ValueError, match="num_devices"):
        train(config, num_devices=bad)
