"""Seed batching (``PPOConfig.seed_batching``): ``lax.map`` over seeds vs ``vmap``.

``"map"`` runs the seeds (and sweep points) one after another inside the fused program (inside a
``shard_map`` when the seeds are sharded over devices); ``"auto"`` is ``"map"`` on CPU. It must
train every seed as ``"vmap"`` does (within float rounding: XLA compiles a batch of runs
differently), train a seed bitwise the same alone and among others and on one device and on two,
and keep chunked runs bitwise equal to one call.
"""

import os
import textwrap

import chex
import jax
import numpy as np
import pytest

from tests.conftest import run_python
from train import PPOConfig, ppo, train
from train.placement import resolve_seed_batching, rng_config, seed_keys
from train.types import METRIC_NAMES, make_hparams

# 4 updates of 4 envs x 32 steps; 2 minibatches.
TINY = dict(total_timesteps=512, num_envs=4, num_steps=32, num_minibatches=2, num_eval_envs=2)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOL = dict(rtol=1e-4, atol=1e-5)


def assert_runs_close(a, b, seeds_a=slice(None), **tol):
    """Metric curves and parameters of two results (``a``'s seeds ``seeds_a``) agree within ``tol``."""
    for name in METRIC_NAMES:
        np.testing.assert_allclose(a.metrics[name][seeds_a], b.metrics[name], err_msg=name, **tol)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[seeds_a], a.params), b.params, **tol)


@pytest.fixture(scope="module")
def mapped():
    return train(PPOConfig(seeds=(0, 1, 2), seed_batching="map", **TINY))


def test_config__seed_batching_validated_and_auto_resolves():
    with pytest.raises(ValueError, match="seed_batching"):
        PPOConfig(seed_batching="pmap")
    with pytest.raises(ValueError, match="seed_map_batch_size"):
        PPOConfig(seed_map_batch_size=0)
    auto = PPOConfig()
    assert auto.seed_batching == "auto"
    assert resolve_seed_batching(auto, "cpu") == "map"  # bitwise runs: see resolve_seed_batching
    assert resolve_seed_batching(auto, "gpu") == "vmap"
    assert resolve_seed_batching(auto.replace(seed_batching="map"), "cpu") == "map"


@pytest.mark.timeout(120)
def test_map__matches_vmap_per_seed(mapped):
    vmapped = train(PPOConfig(seeds=(0, 1, 2), seed_batching="vmap", **TINY))
    assert_runs_close(mapped, vmapped, **TOL)
    np.testing.assert_allclose(mapped.eval_returns, vmapped.eval_returns, **TOL)
    # ...and the seeds really differ.
    assert not np.allclose(mapped.metrics["policy_loss"][0], mapped.metrics["policy_loss"][1])


@pytest.mark.timeout(120)
def test_map__seed_independent_and_deterministic(mapped):
    # Bitwise: every run, initialisation included, is one unbatched program mapped over the runs.
    alone = train(PPOConfig(seeds=(2,), seed_batching="map", **TINY))
    assert_runs_close(mapped, alone, seeds_a=slice(2, 3), rtol=0, atol=0)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[:, 2:], mapped.state), alone.state)
    again = train(PPOConfig(seeds=(0, 1, 2), seed_batching="map", **TINY))  # cached program
    chex.assert_trees_all_equal(again.metrics, mapped.metrics)


@pytest.mark.timeout(120)
def test_map__chunked_equals_one_call_and_progress_reports():
    config = PPOConfig(seeds=(0, 1), seed_batching="map", seed_map_batch_size=2, **TINY)
    calls = []
    trainer = ppo.make_train(
        config, progress=lambda i, steps, ret: calls.append((int(i), np.asarray(ret).shape)),
        progress_every=2,
    )
    keys, hparams = seed_keys(config.seeds), make_hparams(config)
    with rng_config():
        state = jax.jit(trainer.init)(keys)
        run = jax.jit(trainer.run_updates, static_argnums=2)
        whole, m_whole = run(state, hparams, 4)
        half, m1 = run(state, hparams, 2)
        half, m2 = run(half, hparams, 2)
        jax.block_until_ready((whole, half))
    chex.assert_trees_all_equal(whole, half)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(
            m_whole[name], np.concatenate([m1[name], m2[name]], axis=-1), err_msg=name
        )
    jax.effects_barrier()
    assert sorted(calls)[:2] == [(0, (1, 2)), (0, (1, 2))] and (3, (1, 2)) in calls


_TWO_DEVICE_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    assert len(jax.devices()) == 2, jax.devices()
    from train import PPOConfig, train
    tiny = dict(total_timesteps=512, num_envs=4, num_steps=32, num_minibatches=2, num_eval_envs=2)
    config = PPOConfig(seeds=(0, 1, 2, 3), seed_batching="map", **tiny)
    one = train(config, num_devices=1)
    calls = []
    two = train(config, num_devices=2, progress=lambda i, s, r: calls.append(int(i)))
    jax.effects_barrier()
    assert calls and max(calls) == config.num_updates - 1, calls
    for name in one.metrics:  # bitwise: each device maps the same one-run program
        np.testing.assert_array_equal(two.metrics[name], one.metrics[name], err_msg=name)
    for a, b in zip(jax.tree.leaves(one.state), jax.tree.leaves(two.state)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(two.eval_returns, one.eval_returns)
    print("TWO_DEVICES_OK")
    """
)


@pytest.mark.timeout(240)
def test_map__two_host_devices_match_one_device():
    out = run_python(
        _TWO_DEVICE_SCRIPT,
        env={"JAX_NUM_CPU_DEVICES": "2", "PYTHONPATH": REPO, "XLA_FLAGS": ""},
        timeout=220,
    )
    assert "TWO_DEVICES_OK" in out
