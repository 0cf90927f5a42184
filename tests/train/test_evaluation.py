"""Honest evaluation: a bounded horizon on envs without a time limit, enough episodes on stochastic
envs, success counted only at the goal, and the evaluation budget validated in PPOConfig."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from train.config import PPOConfig
from train.rollout import (
    SUCCESS_CI_EPISODES,
    describe_env,
    evaluate_greedy,
    evaluation_budget,
    run_eval_episodes,
)

pytestmark = pytest.mark.timeout(300)


def fixed_policy(actions: np.ndarray, num_actions: int = 4):
    """apply_fn whose greedy action in cell ``i`` is ``actions[i]`` (obs = the cell index)."""
    table = jnp.asarray(actions, jnp.int32)

    def apply(params, obs):
        logits = 10.0 * jax.nn.one_hot(table[obs.reshape(-1)], num_actions)
        return logits, jnp.zeros(obs.shape[:1])

    return apply


def test_budget__success_ci_episodes_bound_the_half_width():
    assert 1.96 * math.sqrt(0.25 / SUCCESS_CI_EPISODES) <= 0.03
    assert 1.96 * math.sqrt(0.25 / (SUCCESS_CI_EPISODES - 1)) > 0.03  # the smallest such count


@pytest.mark.parametrize(
    "env_id, episodes, max_steps",
    [
        ("GridWorld-4x4-v0", 16, 50),  # deterministic: one greedy episode is every episode
        ("CliffWalking-v1", 16, 1000),  # no time limit (2**31 - 1): capped at 1000
        ("FrozenLake-v1", SUCCESS_CI_EPISODES, 100),  # slippery
        ("Maze-9x9-v0", SUCCESS_CI_EPISODES, 162),  # a new layout per episode
    ],
)
def test_budget__defaults_per_env(env_id, episodes, max_steps):
    config = PPOConfig(env_id=env_id)
    spec = describe_env(*jaxgrid.make(env_id))
    assert evaluation_budget(config, spec) == (episodes, max_steps)
    assert evaluation_budget(config.replace(eval_episodes=5, eval_max_steps=7), spec) == (5, 7)


@pytest.mark.parametrize("field", ["eval_episodes", "eval_max_steps"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "10"])
def test_config__eval_fields_validated(field, value):
    with pytest.raises(ValueError, match=field):
        PPOConfig(**{field: value})


def test_eval_episodes__step_cap_bounds_an_env_without_time_limit():
    env, params = jaxgrid.make("CliffWalking-v1")
    spec = describe_env(env, params)
    # always "left": the start is the bottom-left corner, so the agent never moves and never ends
    apply = fixed_policy(np.full(env.height * env.width, 3))
    out = run_eval_episodes(jax.random.PRNGKey(0), None, apply, spec, 4, max_steps=37)
    np.testing.assert_array_equal(out.returns, -37.0)
    np.testing.assert_array_equal(out.lengths, 37)
    np.testing.assert_array_equal(out.success, 0.0)
    # the default cap of an env without a time limit
    out = jax.jit(lambda k: run_eval_episodes(k, None, apply, spec, 2))(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(out.lengths, 1000)


def test_eval_episodes__optimal_cliff_path_scores_minus_13_and_succeeds():
    env, params = jaxgrid.make("CliffWalking-v1")
    spec = describe_env(env, params)
    actions = np.full(env.height * env.width, 1)  # right along row 2 ...
    actions[36] = 0  # start (3, 0): up
    actions[35] = 2  # (2, 11): down into the goal
    out = run_eval_episodes(jax.random.PRNGKey(0), None, fixed_policy(actions), spec, 3)
    np.testing.assert_array_equal(out.returns, -13.0)
    np.testing.assert_array_equal(out.lengths, 13)
    np.testing.assert_array_equal(out.success, 1.0)
    assert float(evaluate_greedy(jax.random.PRNGKey(0), None, fixed_policy(actions), spec, 3)) == -13.0


def test_eval_episodes__hole_is_not_a_success_and_rate_matches_optimum():
    env, params = jaxgrid.make("FrozenLake-v1")
    spec = describe_env(env, params)
    # "down" everywhere on the slippery lake: some episodes end in a hole (terminated, reward 0)
    out = run_eval_episodes(jax.random.PRNGKey(0), None, fixed_policy(np.full(16, 1)), spec, 512)
    ended = out.lengths < 100
    assert np.all(np.asarray(out.success) == np.asarray(out.returns))  # reward 1 only at the goal
    assert 0 < float(out.success.mean()) < 1 and bool(jnp.any(ended & (out.success == 0)))


def test_optimal_policy_evaluated_reaches_the_optimum():
    """The value-iteration policy of slippery FrozenLake, run through the evaluation loop, scores
    the optimum within the binomial error of its 1068 x 4 episodes."""
    from jaxgrid.optimal import tabulate

    env, params = jaxgrid.make("FrozenLake-v1", max_steps_in_episode=100)
    mdp = tabulate(env, params)
    # a stationary policy from the long-horizon values (the finite-horizon one differs only near
    # the time limit); its success over 100 steps is a little under the 0.744 optimum
    value = np.zeros(16)
    for _ in range(500):
        q = (mdp.prob * (mdp.reward + ~mdp.terminated * value[mdp.next_cell]))[0].sum(-1)
        value = q.max(-1)
    policy = q.argmax(-1)
    spec = describe_env(env, params)
    n = 4 * SUCCESS_CI_EPISODES
    out = run_eval_episodes(jax.random.PRNGKey(0), None, fixed_policy(policy), spec, n)
    optimum = jaxgrid.optimal_return(env, params).expected_return
    rate = float(out.success.mean())
    assert rate <= optimum + 3 * math.sqrt(0.25 / n)
    assert rate >= 0.95 * optimum - 3 * math.sqrt(0.25 / n)


def test_eval_episodes__memory_is_carried_through_an_episode_and_starts_fresh():
    """A policy with memory (``run_eval_episodes(memory=...)``): a step counter kept in the memory
    plays the 4x4 grid's optimal 6-step script (down, down, right, right, down, right). Without the
    carried memory it would repeat one action forever; the memory starts at 5, so the script is
    played from its start only if ``episode_start`` is True on the first step."""
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    spec = describe_env(env, params)
    script = jnp.asarray([2, 2, 1, 1, 2, 1, 0, 0], jnp.int32)

    def apply(params, obs, counter, episode_start):
        counter = jnp.where(episode_start, 0, counter)
        logits = 10.0 * jax.nn.one_hot(script[counter], 4)
        return logits, counter + 1

    n = 3
    episodes = jax.jit(lambda k: run_eval_episodes(
        k, None, apply, spec, n, memory=jnp.full((n,), 5, jnp.int32)
    ))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(episodes.returns), 0.8, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(episodes.lengths), 6)
    np.testing.assert_array_equal(np.asarray(episodes.success), 1.0)
    # The same memory, never reset (episode_start ignored), starts the script at its 6th action
    # (up, into the wall) and never reaches the goal within the 50-step limit.
    stuck = jax.jit(lambda k: run_eval_episodes(
        k, None, lambda p, o, c, s: apply(p, o, c, jnp.zeros_like(s)), spec, n,
        memory=jnp.full((n,), 6, jnp.int32), max_steps=10,
    ))(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(stuck.success), 0.0)
