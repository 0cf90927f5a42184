"""Every registered id: make, reset, step under jit(vmap), spaces contain the observations; the
observation encodings agree with each other; slip as a traced, vmappable param."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

import jaxgrid
from jaxgrid import observations
from jaxgrid.types import GOAL, LAVA, WALL

pytestmark = pytest.mark.timeout(120)

CUSTOM = "S..#\n.L..\n...G"
ALL_IDS = jaxgrid.registered_ids()


def make(env_id, **kwargs):
    if env_id == "GridWorld-v0":
        kwargs.setdefault("layout", CUSTOM)
    if env_id == "Maze-v0":
        kwargs.setdefault("size", (5, 7))  # a non-square maze (and a smaller compile)
    return jaxgrid.make(env_id, **kwargs)


def assert_in_space(space, obs, batch: int | None = None):
    """Shape, dtype and range (gymnax's ``contains`` checks the range only)."""
    shape = space.shape if batch is None else (batch, *space.shape)
    assert obs.shape == shape, (obs.shape, shape)
    assert obs.dtype == space.dtype, (obs.dtype, space.dtype)
    inside = jax.vmap(space.contains)(obs) if batch is not None else space.contains(obs)
    assert bool(jnp.all(inside))


def test_registry__the_issue_ids_are_registered():
    for env_id in ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "FourRooms-v0",
                   "FourRoomsRandom-v0", "EmptyRoom-v0", "Maze-9x9-v0", "Maze-15x15-v0", "Maze-v0",
                   "GridWorld-4x4-v0", "GridWorld-v0"):
        assert env_id in ALL_IDS
        assert jaxgrid.registry.describe(env_id)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_id__reset_and_step_under_jit_vmap(env_id):
    env, params = make(env_id)
    n = 8
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert_in_space(env.observation_space(params), obs, batch=n)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    action_space = env.action_space(params)
    assert isinstance(action_space, spaces.Discrete) and action_space.n == 4
    for t in range(3):
        keys = jax.random.split(jax.random.PRNGKey(t + 1), n)
        actions = jax.vmap(action_space.sample)(keys)
        obs, state, reward, terminated, truncated, info = step(keys, state, actions, params)
        assert_in_space(env.observation_space(params), obs, batch=n)
        assert_in_space(env.observation_space(params), info["final_observation"], batch=n)
        assert reward.dtype == jnp.float32 and reward.shape == (n,)
        assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
        assert not bool(jnp.any(terminated & truncated))
    assert env.name == env_id and env_id in repr(env)


@pytest.mark.parametrize("env_id", ["GridWorld-4x4-v0", "FrozenLake8x8-v1", "Maze-9x9-v0", "CliffWalking-v1"])
def test_encodings__agree_with_each_other(env_id):
    """index <-> onehot <-> coords <-> grid <-> view, on the same states, for every encoding at make."""
    env, params = make(env_id)
    w, h = env.width, env.height
    keys = jax.random.split(jax.random.PRNGKey(1), 64)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    # Scatter the agents over open cells reachable by a few random steps.
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    for t in range(6):
        ks = jax.random.split(jax.random.PRNGKey(100 + t), 64)
        actions = jax.random.randint(jax.random.PRNGKey(200 + t), (64,), 0, 4)
        _, state, *_ = step(ks, state, actions, params)
    encoded = {}
    for enc in observations.ENCODINGS:
        env_e, params_e = make(env_id, obs=enc, view_size=3)
        obs = jax.jit(jax.vmap(env_e.get_obs, in_axes=(0, None)))(state, params_e)
        assert_in_space(env_e.observation_space(params_e), obs, batch=64)
        encoded[enc] = np.asarray(obs)
    pos = np.asarray(state.pos)
    assert len(np.unique(pos)) > 3
    np.testing.assert_array_equal(encoded["index"], pos)
    np.testing.assert_array_equal(encoded["onehot"].argmax(axis=1), pos)
    np.testing.assert_array_equal(encoded["onehot"].sum(axis=1), 1.0)
    np.testing.assert_array_equal(encoded["coords"], np.stack([pos // w, pos % w], axis=1))
    grid = encoded["grid"]
    np.testing.assert_array_equal(grid[..., 3].reshape(64, -1).argmax(axis=1), pos)
    np.testing.assert_array_equal(grid[..., 3].sum(axis=(1, 2)), 1.0)
    kinds = np.asarray(jax.vmap(env.cell_kinds, in_axes=(0, None))(state, params)).reshape(64, h, w)
    for channel, kind in enumerate((WALL, GOAL, LAVA)):
        np.testing.assert_array_equal(grid[..., channel], kinds == kind)
    # The 3x3 view is the grid's wall/goal/lava channels around the agent, walls beyond the edge.
    padded = np.pad(grid[..., :3], ((0, 0), (1, 1), (1, 1), (0, 0)))
    padded[:, 0, :, 0] = padded[:, -1, :, 0] = padded[:, :, 0, 0] = padded[:, :, -1, 0] = 1.0
    for i in range(64):
        r, c = divmod(int(pos[i]), w)
        np.testing.assert_array_equal(encoded["view"][i, ..., :3], padded[i, r:r + 3, c:c + 3])
    np.testing.assert_array_equal(encoded["view"][:, 1, 1, 3], 1.0)
    np.testing.assert_array_equal(encoded["view"][..., 3].sum(axis=(1, 2)), 1.0)


def test_encodings__bad_choices_are_refused_before_compiling():
    with pytest.raises(ValueError, match="unknown observation encoding 'pixels'; valid choices: index"):
        jaxgrid.make("FrozenLake-v1", obs="pixels")
    with pytest.raises(ValueError, match="positive odd int"):
        jaxgrid.make("Maze-9x9-v0", obs="view", view_size=4)
    with pytest.raises(ValueError, match="unknown override"):
        jaxgrid.make("FourRooms-v0", slipery=0.1)


def test_coords_space__bounds_per_axis():
    env, params = jaxgrid.make("CliffWalking-v1", obs="coords")
    space = env.observation_space(params)
    assert bool(space.contains(jnp.array([3, 11], jnp.int32)))
    assert not bool(space.contains(jnp.array([4, 0], jnp.int32)))  # row 4 does not exist


def test_slip__traced_param_vmapped_across_envs():
    """One compiled step, four slip probabilities side by side: the intended move's frequency is
    1 - slip (binomial bounds at 6 sigma), the two sideways moves share the rest evenly."""
    env, params = jaxgrid.make("FrozenLake8x8-v1")
    slips = jnp.array([0.0, 0.25, 0.5, 1.0])
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x, (4, *jnp.shape(x))), params).replace(slip_prob=slips)
    n = 20000
    state = jaxgrid.GridState(time=jnp.int32(0), pos=jnp.int32(9))  # (1, 1): all four moves are open

    def outcomes(params, keys):
        return jax.vmap(lambda k: env.step_env(k, state, 2, params)[1].pos)(keys)  # action 2: right

    keys = jax.random.split(jax.random.PRNGKey(0), n)
    pos = np.asarray(jax.jit(jax.vmap(outcomes, in_axes=(0, None)))(batch, keys))
    for p, row in zip(np.asarray(slips), pos):
        intended, down, up = (row == 10).mean(), (row == 17).mean(), (row == 1).mean()
        assert set(np.unique(row)) <= {10, 17, 1}
        sigma = np.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(intended - (1 - p)) <= 6 * sigma + 1e-9, (p, intended)
        assert abs(down - p / 2) <= 6 * np.sqrt(0.25 / n) and abs(up - p / 2) <= 6 * np.sqrt(0.25 / n)


def test_slip__deterministic_envs_have_no_slip_field_and_slip_prob_makes_them_slippery():
    env, params = jaxgrid.make("FrozenLake-v1", is_slippery=False)
    assert not env.slippery and not hasattr(params, "slip_prob")
    env, params = jaxgrid.make("GridWorld-4x4-v0", slip_prob=0.1)
    assert env.slippery and np.isclose(float(params.slip_prob), 0.1)
    with pytest.raises(ValueError, match=r"slip_prob must be in \[0, 1\]"):
        jaxgrid.make("FourRooms-v0", slip_prob=1.5)
    env, params = jaxgrid.make("Maze-9x9-v0", slip_prob=0.2)
    assert env.slippery and type(params).__name__ == "SlipperyGridParams"
