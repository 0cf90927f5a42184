"""Seed sharding over host devices, and a stress test against executor deadlocks.

jaxlib 0.10.2 on a 2-core CPU has deadlocked when a batched LAPACK kernel ran inside a jitted,
vmapped program; the trainer avoids LAPACK entirely. These tests run the fused program many times
in one process, on one device and (in a subprocess that sets JAX_NUM_CPU_DEVICES=2 before jax
starts) on two, under a timeout, so a hang fails the test instead of stalling CI.
"""

import os
import textwrap

import jax
import numpy as np
import pytest

from tests.conftest import run_python
from train import PPOConfig, distributed, train
from train.placement import pad_seeds

TINY = dict(total_timesteps=512, num_envs=4, num_steps=32, num_eval_envs=2)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.timeout(120)
def test_stress__many_calls_on_one_device():
    config = PPOConfig(seeds=(0, 1, 2, 3), **TINY)
    first = train(config)
    for _ in range(25):
        again = train(config)
    np.testing.assert_array_equal(first.metrics["value_loss"], again.metrics["value_loss"])
    assert again.compile_seconds < 0.5  # the compiled program was reused, only run again


def test_pad_seeds():
    assert pad_seeds((0, 1, 2), 2) == (0, 1, 2, 3)
    assert pad_seeds((5, 9), 2) == (5, 9)
    assert pad_seeds((4,), 4) == (4, 5, 6, 7)


def test_seed_mesh_rejects_too_many_devices():
    with pytest.raises(ValueError, match="device"):
        distributed.seed_mesh(len(jax.devices()) + 1)


_TWO_DEVICE_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    assert len(jax.devices()) == 2, jax.devices()
    from train import PPOConfig, train
    tiny = dict(total_timesteps=512, num_envs=4, num_steps=32, num_eval_envs=2)
    config = PPOConfig(seeds=(0, 1, 2, 3), **tiny)
    one = train(config, num_devices=1)
    two = train(config, num_devices=2)
    # Seeds are independent and each is one unbatched program ("auto" is "map" on CPU), so
    # sharding them is exact: bitwise-equal training, every logged metric included.
    for name in one.metrics:
        np.testing.assert_array_equal(two.metrics[name], one.metrics[name], err_msg=name)
    np.testing.assert_array_equal(two.eval_returns, one.eval_returns)
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(two.params)):
        np.testing.assert_array_equal(a, b)
    # 3 seeds over 2 devices: padded to 4 (seed 3), the padding dropped from the result.
    padded = train(PPOConfig(seeds=(0, 1, 2), **tiny), num_devices=2)
    assert padded.metrics["value_loss"].shape == (3, config.num_updates)
    np.testing.assert_array_equal(padded.metrics["value_loss"], one.metrics["value_loss"][:3])
    for _ in range(20):  # stress: the sharded program, many times in one process
        again = train(config, num_devices=2)
    np.testing.assert_array_equal(again.metrics["value_loss"], two.metrics["value_loss"])
    print("TWO_DEVICES_OK")
    """
)


@pytest.mark.timeout(240)
def test_two_host_devices__match_one_device_and_survive_stress():
    out = run_python(
        _TWO_DEVICE_SCRIPT,
        env={"JAX_NUM_CPU_DEVICES": "2", "PYTHONPATH": REPO, "XLA_FLAGS": ""},
        timeout=220,
    )
    assert "TWO_DEVICES_OK" in out
