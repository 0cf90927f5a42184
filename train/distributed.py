"""Devices and hosts: meshes over the seed or env axis, and the multi-host runtime.

Seeds are independent, so sharding them is embarrassingly parallel: XLA partitions the batched
program along the seed axis and no collective is needed. On CPU, one host device per core makes XLA
use every core (one CPU device runs a program's small ops on about one core). Splitting one agent's
envs over devices (``train.dataparallel``) does need collectives: ``lax.pmean`` of the gradients.

Many hosts: ``initialize`` wraps ``jax.distributed.initialize`` (jax's own runtime, started by
the user's launcher: Slurm, Kubernetes, ssh) with short timeouts; it must run before any other
jax call. Afterwards ``jax.devices()`` lists every process's devices and the meshes here span them.
"""

from __future__ import annotations

import os

import jax
from jax.sharding import NamedSharding, PartitionSpec

SEED_AXIS = "seeds"
ENV_AXIS = "envs"

# Environment variables read by ``initialize_from_env`` (the CLI flags' equivalents).
ENV_COORDINATOR = "JAXGRID_COORDINATOR"  # HOST:PORT of process 0
ENV_NUM_PROCESSES = "JAXGRID_NUM_PROCESSES"
ENV_PROCESS_ID = "JAXGRID_PROCESS_ID"
ENV_AUTO = "JAXGRID_DISTRIBUTED"  # "auto": jax's cluster auto-detection (Slurm, Kubernetes, ...)


def _mesh(num_devices: int | None, axis: str) -> jax.sharding.Mesh:
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"num_devices={n} is invalid: {len(devices)} device(s) available")
    # NOTE: Auto axes: jax 0.10 defaults to Explicit, which breaks vmap with mixed shardings.
    return jax.make_mesh((n,), (axis,), devices=devices[:n], axis_types=(jax.sharding.AxisType.Auto,))


def seed_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all by default), axis ``"seeds"``."""
    return _mesh(num_devices, SEED_AXIS)


def env_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all by default), axis ``"envs"``."""
    return _mesh(num_devices, ENV_AXIS)


def seed_sharding(mesh: jax.sharding.Mesh, axis: int) -> NamedSharding:
    """Shards array axis ``axis`` over the mesh; other axes are replicated."""
    spec = [None] * axis + [SEED_AXIS]
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Fully replicated over the mesh."""
    return NamedSharding(mesh, PartitionSpec())


# ------------------------------------------------------------------------------------------------
# Many hosts
def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_seconds: int = 30,
    heartbeat_seconds: int = 10,
) -> None:
    """Joins this process to a multi-process jax runtime; call before any other jax call.

    With all three arguments ``None`` jax auto-detects the cluster (Slurm, Open MPI, Kubernetes
    JobSet/Indexed Jobs, Cloud TPU); otherwise all three are needed. Every process must then run
    the same program on the same config. On CPU the processes talk over gloo.

    Args:
        coordinator_address: ``HOST:PORT`` of process 0 (which serves it).
        num_processes: number of processes in the job.
        process_id: this process's index in ``[0, num_processes)``.
        timeout_seconds: give up joining after this long (jax's default is 300 s); a broken setup
            (wrong address, a process missing) fails in seconds, not minutes.
        heartbeat_seconds: a process silent this long is declared dead (jax's default is 100 s).

    Raises:
        ValueError: only some of the three arguments were given, or they are inconsistent.
    """
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "multi-host training needs all of coordinator (HOST:PORT), num_processes and "
            f"process_id, or none of them (cluster auto-detection); got coordinator="
            f"{coordinator_address!r}, num_processes={num_processes!r}, process_id={process_id!r}"
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} is invalid: num_processes={num_processes}")
    # NOTE: CPU devices of different processes exchange collectives through gloo only when asked
    # to (without it a cross-process psum fails); GPUs use NCCL whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout_seconds,
        heartbeat_timeout_seconds=heartbeat_seconds,
        shutdown_timeout_seconds=timeout_seconds,
    )


def initialize_from_env(environ: dict[str, str] | None = None, timeout_seconds: int = 30) -> bool:
    """``initialize`` from ``JAXGRID_COORDINATOR``/``JAXGRID_NUM_PROCESSES``/``JAXGRID_PROCESS_ID``
    (or ``JAXGRID_DISTRIBUTED=auto`` for auto-detection). Returns whether it initialised."""
    env = os.environ if environ is None else environ
    if env.get(ENV_COORDINATOR):
        missing = [k for k in (ENV_NUM_PROCESSES, ENV_PROCESS_ID) if not env.get(k)]
        if missing:
            raise ValueError(f"{ENV_COORDINATOR} is set but {' and '.join(missing)} is not")
        initialize(
            env[ENV_COORDINATOR],
            int(env[ENV_NUM_PROCESSES]),
            int(env[ENV_PROCESS_ID]),
            timeout_seconds=timeout_seconds,
        )
        return True
    if env.get(ENV_AUTO, "").lower() == "auto":
        initialize(timeout_seconds=timeout_seconds)
        return True
    return False
