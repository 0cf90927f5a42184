"""The fused PPO trainer: learning, determinism, seed independence, sweeps, chunking, tracing."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import PPOConfig, train
from train import ppo
from train.placement import rng_config, seed_keys
from train.setup import make_setup
from train.types import METRIC_NAMES, make_hparams

# A short run: 4 updates of 8 envs x 32 steps.
TINY = dict(total_timesteps=1024, num_envs=8, num_steps=32, num_eval_envs=4)


@pytest.fixture(scope="module")
def default_result():
    return train(PPOConfig())


@pytest.mark.timeout(240)
def test_learning__default_config_solves_gridworld_on_every_seed(default_result):
    r = default_result
    assert r.config.env_id == "GridWorld-4x4-v0" and r.config.num_seeds == 8
    # Greedy return 0.8 = 5 x (-0.04) + 1.0: the optimal 6-step path, on every seed.
    np.testing.assert_allclose(r.eval_returns, 0.8, atol=1e-4)
    # The learning curve rises: late training returns beat early ones on every seed.
    ret = r.metrics["episode_return"]
    early, late = np.nanmean(ret[:, :5], axis=1), np.nanmean(ret[:, -5:], axis=1)
    assert np.all(late > early) and np.all(late > 0.75)


def test_result_shapes_and_timing(default_result):
    r = default_result
    S, U = 8, r.config.num_updates
    assert set(r.metrics) == set(METRIC_NAMES)
    for name, values in r.metrics.items():
        assert values.shape == (S, U), name
    np.testing.assert_array_equal(
        r.metrics["env_steps"][0], (np.arange(U) + 1) * r.config.batch_size
    )
    assert r.eval_returns.shape == (S,)
    assert all(x.shape[0] == S for x in jax.tree.leaves(r.params))
    assert r.compile_seconds > 0 and r.run_seconds > 0
    assert r.env_steps == S * U * r.config.batch_size
    assert r.env_steps_per_second == pytest.approx(r.env_steps / r.run_seconds)
    lr = r.metrics["learning_rate"][0]
    assert lr[0] == pytest.approx(r.config.learning_rate) and np.all(np.diff(lr) < 0)  # annealed
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"):
        assert np.all(np.isfinite(r.metrics[name])), name


def test_determinism__same_config_twice_is_identical():
    from train import trainer

    config = PPOConfig(seeds=(0, 1), **TINY)
    a = train(config)
    trainer._COMPILED.clear()  # force a fresh trace and compile
    b = train(config)
    chex.assert_trees_all_equal(a.metrics, b.metrics)
    chex.assert_trees_all_equal(a.params, b.params)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)


def test_seed_independence__seed_3_alone_matches_seed_3_among_eight():
    # Bitwise: on CPU every run is one unbatched program mapped over the runs
    # (seed_batching="auto" is "map"), so its neighbours cannot change how it is compiled.
    many = train(PPOConfig(seeds=tuple(range(8)), **TINY))
    alone = train(PPOConfig(seeds=(3,), **TINY))
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(many.metrics[name][3], alone.metrics[name][0], err_msg=name)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[:, 3:4], many.state), alone.state)
    np.testing.assert_array_equal(many.eval_returns[3], alone.eval_returns[0])
    # ...and different seeds really differ.
    assert not np.allclose(many.metrics["policy_loss"][2], many.metrics["policy_loss"][3])


def test_sweep__grid_axes_lead_and_points_differ():
    config = PPOConfig(
        seeds=(0, 1), sweep={"learning_rate": (1e-3, 1e-2), "ent_coef": (0.0, 0.05)}, **TINY
    )
    r = train(config)
    U = config.num_updates
    assert r.metrics["episode_return"].shape == (2, 2, 2, U)
    assert r.eval_returns.shape == (2, 2, 2)
    assert all(x.shape[:3] == (2, 2, 2) for x in jax.tree.leaves(r.params))
    lr = r.metrics["learning_rate"]
    assert lr[0, 0, 0, 0] == pytest.approx(1e-3) and lr[1, 1, 1, 0] == pytest.approx(1e-2)
    # the same seed under another hyperparameter follows another trajectory
    assert not np.allclose(r.metrics["policy_loss"][0, 0, 0], r.metrics["policy_loss"][1, 0, 0])
    # a sweep point equals the same setting run alone
    alone = train(PPOConfig(seeds=(0, 1), learning_rate=1e-2, ent_coef=0.05, **TINY))
    # ...and a config differing only in traced hyperparameter values reuses the compiled program
    again = train(PPOConfig(seeds=(0, 1), learning_rate=5e-3, **TINY))
    assert again.compile_seconds < 0.5 and not np.allclose(
        again.metrics["value_loss"], alone.metrics["value_loss"]
    )
    np.testing.assert_array_equal(r.metrics["value_loss"][1, 1], alone.metrics["value_loss"])


def test_chunked_updates_equal_one_call():
    config = PPOConfig(seeds=(0, 1), **TINY)
    trainer = ppo.make_train(config)
    keys, hparams = seed_keys(config.seeds), make_hparams(config)
    with rng_config():
        init = jax.jit(trainer.init)
        run = jax.jit(trainer.run_updates, static_argnums=2)
        state = init(keys)
        whole, m_whole = run(state, hparams, 4)
        half, m1 = run(state, hparams, 2)
        half, m2 = run(half, hparams, 2)
    chex.assert_trees_all_equal(whole, half)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(
            m_whole[name], np.concatenate([m1[name], m2[name]], axis=-1), err_msg=name
        )


def test_run_until__stops_when_every_seed_is_solved_and_trains_as_run_updates():
    config = PPOConfig(seeds=(0, 1, 2), total_timesteps=16 * 512)
    trainer = ppo.make_train(config)
    keys, hparams = seed_keys(config.seeds), make_hparams(config)
    with rng_config():
        state = jax.jit(trainer.init)(keys)
        until = jax.jit(trainer.run_until, static_argnums=(2, 3))
        run = jax.jit(trainer.run_updates, static_argnums=2)
        evaluate = jax.jit(trainer.evaluate)
        # An unreachable target runs every allowed update: the same training as run_updates.
        capped, done, returns = until(state, hparams, 3, 10.0)
        assert int(done) == 3
        chex.assert_trees_all_equal(capped, run(state, hparams, 3)[0])
        np.testing.assert_array_equal(returns, evaluate(capped))
        # The real target: stops at the first update after which every seed's greedy return is
        # optimal (0.8), and not one update later.
        solved, done, returns = until(state, hparams, config.num_updates, 0.79)
        done = int(done)
        assert 1 <= done < config.num_updates
        assert np.all(np.asarray(returns) >= 0.79)
        before = evaluate(run(state, hparams, done - 1)[0]) if done > 1 else np.zeros(3)
        assert not np.all(np.asarray(before) >= 0.79)
        chex.assert_trees_all_equal(solved, run(state, hparams, done)[0])


def test_update_step_traces_once():
    config = PPOConfig(seeds=(0,), **TINY)
    setup = make_setup(config)
    hp = jax.tree.map(lambda x: x[0], make_hparams(config))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(runner, hp):
        return ppo.update_step(runner, hp, setup)

    with rng_config():
        runner = jax.jit(lambda k: ppo.init_runner_state(k, setup))(jax.random.PRNGKey(0))
        for _ in range(3):
            runner, metrics = step(runner, hp)
        # new hyperparameter values are traced values: still no retrace
        runner, _ = step(runner, hp.replace(learning_rate=jnp.float32(1e-4)))
    assert int(runner.update_step) == 4
    assert np.isfinite(float(metrics.value_loss))


def test_gaussian_policy_on_pendulum_runs():
    r = train(PPOConfig(env_id="Pendulum-v1", seeds=(0,), **TINY))
    assert r.params["params"]["log_std"].shape == (1, 1)
    assert np.all(np.isfinite(r.metrics["value_loss"]))
    assert np.isfinite(r.eval_returns).all() and r.eval_returns[0] < 0  # Pendulum costs


@pytest.mark.parametrize("encoder, conv", [("auto", False), ("cnn", True)])
def test_image_observations__auto_is_dense_and_the_cnn_on_request(encoder, conv):
    r = train(PPOConfig(env_id="Breakout-MinAtar", seeds=(0,), encoder=encoder, **TINY))
    assert ("Conv_0" in r.params["params"]) == conv
    assert np.all(np.isfinite(r.metrics["policy_loss"]))


@pytest.mark.timeout(400)
def test_learning__cartpole_reaches_400():
    # ~35 s on a loaded 2-core CPU, so CI runs it (not marked slow).
    config = PPOConfig(
        env_id="CartPole-v1",
        seeds=(0, 1, 2, 3),
        total_timesteps=500_000,
        num_envs=4,
        num_steps=128,
        learning_rate=2.5e-4,
        clip_value_loss=True,
    )
    r = train(config)
    assert r.eval_returns.mean() > 400, r.eval_returns


def test_train_program_has_no_lapack_calls():
    # LAPACK kernels (QR, eigh, ...) inside jitted, vmapped programs deadlocked jaxlib 0.10.2 on
    # this CPU; the whole fused program must not contain any.
    config = PPOConfig(seeds=(0, 1), **TINY)
    trainer = ppo.make_train(config)
    with rng_config():
        hlo = jax.jit(trainer.train).lower(
            seed_keys(config.seeds), make_hparams(config)
        ).as_text()
    assert "while" in hlo  # the scans are there...
    assert "lapack" not in hlo.lower() and "custom_call" not in hlo.lower()  # ...and no LAPACK


def test_permutations_from_bits__valid_and_unbiased():
    bits = jax.random.bits(jax.random.PRNGKey(0), (4000, 8), jnp.uint32)
    perms = np.asarray(jax.jit(ppo.permutations_from_bits)(bits))
    np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(8), (4000, 1)))
    # every index lands in every position ~1/8 of the time
    freq = np.stack([(perms == i).mean(0) for i in range(8)])
    assert np.abs(freq - 1 / 8).max() < 0.03
    big_bits = jax.random.bits(jax.random.PRNGKey(2), (1, 2**17), jnp.uint32)
    big = np.asarray(ppo.permutations_from_bits(big_bits))  # > 2^16 items: the argsort path
    np.testing.assert_array_equal(np.sort(big[0]), np.arange(2**17))


def test_uniform_from_bits__in_open_unit_interval():
    from train.networks import uniform_from_bits

    edge = uniform_from_bits(jnp.array([0, 2**32 - 1], jnp.uint32))
    assert 0.0 < float(edge[0]) < 1e-6 and float(edge[1]) < 1.0
    u = uniform_from_bits(jax.random.bits(jax.random.PRNGKey(1), (20000,), jnp.uint32))
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float(u.var()) - 1 / 12) < 0.005
