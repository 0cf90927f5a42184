"""GridWorld-4x4-v0 against the lesson's rules: a plain-Python reference, properties, jit/vmap,
gymnax wrappers, and the registry's errors."""

from __future__ import annotations

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.wrappers import purerl
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgrid
from tests.jaxgrid.reference import MAX_STEPS, WALL, Reference4x4

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
OPTIMAL_ROUTE = (RIGHT, RIGHT, DOWN, DOWN, DOWN, RIGHT)


@pytest.fixture(scope="module")
def env_params():
    return jaxgrid.make("GridWorld-4x4-v0")


def random_actions(seed: int, length: int) -> np.ndarray:
    """Actions biased towards the goal half the time, uniform otherwise, so a long sequence hits the
    goal, the wall, the edges and the time limit."""
    rng = np.random.default_rng(seed)
    biased = rng.choice(4, size=length, p=[0.1, 0.4, 0.4, 0.1])
    uniform = rng.integers(0, 4, size=length)
    phase = (np.arange(length) // 120) % 2 == 0
    return np.where(phase, biased, uniform).astype(np.int32)


def rollout(env, params, actions: jax.Array, key: jax.Array):
    """Scans ``env.step`` over ``actions`` [T] from a reset; returns per-step outputs."""
    obs0, state0 = env.reset(key, params)

    def body(state, inp):
        action, key_step = inp
        obs, state, reward, terminated, truncated, info = env.step(key_step, state, action, params)
        return state, (obs, reward, terminated, truncated, info["final_observation"], state.pos)

    keys = jax.random.split(key, actions.shape[0])
    return obs0, jax.lax.scan(body, state0, (actions, keys))[1]


def test_spaces_and_dtypes(env_params):
    env, params = env_params
    assert env.observation_space(params).n == 16
    assert env.action_space(params).n == 4
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.dtype == jnp.int32 and int(obs) == 0
    obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(1), state, 1, params)
    assert obs.dtype == jnp.int32
    assert reward.dtype == jnp.float32
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert isinstance(env, gymnax.environments.environment.Environment)
    assert env.observation_space(params).contains(obs)


def test_step__optimal_route_returns_0_8_and_terminates(env_params):
    env, params = env_params
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    total, flags = 0.0, []
    for action in OPTIMAL_ROUTE:
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        total += float(reward)
        flags.append((bool(terminated), bool(truncated)))
    # 5 x (-0.04) + 1.0 = 0.8
    assert total == pytest.approx(0.8, abs=1e-6)
    assert flags[-1] == (True, False)
    assert all(f == (False, False) for f in flags[:-1])
    assert int(info["final_observation"]) == 15
    assert int(obs) == 0 and int(state.pos) == 0 and int(state.time) == 0  # auto-reset


def test_step__wall_bump_leaves_agent_in_place(env_params):
    env, params = env_params
    key = jax.random.PRNGKey(0)
    # cell 4 is (1, 0); moving right would enter the wall at cell 5
    state = jaxgrid.GridState(time=jnp.int32(3), pos=jnp.int32(4))
    obs, state, reward, terminated, truncated, _ = env.step(key, state, RIGHT, params)
    assert int(obs) == 4 and int(state.pos) == 4
    assert float(reward) == pytest.approx(-0.04)
    assert int(state.time) == 4
    # from cell 1 (0, 1) moving down hits the wall too; from 0, up and left hit the edges
    for pos, action in [(1, DOWN), (6, LEFT), (9, UP), (0, UP), (0, LEFT), (15 - 4, RIGHT)]:
        start = jaxgrid.GridState(time=jnp.int32(0), pos=jnp.int32(pos))
        _, nxt, *_ = env.step(key, start, action, params)
        assert int(nxt.pos) == pos, (pos, action)


def test_step__50th_step_truncates_and_does_not_terminate(env_params):
    env, params = env_params
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    for t in range(1, MAX_STEPS + 1):
        obs, state, reward, terminated, truncated, info = env.step(key, state, UP, params)
        assert not bool(terminated)
        assert bool(truncated) == (t == MAX_STEPS), t
    assert int(info["final_observation"]) == 0 and int(state.time) == 0


def test_step__goal_on_last_allowed_step_is_terminated_not_truncated(env_params):
    env, params = env_params
    state = jaxgrid.GridState(time=jnp.int32(MAX_STEPS - 1), pos=jnp.int32(14))
    _, _, reward, terminated, truncated, _ = env.step(jax.random.PRNGKey(0), state, RIGHT, params)
    assert bool(terminated) and not bool(truncated)
    assert float(reward) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step__matches_reference_single_env(env_params, seed):
    env, params = env_params
    actions = random_actions(seed, 600)
    obs0, (obs, rew, term, trunc, final, _) = rollout(env, params, jnp.asarray(actions), jax.random.PRNGKey(seed))
    ref = Reference4x4()
    assert int(obs0) == ref.reset()
    seen = {"goal": 0, "trunc": 0, "wall": 0}
    for t, a in enumerate(actions):
        before = ref.pos
        r_obs, r_rew, r_term, r_trunc, r_final = ref.step(int(a))
        assert int(obs[t]) == r_obs, t
        assert float(rew[t]) == pytest.approx(r_rew), t
        assert bool(term[t]) == r_term and bool(trunc[t]) == r_trunc, t
        assert int(final[t]) == r_final, t
        seen["goal"] += r_term
        seen["trunc"] += r_trunc
        seen["wall"] += before in (1, 4, 6, 9) and r_final == before
    # the sequence exercised the goal, the time limit and a wall bump
    assert all(v > 0 for v in seen.values()), seen


def test_step__vmap_matches_reference_per_env(env_params):
    env, params = env_params
    num_envs, steps = 24, 300
    actions = np.stack([random_actions(100 + i, steps) for i in range(num_envs)], axis=1)  # [T, N]
    keys = jax.random.split(jax.random.PRNGKey(7), num_envs)

    def run(actions_n, key):
        return rollout(env, params, actions_n, key)

    _, (obs, rew, term, trunc, final, _) = jax.jit(jax.vmap(run, in_axes=(1, 0)))(jnp.asarray(actions), keys)
    for i in range(num_envs):
        ref = Reference4x4()
        for t in range(steps):
            r_obs, r_rew, r_term, r_trunc, r_final = ref.step(int(actions[t, i]))
            assert (int(obs[i, t]), bool(term[i, t]), bool(trunc[i, t]), int(final[i, t])) == (
                r_obs, r_term, r_trunc, r_final
            ), (i, t)
            assert float(rew[i, t]) == pytest.approx(r_rew)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=160))
def test_properties__free_cell_time_limit_and_rewards(actions):
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    padded = np.zeros(160, np.int32)
    padded[: len(actions)] = actions
    _, (obs, rew, term, trunc, final, pos) = _jit_rollout(env, params, jnp.asarray(padded))
    n = len(actions)
    obs, rew, term, trunc, final, pos = (np.asarray(x)[:n] for x in (obs, rew, term, trunc, final, pos))
    assert not np.any(pos == WALL) and not np.any(final == WALL)
    assert np.all((0 <= pos) & (pos < 16))
    assert np.all(np.isclose(rew, -0.04) | (rew == 1.0))
    assert np.all((rew == 1.0) == term)
    assert not np.any(term & trunc)
    # no episode is longer than the time limit
    length = 0
    for t in range(n):
        length += 1
        assert length <= MAX_STEPS
        if term[t] or trunc[t]:
            assert trunc[t] == (length == MAX_STEPS and not term[t])
            length = 0


_ROLLOUT_CACHE: dict = {}


def _jit_rollout(env, params, actions):
    if "f" not in _ROLLOUT_CACHE:
        _ROLLOUT_CACHE["f"] = jax.jit(lambda p, a: rollout(env, p, a, jax.random.PRNGKey(0)))
    return _ROLLOUT_CACHE["f"](params, actions)


def test_jit_and_eager_agree(env_params):
    env, params = env_params
    actions = jnp.asarray(random_actions(5, 120))
    jitted = jax.jit(lambda a: rollout(env, params, a, jax.random.PRNGKey(3)))(actions)
    with jax.disable_jit():
        eager = rollout(env, params, actions, jax.random.PRNGKey(3))
    chex.assert_trees_all_close(jitted, eager)


def test_vmap_agrees_with_python_loop(env_params):
    env, params = env_params
    keys = jax.random.split(jax.random.PRNGKey(11), 6)
    actions = jnp.asarray(np.stack([random_actions(i, 80) for i in range(6)]))
    batched = jax.vmap(lambda a, k: rollout(env, params, a, k))(actions, keys)
    for i in range(6):
        single = rollout(env, params, actions[i], keys[i])
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], batched), single)


def test_same_key_gives_identical_trees(env_params):
    env, params = env_params
    actions = jnp.asarray(random_actions(9, 100))
    a = rollout(env, params, actions, jax.random.PRNGKey(42))
    b = rollout(env, params, actions, jax.random.PRNGKey(42))
    chex.assert_trees_all_equal(a, b)


def test_step_compiles_once_per_shape(env_params):
    env, params = env_params

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, action, params):
        return env.step(key, state, action, params)

    _, state = env.reset(jax.random.PRNGKey(0), params)
    for i in range(5):
        _, state, *_ = step(jax.random.PRNGKey(i), state, jnp.int32(i % 4), params)
    # new traced values (a different reward, time limit) do not retrace either
    step(jax.random.PRNGKey(9), state, jnp.int32(1), params.replace(step_reward=jnp.float32(-1.0)))


def test_params_are_traced_and_vmappable(env_params):
    env, params = env_params
    rewards = jnp.array([-0.04, -1.0, 0.0], jnp.float32)
    batch = jax.vmap(lambda r: params.replace(step_reward=r))(rewards)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    out = jax.vmap(lambda p: env.step(jax.random.PRNGKey(0), state, UP, p))(batch)
    np.testing.assert_allclose(out[2], rewards)
    short = params.replace(max_steps_in_episode=jnp.int32(1))
    *_, truncated, _ = env.step(jax.random.PRNGKey(0), state, UP, short)
    assert bool(truncated)


def test_make_overrides(env_params):
    env, params = jaxgrid.make("GridWorld-4x4-v0", max_steps_in_episode=10, step_reward=-1.0)
    assert int(params.max_steps_in_episode) == 10 and float(params.step_reward) == -1.0
    with pytest.raises(ValueError, match="unknown override.*'max_step'.*valid: obs"):
        jaxgrid.make("GridWorld-4x4-v0", max_step=10)
    with pytest.raises(ValueError, match="max_steps_in_episode must be >= 1"):
        jaxgrid.make("GridWorld-4x4-v0", max_steps_in_episode=0)
    with pytest.raises(ValueError, match="unknown observation encoding 'pixels'; valid choices: index"):
        jaxgrid.make("GridWorld-4x4-v0", obs="pixels")
    # a deterministic env has no slip field to set and silently ignore
    with pytest.raises(ValueError):
        env_params[0].params_for_layout(env_params[0].layout, slip_prob=0.5)


def test_unknown_id_names_closest_and_lists_all():
    with pytest.raises(ValueError) as err:
        jaxgrid.make("GridWorld-4x4-v1")
    message = str(err.value)
    assert "unknown env id 'GridWorld-4x4-v1'" in message
    assert "Did you mean 'GridWorld-4x4-v0'" in message
    for env_id in jaxgrid.registered_ids():
        assert env_id in message


def test_gymnax_log_wrapper_reports_episode_returns(env_params):
    env, params = env_params
    wrapped = purerl.LogWrapper(env)
    key = jax.random.PRNGKey(0)
    _, state = wrapped.reset(key, params)
    # one optimal episode (0.8) then one that walks into the top edge until truncation (50 x -0.04)
    actions = list(OPTIMAL_ROUTE) + [UP] * MAX_STEPS
    returns = []
    for a in actions:
        _, state, _, _, _, info = wrapped.step(key, state, a, params)
        if bool(info["returned_episode"]):
            returns.append((float(info["returned_episode_returns"]), int(info["returned_episode_lengths"])))
    assert returns[0][0] == pytest.approx(0.8, abs=1e-5) and returns[0][1] == 6
    assert returns[1][0] == pytest.approx(-2.0, abs=1e-4) and returns[1][1] == MAX_STEPS


def test_gymnax_flatten_and_gym_wrappers(env_params):
    env, params = jaxgrid.make("GridWorld-4x4-v0", obs="coords")
    flat = purerl.FlattenObservationWrapper(env)
    obs, state = flat.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (2,)
    obs, *_ = flat.step(jax.random.PRNGKey(0), state, RIGHT, params)
    np.testing.assert_array_equal(obs, [0, 1])

    from gymnax.wrappers.gym import GymnaxToGymWrapper

    env, params = env_params
    gym_env = GymnaxToGymWrapper(env, params, seed=0)
    obs, _ = gym_env.reset(seed=0)
    assert int(obs) == 0
    total = 0.0
    for a in OPTIMAL_ROUTE:
        obs, reward, terminated, truncated, _ = gym_env.step(a)
        total += float(reward)
    assert bool(terminated) and not bool(truncated)
    assert total == pytest.approx(0.8, abs=1e-6)


def test_step__out_of_range_actions_are_clipped_not_read_out_of_bounds(env_params):
    env, params = env_params
    key = jax.random.PRNGKey(0)
    state = jaxgrid.GridState(time=jnp.int32(0), pos=jnp.int32(6))
    for bad, same in [(7, LEFT), (-3, UP), (2**30, LEFT)]:
        got = env.step(key, state, jnp.int32(bad), params)
        want = env.step(key, state, jnp.int32(same), params)
        chex.assert_trees_all_equal(got, want)
