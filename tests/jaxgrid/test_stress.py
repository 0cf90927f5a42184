"""Never hang: the jitted, vmapped, scan-heavy env program called many times in one process,
on one and on several host devices (a subprocess, so JAX_NUM_CPU_DEVICES reaches jax first)."""

import pytest

from tests.conftest import run_python

PROGRAM = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxgrid

env, params = jaxgrid.make("GridWorld-4x4-v0")
n_dev = len(jax.devices())
mesh = jax.make_mesh((n_dev,), ("envs",), axis_types=(jax.sharding.AxisType.Auto,))
sharding = NamedSharding(mesh, P("envs"))

@jax.jit
def run(keys):
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    def body(carry, t):
        state, total = carry
        step_keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
        actions = jax.vmap(lambda k: jax.random.randint(k, (), 0, 4))(step_keys)
        obs, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(step_keys, state, actions, params)
        return (state, total + reward), None
    (state, total), _ = jax.lax.scan(body, (state, jnp.zeros(keys.shape[0])), jnp.arange(200))
    return total

keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), 64 * n_dev), sharding)
first = np.asarray(run(keys))
for i in range(20):
    again = run(keys)
    again.block_until_ready()
np.testing.assert_array_equal(first, np.asarray(again))
print("devices", n_dev, "ok", float(first.mean()))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("num_devices", [1, 2, 4])
def test_env_scan_many_calls_never_hangs(num_devices):
    out = run_python(PROGRAM, env={"JAX_NUM_CPU_DEVICES": str(num_devices)}, timeout=100)
    assert f"devices {num_devices} ok" in out
