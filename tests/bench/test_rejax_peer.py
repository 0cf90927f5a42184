"""bench/rejax_adapter.py (gymnax 1.x envs for rejax 0.1.3's 5-tuple step) and bench/rejax_peer.py.

The adapter's conversion is tested without rejax; the tests that run rejax's PPO need the optional
extra (``pip install -e '.[rejax]'``) and are skipped without it.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from rejax_adapter import DoneTupleEnv, to_done_tuple  # noqa: E402


def _cartpole():
    import gymnax

    return gymnax.make("CartPole-v1")


def test_to_done_tuple__done_is_terminated_or_truncated_and_the_rest_passes_through():
    env, params = _cartpole()
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, params)
    cases = {
        # (state, expected terminated, expected truncated)
        "running": (state, False, False),
        "time limit": (state.replace(time=params.max_steps_in_episode - 1), False, True),
        "pole fell": (state.replace(theta=jnp.float32(0.5)), True, False),
    }
    for name, (s, terminated, truncated) in cases.items():
        six = env.step(key, s, 1, params)
        obs, new_state, reward, done, info = to_done_tuple(six)
        assert (bool(six[3]), bool(six[4])) == (terminated, truncated), name
        assert bool(done) == (terminated or truncated), name
        assert done.dtype == jnp.bool_
        np.testing.assert_array_equal(obs, six[0])
        np.testing.assert_array_equal(reward, six[2])
        assert info is six[5] and bool(info["truncated"]) == truncated
        chex_equal = jax.tree.map(lambda a, b: np.array_equal(a, b), new_state, six[1])
        assert all(jax.tree.leaves(chex_equal)), name


def test_to_done_tuple__batched_and_rejects_other_shapes():
    terminated = jnp.array([True, False, False, True])
    truncated = jnp.array([False, True, False, True])
    out = to_done_tuple((0, 0, 0, terminated, truncated, {}))
    np.testing.assert_array_equal(out[3], [True, True, False, True])
    with pytest.raises(ValueError, match="6-tuple; got 5"):
        to_done_tuple((0, 0, 0, terminated, {}))
    with pytest.raises(ValueError, match="6-tuple; got list"):
        to_done_tuple([0, 0, 0, terminated, truncated, {}])


def test_done_tuple_env__jaxgrid_goal_and_time_limit_through_vmap_and_deepcopy():
    import jaxgrid

    env, params = jaxgrid.make("GridWorld-4x4-v0")
    wrapped = copy.deepcopy(DoneTupleEnv(env))  # rejax deep-copies its config, env included
    assert wrapped.action_space(params).n == 4 and wrapped.observation_space(params).n == 16
    assert wrapped.default_params is not None and "GridWorld" in repr(wrapped)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    obs, state = jax.vmap(wrapped.reset, in_axes=(0, None))(keys, params)
    # env 0 one step from the goal (cell 11, action down), env 1 at the time limit, env 2 neither.
    state = state.replace(
        pos=jnp.array([11, 0, 0], state.pos.dtype),
        time=jnp.array([0, 49, 0], state.time.dtype),
    )
    out = jax.jit(jax.vmap(wrapped.step, in_axes=(0, 0, 0, None)))(keys, state, jnp.array([2, 0, 0]), params)
    assert len(out) == 5
    np.testing.assert_array_equal(out[3], [True, True, False])
    np.testing.assert_array_equal(out[4]["terminated"], [True, False, False])
    np.testing.assert_array_equal(out[4]["truncated"], [False, True, False])
    np.testing.assert_allclose(out[2], [1.0, -0.04, -0.04])


@pytest.mark.timeout(600)
def test_rejax_ppo__same_hyperparameters_trains_through_the_adapter():
    pytest.importorskip("rejax")
    import rejax_peer

    hp = dict(rejax_peer.TASKS["GridWorld-4x4-v0"], num_envs=4, num_steps=8, num_minibatches=2,
              total_timesteps=4 * 8 * 2, hidden_sizes=(8,))
    algo = rejax_peer.rejax_algo("GridWorld-4x4-v0", hp)
    config = rejax_peer.jaxgrid_config("GridWorld-4x4-v0", (0, 1), hp)
    # The shared hyperparameters arrive in both trainers under their own names.
    assert (algo.num_envs, algo.num_steps, algo.num_epochs, algo.num_minibatches) == (
        config.num_envs, config.num_steps, config.update_epochs, config.num_minibatches)
    for name in ("learning_rate", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm"):
        assert float(getattr(algo, name)) == pytest.approx(getattr(config, name)), name
    assert not config.anneal_lr and config.clip_value_loss
    assert isinstance(algo.env, DoneTupleEnv)

    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    ts = jax.jit(jax.vmap(algo.init_state))(keys)
    trained = jax.jit(jax.vmap(lambda t: jax.lax.fori_loop(0, config.num_updates, lambda _, x: algo.train_iteration(x), t)))(ts)
    before, after = jax.tree.leaves(ts.actor_ts.params), jax.tree.leaves(trained.actor_ts.params)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))  # it trained
    env, env_params = rejax_peer.rejax_env("GridWorld-4x4-v0")
    returns = rejax_peer.evaluate_seeds(rejax_peer.rejax_logits_fn(algo), trained.actor_ts.params,
                                        env.env, env_params, episodes=3)
    for name in ("greedy_return", "sampled_return"):
        assert len(returns[name]) == 2
        # A GridWorld-4x4 return lies between 50 steps of -0.04 and reaching the goal at once.
        assert all(-2.0 - 1e-6 <= r <= 1.0 + 1e-6 for r in returns[name]), returns


def test_ratios__against_the_faster_rejax_batching_with_the_issue_targets():
    import rejax_peer

    def row(mode, trainer, rate, cpu_rate):
        return {"task": "CartPole-v1", "mode": mode, "trainer": trainer, "steps_per_s": rate,
                "steps_per_cpu_s": cpu_rate, "greedy_return": [500.0, 400.0], "sampled_return": [300.0, 200.0]}

    rows = [row("one_core", "jaxgrid", 300.0, 329.99), row("one_core", "rejax (vmap)", 150.0, 200.0),
            row("one_core", "rejax (lax.map)", 180.0, 220.0), row("all_cores", "jaxgrid", 570.0, 300.0),
            row("all_cores", "rejax (vmap)", 200.0, 200.0), row("all_cores", "rejax (lax.map)", 180.0, 210.0),
            row("all_cores", rejax_peer.ONE_DEVICE, 189.0, 250.0)]
    got = {r["mode"]: r for r in rejax_peer.ratios(rows)}
    one = got["one_core"]
    assert one["against"] == "rejax (lax.map)" and one["ratio"] == pytest.approx(300 / 180)
    # The one-core target is judged in CPU time (329.99 / 220 < 1.5), not wall time (300 / 180 > 1.5).
    assert one["cpu_time_ratio"] == pytest.approx(329.99 / 220) and one["target"] == 1.5 and not one["met"]
    # All cores: against rejax's fastest wall clock (sharded vmap 200 > one device 189 > lax.map 180),
    # judged in wall time: 570 / 200 < 3 (CPU time would say 300 / 200, against the one device 300 / 250).
    every = got["all_cores"]
    assert every["against"] == "rejax (vmap)" and every["ratio"] == pytest.approx(570 / 200)
    assert every["target"] == 3.0 and not every["met"]
    rows[-1] = row("all_cores", rejax_peer.ONE_DEVICE, 150.0, 250.0)  # slower as it runs: vmap sharded
    rows[-3] = row("all_cores", "rejax (vmap)", 180.0, 200.0)
    every = {r["mode"]: r for r in rejax_peer.ratios(rows)}["all_cores"]
    assert every["ratio"] == pytest.approx(570 / 180) and every["met"]
    vs_one = got["all_cores_vs_rejax_one_core"]  # against rejax pinned to one core: no target
    assert vs_one["ratio"] == pytest.approx(570 / 180) and vs_one["target"] is None
    assert one["jaxgrid_greedy_return"] == 450.0 and one["rejax_sampled_return"] == 250.0
