"""The rollout steps through jaxgrid.VecEnv: a procedural env trains bitwise as with vmap(env.step)."""

import jax
import numpy as np
import pytest

import jaxgrid
from train import PPOConfig, rollout, train
from train import trainer


@pytest.mark.timeout(300)
def test_train__compacted_resets_give_the_vmapped_step_results(monkeypatch):
    # Maze resets compacted (2 per round) in the trainer; forcing a reset for every env
    # (capacity = num_envs, i.e. vmap(env.step)) must not change a bit of the result.
    config = PPOConfig(
        env_id="Maze-9x9-v0", seeds=(0, 1), total_timesteps=2 * 16 * 32, num_envs=16, num_steps=32,
        num_eval_envs=2, env_kwargs={"max_steps_in_episode": 9},
    )
    assert isinstance(rollout.vec_env(rollout.describe_env(*jaxgrid.make("Maze-9x9-v0")), 16), jaxgrid.VecEnv)
    monkeypatch.setattr(rollout, "vec_env", lambda spec, n: jaxgrid.VecEnv(spec.env, n, reset_capacity=2))
    compacted = train(config)
    trainer._COMPILED.clear()
    monkeypatch.setattr(rollout, "vec_env", lambda spec, n: jaxgrid.VecEnv(spec.env, n, reset_capacity=n))
    dense = train(config)
    for a, b in zip(jax.tree.leaves(compacted.params), jax.tree.leaves(dense.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name in compacted.metrics:
        np.testing.assert_array_equal(compacted.metrics[name], dense.metrics[name], err_msg=name)
    assert np.nansum(compacted.metrics["episode_length"]) > 0
