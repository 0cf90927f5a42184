"""Sharding the seed axis over devices (``jax.make_mesh`` + ``NamedSharding``; no pmap).

Seeds are independent, so sharding them is embarrassingly parallel: XLA partitions the vmapped
program along the seed axis and no collective is needed. On CPU, one host device per core makes XLA
use every core (one CPU device runs a program's small ops on about one core).
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec

SEED_AXIS = "seeds"


def seed_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all by default), axis ``"seeds"``."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"num_devices={n} is invalid: {len(devices)} device(s) available")
    return jax.make_mesh(
        (n,), (SEED_AXIS,), devices=devices[:n], axis_types=(jax.sharding.AxisType.Auto,)
    )


def pad_seeds(seeds: tuple[int, ...], num_devices: int) -> tuple[int, ...]:
    """Pads ``seeds`` with unused seeds up to a multiple of ``num_devices``.

    Padding seeds are trained and then dropped; they cannot change the real seeds' results.
    """
    extra = (-len(seeds)) % num_devices
    top = max(seeds) + 1
    return tuple(seeds) + tuple(range(top, top + extra))


def seed_sharding(mesh: jax.sharding.Mesh, axis: int) -> NamedSharding:
    """Shards array axis ``axis`` over the mesh; other axes are replicated."""
    spec = [None] * axis + [SEED_AXIS]
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Fully replicated over the mesh."""
    return NamedSharding(mesh, PartitionSpec())
