"""``train.feature_major``: the actor-critic evaluated feature-major must be the same function,
and have the same gradient, as ``ActorCritic.apply`` (to float rounding), and the trainer must use
it for flat observations and dense-encoded images only (discrete observations and the other image
encoders keep ``ActorCritic``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import PPOConfig, feature_major, networks
from train.setup import make_setup


def _network(obs_dim: int, hidden: tuple[int, ...], activation: str, discrete: bool = True):
    return networks.ActorCritic(
        action_dim=3 if discrete else 2, discrete_actions=discrete, obs_kind="vector",
        hidden_sizes=hidden, activation=activation,
    )


def _perturbed_params(net, obs, key=0):
    params = networks.init_params(jax.random.PRNGKey(key), net, obs)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(key + 1), len(leaves))
    # Non-zero biases and a less flat actor head, so every term matters.
    return jax.tree.unflatten(treedef, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


@pytest.mark.parametrize("hidden,activation", [((64, 64), "tanh"), ((16,), "relu"), ((), "tanh"), ((8, 5, 7), "tanh")])
def test_apply__same_outputs_and_gradients_as_actor_critic(hidden, activation):
    net = _network(6, hidden, activation)
    obs = jax.random.normal(jax.random.PRNGKey(3), (37, 2, 3))  # flattened to [37, 6]
    params = _perturbed_params(net, obs)
    fm = jax.jit(lambda p, o, c: feature_major.apply(p, o, len(hidden), activation, c), static_argnums=2)
    want_pi, want_v = net.apply(params, obs)
    got_pi, got_v = fm(params, obs, False)
    assert got_pi.shape == (37, 3) and got_v.shape == (37,) and got_pi.dtype == jnp.float32
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    none, critic = fm(params, obs, True)
    assert none is None
    np.testing.assert_allclose(critic, want_v, rtol=1e-5, atol=1e-5)

    weights = jax.random.normal(jax.random.PRNGKey(4), (37, 4))

    def loss(apply_fn):
        def f(p):
            pi, v = apply_fn(p)
            return jnp.sum(pi * weights[:, :3]) + jnp.sum(jnp.tanh(v) * weights[:, 3])
        return f

    want = jax.grad(loss(lambda p: net.apply(p, obs)))(params)
    got = jax.jit(jax.grad(loss(lambda p: feature_major.apply(p, obs, len(hidden), activation))))(params)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True):
        assert np.abs(np.asarray(w)).max() > 0, path  # every parameter gets a gradient
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_apply__vmapped_over_parameters_matches_per_run():
    """Seeds vmapped (``seed_batching="vmap"``): the custom backward passes batch correctly."""
    net = _network(4, (16, 16), "tanh")
    obs = jax.random.normal(jax.random.PRNGKey(0), (32, 4))
    params = jax.vmap(lambda k: _perturbed_params(net, obs, k))(jnp.arange(3))

    def loss(p):
        pi, v = feature_major.apply(p, obs, 2, "tanh")
        return jnp.sum(jax.nn.log_softmax(pi)[:, 0]) + jnp.sum(v**2)

    batched = jax.jit(jax.vmap(jax.grad(loss)))(params)
    for i in range(3):
        one = jax.tree.map(lambda x: x[i], params)
        want = jax.grad(lambda p: loss(p))(one)
        for g, w in zip(jax.tree.leaves(batched), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g[i], w, rtol=1e-4, atol=1e-4)


def test_setup__feature_major_for_flat_obs_and_discrete_obs_without_the_table():
    cartpole = make_setup(PPOConfig(env_id="CartPole-v1"))
    assert cartpole.feature_major and not cartpole.obs_table
    grid = make_setup(PPOConfig())  # GridWorld: Discrete(16) obs, the table, ActorCritic.apply
    assert grid.obs_table and not grid.feature_major
    # Without the table, Discrete obs go feature-major, the first layer a row gather (results version 3).
    off = make_setup(PPOConfig(obs_table="off"))
    assert off.feature_major and not off.obs_table
    four_rooms = make_setup(PPOConfig(env_id="FourRooms-v0"))  # Discrete(169) > minibatch 128
    assert four_rooms.feature_major and not four_rooms.obs_table
    assert make_setup(PPOConfig(env_id="FourRooms-v0", num_envs=32)).obs_table  # minibatch 256
    assert make_setup(PPOConfig(env_kwargs={"obs": "onehot"})).feature_major
    # Images: the dense encoder only flattens them (feature-major); "embed" and "cnn" do not.
    assert make_setup(PPOConfig(env_id="Maze-9x9-v0")).feature_major  # encoder "auto" -> "dense"
    assert make_setup(PPOConfig(env_id="TMaze-v0", encoder="dense")).feature_major
    assert not make_setup(PPOConfig(env_id="TMaze-v0", encoder="cnn")).feature_major
    assert not make_setup(PPOConfig(env_id="Maze-9x9-v0", encoder="embed")).feature_major


def test_setup__cartpole_apply_value_and_loss_terms_match_the_network():
    setup = make_setup(PPOConfig(env_id="CartPole-v1"))
    obs = jax.random.normal(jax.random.PRNGKey(1), (50, 4))
    params = _perturbed_params(setup.network, obs)
    want_pi, want_v = setup.network.apply(params, obs)
    got_pi, got_v = setup.apply(params, obs)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(setup.value(params, obs), want_v, rtol=1e-5, atol=1e-5)
    action = jax.random.randint(jax.random.PRNGKey(2), (50,), 0, 2)
    log_prob, entropy, value = setup.evaluate_actions(params, obs, action)
    np.testing.assert_allclose(log_prob, networks.log_prob(want_pi, None, action, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(entropy, networks.entropy(want_pi, None, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, want_v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("env_id,env_kwargs", [("Maze-9x9-v0", {}), ("FourRoomsRandom-v0", {"obs": "view", "view_size": 7})])
def test_setup__dense_image_apply_value_loss_terms_and_gradient_match_the_network(env_id, env_kwargs):
    """A dense-encoded image ([B, H, W, C] float32) gives the network's outputs and gradients."""
    setup = make_setup(PPOConfig(env_id=env_id, env_kwargs=env_kwargs))
    assert setup.feature_major and setup.network.obs_kind == "image" and setup.network.encoder == "dense"
    shape = setup.spec.env.observation_space(setup.spec.env_params).shape
    obs = (jax.random.uniform(jax.random.PRNGKey(1), (40, *shape)) < 0.3).astype(jnp.float32)
    params = _perturbed_params(setup.network, obs)
    want_pi, want_v = setup.network.apply(params, obs)
    got_pi, got_v = jax.jit(setup.apply)(params, obs)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(setup.value)(params, obs), want_v, rtol=1e-5, atol=1e-5)
    action = jax.random.randint(jax.random.PRNGKey(2), (40,), 0, setup.spec.action_dim)

    def loss(evaluate):
        def f(p):
            log_prob, entropy, value = evaluate(p)
            return jnp.sum(log_prob) + 0.1 * jnp.sum(entropy) + jnp.sum(value**2)
        return f

    log_prob, entropy, value = setup.evaluate_actions(params, obs, action)
    np.testing.assert_allclose(log_prob, networks.log_prob(want_pi, None, action, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(entropy, networks.entropy(want_pi, None, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, want_v, rtol=1e-5, atol=1e-5)
    want = jax.grad(loss(lambda p: (
        networks.log_prob(setup.network.apply(p, obs)[0], None, action, True),
        networks.entropy(setup.network.apply(p, obs)[0], None, True),
        setup.network.apply(p, obs)[1],
    )))(params)
    got = jax.jit(jax.grad(loss(lambda p: setup.evaluate_actions(p, obs, action))))(params)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True):
        assert np.abs(np.asarray(w)).max() > 0, path
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=jax.tree_util.keystr(path))


def test_index_linear__forward_bitwise_the_one_hot_matmul_and_gradient_its_transpose():
    """The row gather is exactly ``one_hot(index) @ kernel`` (one non-zero term per sum); its
    kernel gradient is the scatter-add of ``g``'s rows, i.e. ``one_hot(index)^T g``."""
    kernel = jax.random.normal(jax.random.PRNGKey(0), (11, 5))
    bias = jax.random.normal(jax.random.PRNGKey(1), (5,))
    index = jnp.array([3, 0, 10, 3, 7, 3, 1, 10], jnp.int32)  # repeats: the gradient must sum them
    one_hot = jax.nn.one_hot(index, 11)
    got = jax.jit(feature_major.index_linear)(kernel, bias, index)
    assert got.shape == (5, 8) and got.dtype == jnp.float32
    np.testing.assert_array_equal(got, (one_hot @ kernel + bias).T)  # bitwise
    g = jax.random.normal(jax.random.PRNGKey(2), (5, 8))
    grad_k, grad_b = jax.jit(jax.grad(lambda k, b: jnp.sum(feature_major.index_linear(k, b, index) * g),
                                      argnums=(0, 1)))(kernel, bias)
    np.testing.assert_allclose(grad_k, one_hot.T @ g.T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad_k[3], g[:, 0] + g[:, 3] + g[:, 5], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(grad_k)[[2, 4, 5, 6, 8, 9]], 0.0)  # never observed: no gradient
    np.testing.assert_allclose(grad_b, g.sum(1), rtol=1e-6)


def _discrete_network(n: int, hidden: tuple[int, ...], activation: str = "tanh"):
    return networks.ActorCritic(action_dim=4, discrete_actions=True, obs_kind="discrete",
                                num_obs_categories=n, hidden_sizes=hidden, activation=activation)


@pytest.mark.parametrize("hidden,activation", [((64, 64), "tanh"), ((16,), "relu"), ((), "tanh")])
def test_apply__discrete_obs_same_outputs_and_gradients_as_actor_critic(hidden, activation):
    net = _discrete_network(23, hidden, activation)
    obs = jax.random.randint(jax.random.PRNGKey(3), (37,), 0, 23)
    params = _perturbed_params(net, obs)
    fm = jax.jit(lambda p, o, c: feature_major.apply(p, o, len(hidden), activation, c, 23), static_argnums=2)
    want_pi, want_v = net.apply(params, obs)
    got_pi, got_v = fm(params, obs, False)
    assert got_pi.shape == (37, 4) and got_v.shape == (37,)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fm(params, obs[:, None], True)[1], want_v, rtol=1e-5, atol=1e-5)

    weights = jax.random.normal(jax.random.PRNGKey(4), (37, 5))

    def loss(apply_fn):
        def f(p):
            pi, v = apply_fn(p)
            return jnp.sum(pi * weights[:, :4]) + jnp.sum(jnp.tanh(v) * weights[:, 4])
        return f

    want = jax.grad(loss(lambda p: net.apply(p, obs)))(params)
    got = jax.jit(jax.grad(loss(lambda p: feature_major.apply(p, obs, len(hidden), activation, False, 23))))(params)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True):
        assert np.abs(np.asarray(w)).max() > 0, path
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_apply__discrete_obs_vmapped_over_parameters_matches_per_run():
    """``seed_batching="vmap"``: the row gather and its scatter-add gradient batch correctly."""
    net = _discrete_network(30, (16, 16))
    obs = jax.random.randint(jax.random.PRNGKey(0), (3, 24), 0, 30)  # each run its own batch
    params = jax.vmap(lambda k, o: _perturbed_params(net, o, k))(jnp.arange(3), obs)

    def loss(p, o):
        pi, v = feature_major.apply(p, o, 2, "tanh", False, 30)
        return jnp.sum(jax.nn.log_softmax(pi)[:, 0]) + jnp.sum(v**2)

    batched = jax.jit(jax.vmap(jax.grad(loss)))(params, obs)
    for i in range(3):
        want = jax.grad(loss)(jax.tree.map(lambda x: x[i], params), obs[i])
        for g, w in zip(jax.tree.leaves(batched), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g[i], w, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def four_rooms():
    """FourRooms-v0 at PPOConfig's defaults (Discrete(169), no loss table): its setup, a batch of
    128 observations and perturbed network parameters."""
    setup = make_setup(PPOConfig(env_id="FourRooms-v0"))
    obs = jax.random.randint(jax.random.PRNGKey(1), (128,), 0, 169)
    return setup, obs, _perturbed_params(setup.network, obs)


def test_setup__four_rooms_apply_value_and_loss_gradient_match_the_network(four_rooms):
    """FourRooms-v0 at PPOConfig's defaults (Discrete(169), no table): the trainer's functions
    equal ``ActorCritic``'s one-hot network to float rounding (results version 3's change)."""
    setup, obs, params = four_rooms
    want_pi, want_v = setup.network.apply(params, obs)
    got_pi, got_v = jax.jit(setup.apply)(params, obs)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(setup.value)(params, obs), want_v, rtol=1e-5, atol=1e-5)
    action = jax.random.randint(jax.random.PRNGKey(2), (128,), 0, setup.spec.action_dim)

    def loss(evaluate):
        def f(p):
            log_prob, entropy, value = evaluate(p)
            return jnp.sum(log_prob) + 0.1 * jnp.sum(entropy) + jnp.sum(value**2)
        return f

    want = jax.grad(loss(lambda p: (
        networks.log_prob(setup.network.apply(p, obs)[0], None, action, True),
        networks.entropy(setup.network.apply(p, obs)[0], None, True),
        setup.network.apply(p, obs)[1],
    )))(params)
    got = jax.jit(jax.grad(loss(lambda p: setup.evaluate_actions(p, obs, action))))(params)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got), strict=True):
        assert np.abs(np.asarray(w)).max() > 0, path
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=jax.tree_util.keystr(path))


def test_setup__four_rooms_rollout_policy_is_a_table_of_every_observation(four_rooms):
    """Without the loss's table, a rollout still looks its steps up in a table of the network on
    all n observations (``rollout_policy``): the same outputs as ``apply`` to float rounding."""
    setup, obs, params = four_rooms
    frozen, lookup = setup.rollout_policy(params)
    policy_table, value_table = frozen["obs_table"]
    assert policy_table.shape == (169, setup.spec.action_dim) and value_table.shape == (169,)
    want_pi, want_v = setup.network.apply(params, obs)
    got_pi, got_v = jax.jit(lookup)(frozen, obs)
    np.testing.assert_allclose(got_pi, want_pi, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)
    # obs_table="off" (once per sample) and CartPole (vector obs) keep the network itself.
    off = make_setup(PPOConfig(env_id="FourRooms-v0", obs_table="off"))
    same, apply = off.rollout_policy(params)
    assert same is params and apply == off.apply
    cartpole = make_setup(PPOConfig(env_id="CartPole-v1"))
    same, apply = cartpole.rollout_policy(params)
    assert same is params and apply == cartpole.apply


def test_presets__every_discrete_preset_uses_the_table_so_results_version_3_leaves_it_unchanged():
    """The README's claim: results version 3 (Discrete obs without the table go feature-major)
    changes no preset's results, because every Discrete preset has n <= its minibatch size."""
    from train.presets import PRESETS, preset_config

    discrete = 0
    for env_id in PRESETS:
        config = preset_config(env_id)
        if config.rnn_hidden_size:  # the recurrent policy has its own network
            continue
        setup = make_setup(config)
        if setup.spec.obs_kind == "discrete":
            discrete += 1
            assert setup.obs_table and not setup.feature_major, env_id
    assert discrete >= 7  # GridWorld, EmptyRoom, FrozenLake x2, CliffWalking x2, FourRooms
