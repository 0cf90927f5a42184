"""The observation table (``PPOConfig.obs_table``): the network evaluated once per Discrete
observation and looked up must be the same function, loss, gradient and training as per sample."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import PPOConfig, train
from train import networks, ppo
from train.setup import make_setup
from train.types import make_hparams

TINY = dict(total_timesteps=1024, num_envs=8, num_steps=32, num_eval_envs=4, seeds=(0, 1))


def _setups(**kwargs):
    on = make_setup(PPOConfig(obs_table="on", **kwargs))
    off = make_setup(PPOConfig(obs_table="off", **kwargs))
    assert on.obs_table and not off.obs_table
    return on, off


def _params(setup, key=0):
    obs = jnp.zeros((1,), jnp.int32)
    params = networks.init_params(jax.random.PRNGKey(key), setup.network, obs)
    # Non-zero biases and a less flat actor head, so every term of the network matters.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(key + 1), len(leaves))
    leaves = [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, leaves)


def test_auto__on_for_small_discrete_obs_off_otherwise():
    assert make_setup(PPOConfig()).obs_table  # 16 observations, minibatches of 128
    assert not make_setup(PPOConfig(obs_table="off")).obs_table
    # A minibatch smaller than the 16 observations: per-sample evaluation is cheaper.
    small = PPOConfig(num_envs=2, num_steps=4, num_minibatches=1, total_timesteps=8)
    assert small.minibatch_size < 16 and not make_setup(small).obs_table
    assert make_setup(small.replace(obs_table="on")).obs_table
    assert not make_setup(PPOConfig(env_id="CartPole-v1")).obs_table  # Box observations


def test_on__box_observations_are_rejected_before_compiling():
    with pytest.raises(ValueError, match=r"obs_table='on' needs a Discrete.*'auto', 'off'"):
        ppo.make_train(PPOConfig(env_id="CartPole-v1", obs_table="on"))
    with pytest.raises(ValueError, match=r"obs_table.*'auto', 'on', 'off'"):
        PPOConfig(obs_table="sometimes")


def test_table_forward__same_outputs_as_the_network():
    on, off = _setups()
    params = _params(on)
    obs = jax.random.randint(jax.random.PRNGKey(5), (200,), 0, 16)
    want_pi, want_v = off.apply(params, obs)
    got_pi, got_v = on.apply(params, obs)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(on.value(params, obs), want_v, rtol=1e-5, atol=1e-6)
    frozen, lookup = on.rollout_policy(params)
    pi, v = lookup(frozen, obs)
    np.testing.assert_allclose(pi, want_pi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, want_v, rtol=1e-5, atol=1e-6)
    # Without the table, the rollout uses the network itself.
    same, apply = off.rollout_policy(params)
    assert same is params and apply == off.apply


def test_table_loss_and_gradient__same_as_per_sample():
    on, off = _setups()
    params = _params(on)
    ks = jax.random.split(jax.random.PRNGKey(9), 6)
    B = 128
    batch = {
        "obs": jax.random.randint(ks[0], (B,), 0, 16),
        "action": jax.random.randint(ks[1], (B,), 0, 4),
        "log_prob": jnp.log(jax.random.uniform(ks[2], (B,), minval=0.05, maxval=0.9)),
        "value": jax.random.normal(ks[3], (B,)),
        "advantage": jax.random.normal(ks[4], (B,)),
        "target": jax.random.normal(ks[5], (B,)),
    }
    hp = jax.tree.map(lambda x: x[0], make_hparams(on.config))
    grad = jax.grad(ppo.minibatch_loss, has_aux=True)
    g_on, info_on = grad(params, batch, hp, on)
    g_off, info_off = grad(params, batch, hp, off)
    for a, b in zip(jax.tree.leaves(info_on), jax.tree.leaves(info_off)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    flat_on, flat_off = (jax.flatten_util.ravel_pytree(g)[0] for g in (g_on, g_off))
    assert float(jnp.abs(flat_off).max()) > 1e-3  # a gradient worth comparing
    np.testing.assert_allclose(flat_on, flat_off, rtol=1e-4, atol=1e-6)


def test_training__same_curves_with_and_without_the_table():
    on = train(PPOConfig(obs_table="on", **TINY))
    off = train(PPOConfig(obs_table="off", **TINY))
    for name in ("episode_return", "episode_length", "policy_loss", "value_loss", "entropy"):
        np.testing.assert_allclose(
            on.metrics[name], off.metrics[name], rtol=1e-3, atol=1e-4, err_msg=name
        )
    np.testing.assert_allclose(on.eval_returns, off.eval_returns, atol=1e-5)
