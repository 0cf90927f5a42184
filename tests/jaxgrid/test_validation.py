"""Bad input is refused, on the host, before anything compiles: env params of every registered id
(type, scalar shape, finiteness, range) at ``make``, ``params.replace`` and ``validate_params``;
batched states/actions and params of another layout at trace time; out-of-range actions clipped,
or refused by a ``debug=True`` env; equal envs share compiled programs."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxgrid
from gymnax.environments.environment import EnvParams

from jaxgrid.types import PARAM_SPECS

pytestmark = pytest.mark.timeout(300)

ALL_IDS = jaxgrid.registered_ids()
CUSTOM = "S..#\n.L..\n...G"

# Bad values per kind, each with the reason the message must give.
BAD_ANY = [(None, "NoneType"), ("ten", "str"), ([1.0, 2.0], "shape (2,)"), (np.zeros((1,)), "shape (1,)")]
BAD = {
    "float": BAD_ANY + [(float("nan"), "not finite"), (float("inf"), "not finite"), (-np.inf, "not finite"),
                        (True, "bool"), (1e39, "out of range"), (1 + 2j, "complex")],
    "int": BAD_ANY + [(2.7, "not an integer"), (10**10, "out of range"), (-(10**30), "out of range"),
                      (0, "out of range"), (-1, "out of range"), (True, "bool"), (float("nan"), "not finite")],
    "bool": BAD_ANY + [("no", "str"), (1, "int"), (0.0, "float"), (np.int32(1), "int32")],
}
BAD_SLIP = [(1.5, "out of range"), (-0.1, "out of range")]


def make(env_id, **kwargs):
    if env_id == "GridWorld-v0":
        kwargs.setdefault("layout", CUSTOM)
    if env_id == "Maze-v0":
        kwargs.setdefault("size", (5, 7))
    return jaxgrid.make(env_id, **kwargs)


def bad_values(name):
    spec = PARAM_SPECS[name]
    return BAD[spec.kind] + (BAD_SLIP if name == "slip_prob" else [])


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make__every_param_of_every_id_refuses_bad_values_naming_it(env_id):
    """make(id, name=bad) raises ValueError naming the param, the rule and the reason, for every
    traced param of every id; the same holds for params.replace (a batch of values is allowed
    there, each value checked) and for validate_params on params built by hand."""
    env, params = make(env_id, slip_prob=0.25)  # slippery: every param exists
    for name in PARAM_SPECS:
        valid = PARAM_SPECS[name].valid
        for value, reason in bad_values(name):
            with pytest.raises(ValueError) as err:
                make(env_id, **{name: value})
            message = str(err.value)
            assert f"env param {name} must be {valid}" in message, (name, value, message)
            assert reason in message, (name, value, message)
            if "shape" in reason:
                continue  # a batch of values is what replace is for; step refuses it (test below)
            with pytest.raises(ValueError, match=f"env param {name} must be"):
                params.replace(**{name: value})
            unchecked = dataclasses.replace(params, **{name: value})  # bypasses the checked replace
            with pytest.raises(ValueError, match=f"env param {name} must be"):
                jaxgrid.validate_params(env, unchecked)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make__good_values_are_stored_with_their_dtype(env_id):
    env, params = make(env_id, max_steps_in_episode=7.0, step_reward=np.float64(-2), goal_reward=3,
                       lava_terminates=np.bool_(False), slip_prob=1)
    assert params.max_steps_in_episode.dtype == jnp.int32 and int(params.max_steps_in_episode) == 7
    assert params.step_reward.dtype == jnp.float32 and float(params.step_reward) == -2.0
    assert params.goal_reward.dtype == jnp.float32 and float(params.goal_reward) == 3.0
    assert params.lava_terminates.dtype == jnp.bool_ and not bool(params.lava_terminates)
    assert float(params.slip_prob) == 1.0
    assert jaxgrid.validate_params(env, params) is params


def test_make__options_of_the_families_are_checked_naming_them():
    cases = [
        ("GridWorld-4x4-v0", {"view_size": 2.5}, "view_size must be a positive odd int"),
        ("GridWorld-4x4-v0", {"view_size": 4}, "view_size must be a positive odd int"),
        ("GridWorld-4x4-v0", {"debug": "yes"}, "debug must be True or False"),
        ("EmptyRoom-v0", {"size": 2.7}, "size must be an int N or a pair of ints"),
        ("EmptyRoom-v0", {"size": (4,)}, "size must be an int N or a pair of ints"),
        ("Maze-v0", {"size": "9"}, "size must be an int N or a pair of ints"),
        ("FrozenLake-v1", {"success_rate": "abc"}, r"success_rate must be in \[0, 1\]"),
        ("FrozenLake-v1", {"success_rate": float("nan")}, r"success_rate must be in \[0, 1\]"),
        ("FrozenLake-v1", {"reward_schedule": (1.0, float("nan"), 0.0)}, "reward_schedule.*hole.*not finite"),
        ("FrozenLake-v1", {"reward_schedule": "abc"}, "reward_schedule must be 3 finite floats"),
        ("FrozenLake-v1", {"map_name": ["4x4"]}, "unknown FrozenLake map_name"),
        ("CliffWalking-v1", {"is_slippery": "no"}, "is_slippery must be True or False"),
    ]
    for env_id, kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            jaxgrid.make(env_id, **kwargs)


def test_check_make__runs_make_checks_and_leaves_no_device_arrays():
    jaxgrid.check_make("FrozenLake-v1", step_reward=0.5)
    with pytest.raises(ValueError, match="env param step_reward must be a finite float"):
        jaxgrid.check_make("FrozenLake-v1", step_reward=float("nan"))
    with pytest.raises(ValueError, match="unknown override"):
        jaxgrid.check_make("Maze-9x9-v0", max_step=3)


# ------------------------------------------------------------------------------------------------
# trace-time shape and layout checks (item 7)


@pytest.mark.parametrize("env_id", ["GridWorld-4x4-v0", "Maze-9x9-v0"])
def test_step__batched_action_or_state_without_vmap_is_refused_when_traced(env_id):
    env, params = make(env_id)
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    with pytest.raises(ValueError, match=r"action has shape \(2,\).*jax.vmap\(env.step\)"):
        env.step(key, state, jnp.array([0, 1]), params)
    batch = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    with pytest.raises(ValueError, match=r"state.time has shape \(2,\)"):
        env.step(key, batch, 0, params)
    # the batched step works, one env per row
    keys = jax.random.split(key, 2)
    out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, batch, jnp.array([0, 1]), params)
    assert out[1].pos.shape == (2,)


def test_step__params_of_another_layout_size_are_refused_when_traced():
    env, _ = jaxgrid.make("FrozenLake-v1", is_slippery=False)
    _, big = jaxgrid.make("FrozenLake8x8-v1", is_slippery=False)
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, env.default_params)
    with pytest.raises(ValueError, match=r"params.next_cell has shape \(64, 4\) but FrozenLake-v1 \(4x4.*\(16, 4\)"):
        env.step(key, state, 0, big)
    with pytest.raises(ValueError, match="another layout size"):
        env.reset(key, big)
    with pytest.raises(ValueError, match="another layout size"):
        jaxgrid.validate_params(env, big)
    # a slippery env's params on a deterministic env would silently drop the slip: refused
    _, slippery = jaxgrid.make("FrozenLake-v1")
    with pytest.raises(ValueError, match="not slippery, but these params carry slip_prob"):
        env.step(key, state, 0, slippery)
    with pytest.raises(ValueError, match="is slippery and needs SlipperyGridParams"):
        jaxgrid.make("FrozenLake-v1")[0].step(key, state, 0, env.default_params)
    with pytest.raises(ValueError, match="needs GridParams params"):
        env.step(key, state, 0, EnvParams())


def test_step__a_non_scalar_knob_is_refused_when_traced():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    batch = params.replace(step_reward=[1.0, 2.0])  # a batch, meant for vmap over params
    assert batch.step_reward.shape == (2,)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    with pytest.raises(ValueError, match=r"params.step_reward has shape \(2,\).*vmap over them"):
        env.step(jax.random.PRNGKey(0), state, 0, batch)
    axes = jax.tree.map(lambda _: None, params).replace(step_reward=0)
    rewards = jax.vmap(env.step, in_axes=(None, None, None, axes))(jax.random.PRNGKey(0), state, 1, batch)[2]
    np.testing.assert_allclose(rewards, [1.0, 2.0])


# ------------------------------------------------------------------------------------------------
# out-of-range actions: clipped, or refused with debug=True (item 8)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float32])
def test_step__out_of_range_actions_are_clipped_as_documented(dtype):
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    key = jax.random.PRNGKey(0)
    state = jaxgrid.GridState(time=jnp.int32(0), pos=jnp.int32(6))  # row 1, col 2: every move open
    cases = [(-1, 0), (4, 3), (100, 3), (-(2**20), 0)]
    if dtype == jnp.float32:
        cases += [(np.nan, 0), (np.inf, 3), (-np.inf, 0), (2.7, 2), (0.5, 0), (3.5, 3)]
    for bad, same in cases:
        got = env.step(key, state, jnp.asarray(bad, dtype), params)
        want = env.step(key, state, jnp.int32(same), params)
        chex.assert_trees_all_equal(got, want)


def test_debug__out_of_range_action_raises_and_valid_steps_are_unchanged():
    plain, params = jaxgrid.make("GridWorld-4x4-v0")
    env, _ = jaxgrid.make("GridWorld-4x4-v0", debug=True)
    assert env != plain and env.debug
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    for action in range(4):  # the checked step computes exactly the plain one
        chex.assert_trees_all_equal(env.step(key, state, action, params), plain.step(key, state, action, params))
    for bad in (4, -1, jnp.float32(np.nan), jnp.float32(1.5)):
        with pytest.raises(checkify.JaxRuntimeError, match=r"action .* is invalid; valid actions are the integers 0..3"):
            env.step(key, state, bad, params)


def test_debug__errors_reach_a_checkified_program_under_jit_and_vmap():
    env, params = jaxgrid.make("GridWorld-4x4-v0", debug=True)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    @jax.jit
    @checkify.checkify
    def batch_step(actions, step_reward):
        p = params.replace(step_reward=step_reward)  # a traced value: checked at run time
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, states, actions, p)

    err, _ = batch_step(jnp.array([0, 1, 2, 3]), -0.04)
    assert err.get() is None
    err, _ = batch_step(jnp.array([0, 1, 7, 3]), -0.04)
    assert "action 7 is invalid" in err.get()
    err, _ = batch_step(jnp.array([0, 1, 2, 3]), jnp.nan)
    assert "param step_reward=nan is invalid" in err.get()
    # without checkify around a jitted program, jax says to add it (at trace time)
    with pytest.raises(ValueError, match="checkify"):
        jax.jit(env.step)(keys[0], jax.tree.map(lambda x: x[0], states), 1, params)


# ------------------------------------------------------------------------------------------------
# equal envs share compiled programs (item 13)


def test_equal_envs__compare_and_hash_equal_and_step_compiles_once():
    traces = []
    original = jaxgrid.GridWorld.step_env

    def counting(self, *args):
        traces.append(self.env_id)
        return original(self, *args)

    jaxgrid.GridWorld.step_env = counting
    try:
        envs = [jaxgrid.make("GridWorld-4x4-v0")[0] for _ in range(30)]
        key = jax.random.PRNGKey(0)
        for env in envs:
            _, state = env.reset(key)
            env.step(key, state, 1)
    finally:
        jaxgrid.GridWorld.step_env = original
    assert len(set(envs)) == 1 and all(e == envs[0] for e in envs)
    assert traces == ["GridWorld-4x4-v0"], traces  # one trace for 30 envs


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_equal_envs__every_id_built_twice_is_equal(env_id):
    a, b = make(env_id)[0], make(env_id)[0]
    assert a == b and hash(a) == hash(b)


def test_equal_envs__any_static_difference_makes_them_unequal():
    base = jaxgrid.make("GridWorld-4x4-v0")[0]
    others = [
        jaxgrid.make("GridWorld-4x4-v0", obs="onehot")[0],
        jaxgrid.make("GridWorld-4x4-v0", step_reward=-0.05)[0],  # default params are compiled in
        jaxgrid.make("GridWorld-4x4-v0", slip_prob=0.0)[0],
        jaxgrid.make("GridWorld-4x4-v0", debug=True)[0],
        jaxgrid.make("GridWorld-v0", layout="S...\n....\n....\n...G")[0],
    ]
    for other in others:
        assert other != base
    assert jaxgrid.make("Maze-v0", size=7)[0] != jaxgrid.make("Maze-v0", size=9)[0]
    assert jaxgrid.make("Maze-v0", size=9)[0] == jaxgrid.make("Maze-v0", size=9)[0]


# ------------------------------------------------------------------------------------------------
# params_for_layout keeps the env's defaults (issue 12, item 5)


def test_params_for_layout__keeps_frozen_lake_defaults():
    env, params = jaxgrid.make("FrozenLake-v1")
    layout = jaxgrid.Layout.from_text("SLLL\n....\n.LL.\n...G")
    other = env.params_for_layout(layout)
    assert float(other.step_reward) == 0.0 and float(other.lava_reward) == 0.0
    assert int(other.max_steps_in_episode) == 100
    assert np.isclose(float(other.slip_prob), 2 / 3)
    for name in env.param_names:
        chex.assert_trees_all_equal(getattr(other, name), getattr(params, name))
    assert float(env.params_for_layout(layout, step_reward=-1.0).step_reward) == -1.0
    assert not np.array_equal(np.asarray(other.cell_kind), np.asarray(params.cell_kind))
