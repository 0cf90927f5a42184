"""QR-free orthogonal init (distribution checks) and the fused actor-critic network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import networks


@pytest.mark.parametrize("shape", [(64, 64), (4, 64), (64, 2), (3, 3, 4, 8)])
@pytest.mark.parametrize("scale", [1.0, math.sqrt(2.0), 0.01])
def test_orthogonal__is_orthogonal_with_gain(shape, scale):
    w = networks.orthogonal(scale)(jax.random.PRNGKey(0), shape)
    assert w.shape == shape
    m = np.asarray(w, np.float64).reshape(-1, shape[-1])
    if m.shape[0] >= m.shape[1]:
        gram = m.T @ m  # orthonormal columns
    else:
        gram = m @ m.T  # orthonormal rows
    np.testing.assert_allclose(gram, scale**2 * np.eye(gram.shape[0]), atol=1e-4 * max(1, scale**2))


def test_orthogonal__haar_like_moments():
    # Over many draws, a Haar-distributed orthogonal matrix has E[Q] = 0, E[Q_ij²] = 1/n, and each
    # entry is positive or negative with probability 1/2 (no sign bias from the decomposition).
    n, draws = 8, 2000
    keys = jax.random.split(jax.random.PRNGKey(1), draws)
    qs = np.asarray(jax.jit(jax.vmap(lambda k: networks.orthogonal(1.0)(k, (n, n))))(keys))
    mean = qs.mean(0)
    assert np.abs(mean).max() < 4.5 / math.sqrt(n * draws)  # ~4.5 standard errors
    np.testing.assert_allclose((qs**2).mean(0), 1.0 / n, atol=0.02)
    positive = (qs > 0).mean(0)
    assert np.abs(positive - 0.5).max() < 0.05
    # Determinant is ±1 with both signs (the diagonal of R is not forced into Q's orientation).
    dets = np.linalg.det(qs)
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-3)
    assert 0.4 < (dets > 0).mean() < 0.6


def test_orthogonal__no_lapack_in_program():
    # The deadlock we avoid comes from LAPACK custom calls (QR) inside jitted, vmapped programs.
    f = jax.jit(jax.vmap(lambda k: networks.orthogonal(1.0)(k, (16, 16))))
    hlo = f.lower(jax.random.split(jax.random.PRNGKey(0), 2)).as_text()
    assert "lapack" not in hlo.lower() and "geqrf" not in hlo.lower()


def _net(**kw):
    defaults = dict(action_dim=4, discrete_actions=True, obs_kind="discrete", num_obs_categories=16)
    defaults.update(kw)
    return networks.ActorCritic(**defaults)


def test_init_params__gains_and_shapes():
    net = _net()
    obs = jnp.arange(5, dtype=jnp.int32)
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    ref = net.init(jax.random.PRNGKey(0), obs)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ref)
    p = params["params"]
    for tower in range(2):  # [2, in, out]: each tower's kernel orthogonal with gain sqrt 2
        w = np.asarray(p["tower_1_kernel"][tower], np.float64)
        np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(64), atol=1e-4)
    w0 = np.asarray(p["tower_0_kernel"][0], np.float64)  # [16, 64]: orthonormal rows
    np.testing.assert_allclose(w0 @ w0.T, 2.0 * np.eye(16), atol=1e-4)
    head = np.asarray(p["actor_head"]["kernel"], np.float64)  # [64, 4], gain 0.01
    np.testing.assert_allclose(head.T @ head, 1e-4 * np.eye(4), atol=1e-7)
    v = np.asarray(p["critic_head"]["kernel"], np.float64)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(p["tower_1_kernel"][0], p["tower_1_kernel"][1])  # independent towers
    assert float(jnp.abs(p["tower_0_bias"]).max()) == 0.0


def test_actor_critic__fused_towers_equal_separate_mlps():
    net = _net(obs_kind="vector", num_obs_categories=0)
    obs = jax.random.normal(jax.random.PRNGKey(3), (7, 5))
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    logits, value = net.apply(params, obs)
    p = params["params"]

    def tower(k):
        h = jnp.tanh(obs @ p["tower_0_kernel"][k] + p["tower_0_bias"][k])
        return jnp.tanh(h @ p["tower_1_kernel"][k] + p["tower_1_bias"][k])

    np.testing.assert_allclose(
        logits, tower(0) @ p["actor_head"]["kernel"] + p["actor_head"]["bias"], atol=1e-5
    )
    np.testing.assert_allclose(
        value, (tower(1) @ p["critic_head"]["kernel"])[:, 0] + p["critic_head"]["bias"][0], atol=1e-5
    )


def test_actor_critic__discrete_obs_is_one_hot():
    net = _net()
    obs = jnp.array([0, 3, 15], jnp.int32)
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    vec = _net(obs_kind="vector", num_obs_categories=0)
    one_hot = jax.nn.one_hot(obs, 16)
    np.testing.assert_allclose(net.apply(params, obs)[0], vec.apply(params, one_hot)[0], atol=1e-6)


def test_actor_critic__image_and_gaussian():
    net = networks.ActorCritic(action_dim=2, discrete_actions=False, obs_kind="image")
    obs = jnp.ones((3, 5, 5, 2))
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    mean, value = net.apply(params, obs)
    assert mean.shape == (3, 2) and value.shape == (3,)
    assert params["params"]["log_std"].shape == (2,)
    assert "Conv_0" in params["params"]
