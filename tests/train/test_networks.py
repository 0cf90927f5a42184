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
    net = networks.ActorCritic(action_dim=2, discrete_actions=False, obs_kind="image", encoder="cnn")
    obs = jnp.ones((3, 5, 5, 2))
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    mean, value = net.apply(params, obs)
    assert mean.shape == (3, 2) and value.shape == (3,)
    assert params["params"]["log_std"].shape == (2,)
    assert "Conv_0" in params["params"]


def _grid_obs(batch: int, h: int = 5, w: int = 6, c: int = 4, seed: int = 0) -> jax.Array:
    """[batch, h, w, c] one-hot cell kinds as jaxgrid draws them (floor: no flag), one agent."""
    kinds = jax.random.randint(jax.random.PRNGKey(seed), (batch, h, w), 0, c)
    obs = jax.nn.one_hot(kinds, c)[..., :]  # kind c-1 plays the agent's flag below
    agent = jax.nn.one_hot(jnp.arange(batch) % (h * w), h * w).reshape(batch, h, w)
    return obs.at[..., c - 1].set(agent)


# first-layer input width and the encoder's own parameters, for a [5, 6, 4] image
_ENCODERS = {
    "dense": (5 * 6 * 4, set()),
    "embed": (5 * 6 * networks.EMBED_DIM, {"cell_embedding"}),
    "cnn": (5 * 6 * networks.CNN_FEATURES[-1], {"Conv_0", "Conv_1"}),
}


@pytest.mark.parametrize("encoder", sorted(_ENCODERS))
def test_image_encoders__shapes_and_gradients_reach_every_parameter(encoder):
    net = _net(obs_kind="image", num_obs_categories=0, encoder=encoder)
    obs = _grid_obs(7)
    params = jax.jit(lambda k, o: networks.init_params(k, net, o))(jax.random.PRNGKey(0), obs)
    width, own = _ENCODERS[encoder]
    p = params["params"]
    assert set(p) == {"tower_0_kernel", "tower_0_bias", "tower_1_kernel", "tower_1_bias",
                      "actor_head", "critic_head"} | own
    assert p["tower_0_kernel"].shape == (2, width, 64)
    logits, value = net.apply(params, obs)
    assert logits.shape == (7, 4) and value.shape == (7,)
    assert net.apply(params, obs, critic_only=True)[1].shape == (7,)

    def loss(params):
        logits, value = net.apply(params, obs)
        return jnp.sum(jax.nn.log_softmax(logits)[:, 1]) + jnp.sum((value - 1.0) ** 2)

    grads = jax.grad(loss)(params)
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).max()) > 0, jax.tree_util.keystr(path)


def test_image_encoders__embed_reads_cell_kind_codes():
    # Cells with the same channel flags get the same vector, cells with other flags another:
    # the encoder is tanh(table[sum_c x_c 2^c]) per cell, flattened in row-major cell order.
    net = _net(obs_kind="image", num_obs_categories=0, encoder="embed", hidden_sizes=(3,))
    obs = _grid_obs(2)
    params = networks.init_params(jax.random.PRNGKey(1), net, obs)
    table = params["params"]["cell_embedding"]
    code = np.asarray(obs, np.int64) @ (2 ** np.arange(4))  # [2, 5, 6]
    feats = np.tanh(np.asarray(table)[code]).reshape(2, -1)
    kernel, bias = params["params"]["tower_0_kernel"], params["params"]["tower_0_bias"]
    hidden = np.tanh(feats @ np.asarray(kernel[1]) + np.asarray(bias[1]))
    head = params["params"]["critic_head"]
    expected = hidden @ np.asarray(head["kernel"])[:, 0] + np.asarray(head["bias"])[0]
    np.testing.assert_allclose(net.apply(params, obs)[1], expected, atol=1e-5)


def test_image_encoders__dense_is_the_flattened_image():
    image = _net(obs_kind="image", num_obs_categories=0, encoder="dense")
    vector = _net(obs_kind="vector", num_obs_categories=0)
    obs = _grid_obs(3)
    params = networks.init_params(jax.random.PRNGKey(2), image, obs)
    np.testing.assert_array_equal(image.apply(params, obs)[0], vector.apply(params, obs.reshape(3, -1))[0])


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(obs_kind="vector", num_obs_categories=0, hidden_sizes=(32, 16, 8)),
     *[dict(obs_kind="image", num_obs_categories=0, encoder=e) for e in sorted(_ENCODERS)]],
    ids=["discrete", "vector", *sorted(_ENCODERS)],
)
def test_init_params__every_kernel_has_its_declared_gain_and_the_rest_is_zero(kw):
    """The gains as documented: sqrt 2 hidden layers and encoders, 0.01 actor head, 1 critic head;
    ``init_params`` and ``network.init`` both follow ``orthogonal_kernels``."""
    net = _net(**kw)
    obs = jnp.zeros((3,), jnp.int32) if net.obs_kind == "discrete" else (
        _grid_obs(3) if net.obs_kind == "image" else jnp.ones((3, 5)))
    table = net.orthogonal_kernels()
    expected_gain = {("actor_head", "kernel"): 0.01, ("critic_head", "kernel"): 1.0}
    for params in (networks.init_params(jax.random.PRNGKey(0), net, obs), net.init(jax.random.PRNGKey(0), obs)):
        seen = set()
        for path, leaf in jax.tree_util.tree_flatten_with_path(params["params"])[0]:
            names = tuple(str(getattr(k, "key", k)) for k in path)
            leaf = np.asarray(leaf, np.float64)
            if names not in table:
                assert names[-1] in ("bias", "log_std") or names[-1].endswith("_bias"), names
                assert not leaf.any(), names
                continue
            seen.add(names)
            spec = table[names]
            assert spec.gain == pytest.approx(expected_gain.get(names, math.sqrt(2.0)))
            for mat in leaf if spec.count else [leaf]:
                m = mat.reshape(-1, mat.shape[-1])
                sv = np.linalg.svd(m, compute_uv=False)
                np.testing.assert_allclose(sv, spec.gain, rtol=1e-4, err_msg=str(names))
        assert seen == set(table)


def test_init_params__refuses_a_table_naming_a_missing_parameter(monkeypatch):
    net = _net()
    table = net.orthogonal_kernels()
    monkeypatch.setattr(
        networks.ActorCritic, "orthogonal_kernels",
        lambda self: {**table, ("Conv_0", "kernel"): networks.OrthogonalKernel(1.0)},
    )
    with pytest.raises(ValueError, match=r"names parameters it lacks: \['Conv_0/kernel'\]"):
        networks.init_params(jax.random.PRNGKey(0), net, jnp.zeros((2,), jnp.int32))


def test_encoder__auto_resolution_and_validation():
    from train.config import PPOConfig
    from train.setup import make_setup

    maze = make_setup(PPOConfig(env_id="Maze-9x9-v0"))
    assert maze.network.encoder == "dense"  # auto: the fastest (bench/encoders.py)
    for encoder in ("dense", "embed", "cnn"):
        assert make_setup(PPOConfig(env_id="Maze-9x9-v0", encoder=encoder)).network.encoder == encoder
    grid = make_setup(PPOConfig(encoder="dense"))  # index observations: accepted, one-hot as ever
    assert grid.spec.obs_kind == "discrete"
    with pytest.raises(ValueError, match=r"encoder='cnn' needs image observations .*'auto', 'dense'"):
        make_setup(PPOConfig(encoder="cnn"))
    with pytest.raises(ValueError, match=r"encoder='conv' is invalid: must be one of 'auto', 'dense', 'embed', 'cnn'"):
        PPOConfig(encoder="conv")
    with pytest.raises(ValueError, match=r"encoder='embed' is invalid: the recurrent policy .*'auto', 'dense'"):
        PPOConfig(env_id="Maze-9x9-v0", encoder="embed", rnn_hidden_size=8)
    with pytest.raises(ValueError, match="cannot be swept"):
        PPOConfig(sweep={"encoder": (1.0,)})
