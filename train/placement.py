"""Where a config's runs live and how they are batched: built once, used by every caller.

A config trains ``G x S`` runs (sweep grid points x seeds). ``Placement.build(config, num_devices,
env_parallel)`` decides, in one place, for ``train()``, run directories, evaluation and benchmarks:

- the device count (``resolve_num_devices``) and the 1-D mesh: over seeds (each device trains
  its own seeds; no collective) or, with ``env_parallel``, over every seed's envs
  (``train.dataparallel``);
- the padding seeds: the seed axis is padded to a multiple of the device count; padding runs
  are trained and dropped (``unpad``), and cannot change the real runs' results;
- how the runs are batched on a device (``lift``: one ``vmap`` over the ``G * S`` runs, or
  ``lax.map`` per ``PPOConfig.seed_batching``), and where inputs and outputs are placed
  (``keys``, ``hparams``, ``out_shardings``);
- ``compile``: jit, lower and compile a program under the trainer's PRNG setting.

Nothing here knows PPO: a run is any pytree whose leaves lead with ``[G, S]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from train import distributed
from train.config import PPOConfig
from train.types import HParams, RunnerState, make_hparams


def rng_config():
    """The PRNG setting every trainer program is traced and lowered under (a context manager).

    NOTE: ``jax_threefry_partitionable=True`` (jax's default) makes each random-number site ~3x
    slower to compile on XLA:CPU; seeds are vmapped and sharded on their own axis, so the
    partitionable variant buys nothing here. Lower/compile trainer functions inside this.
    """
    return jax.threefry_partitionable(False)


def seed_keys(seeds: tuple[int, ...]) -> jax.Array:
    """``[S]`` keys: seed k is ``jax.random.PRNGKey(k)``."""
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def resolve_num_devices(num_devices: int | None) -> int:
    """``num_devices``, or every device (``None``).

    Raises:
        ValueError: ``num_devices`` is not an int in ``[1, len(jax.devices())]``.
    """
    available = len(jax.devices())
    if num_devices is None:
        return available
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or not 1 <= num_devices <= available:
        raise ValueError(
            f"num_devices={num_devices!r} is invalid: must be None (all) or an int in [1, {available}] "
            f"({available} {jax.devices()[0].platform} device(s) available)"
        )
    return num_devices


def resolve_seed_batching(config: PPOConfig, platform: str, num_devices: int = 1) -> str:
    """``config.seed_batching`` with ``"auto"`` resolved: ``"map"`` on CPU, ``"vmap"`` elsewhere.

    ``"map"`` compiles one run once and maps it over the device's runs, so a run's arithmetic is
    the same whatever runs beside it and on any device count: bitwise-reproducible runs. A
    ``vmap`` over ``R`` runs lets XLA:CPU compile differently per ``R`` (measured on the default
    config: ``R`` = 1, 12 or 16 train seed 3 differently from ``R`` = 8 from the first update;
    ``R`` = 2..6 differ from 8 in the logged loss terms only). Speed on CPU (``bench/
    seed_batching.py``, 2 cores, 8 seeds): ``"map"`` ~5-10% faster on one device, ``vmap``
    ~10-20% faster with the seeds over 2 host devices. On GPU/TPU ``vmap`` is what fills the
    device. ``num_devices`` is where a device-count-dependent choice would go.
    """
    del num_devices
    if config.seed_batching != "auto":
        return config.seed_batching
    return "map" if platform == "cpu" else "vmap"


def check_env_parallel(config: PPOConfig, num_devices: int) -> None:
    """Raises ``ValueError`` unless ``num_devices`` divides the envs and the minibatch."""
    if config.num_envs % num_devices:
        raise ValueError(
            f"env-parallel training splits num_envs={config.num_envs} over {num_devices} devices: "
            "num_envs must be a multiple of the device count"
        )
    if config.minibatch_size % num_devices:
        raise ValueError(
            f"env-parallel training splits each minibatch of {config.minibatch_size} transitions "
            f"over {num_devices} devices: the minibatch size must be a multiple of the device count"
        )


def pad_seeds(seeds: tuple[int, ...], num_devices: int) -> tuple[int, ...]:
    """Pads ``seeds`` with unused seeds (above the largest) up to a multiple of ``num_devices``.

    Padding seeds are trained and then dropped; they cannot change the real seeds' results.
    """
    extra = (-len(seeds)) % num_devices
    top = max(seeds) + 1
    return tuple(seeds) + tuple(range(top, top + extra))


def unpad_seeds(tree: Any, num_real: int) -> Any:
    """Leaves ``[G, S_padded, ...]`` -> ``[G, num_real, ...]``: the padding seeds dropped."""
    return jax.tree.map(lambda x: x[:, :num_real], tree)


def flatten_runs(
    runner: Any, hparams: HParams | None
) -> tuple[Any, HParams | None, Callable[[jax.Array], jax.Array]]:
    """``[G, S]`` runs and ``[G]`` hparams -> ``G * S`` runs, their hparams, and the inverse
    (``[G * S, ...]`` -> ``[G, S, ...]``) for outputs.

    Runs are ordered seed-major (run ``s * G + g``), so a seed axis sharded over devices stays a
    contiguous block per device: no data moves.
    """
    G, S = jax.tree.leaves(runner)[0].shape[:2]
    runs = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape((S * G,) + x.shape[2:]), runner)
    hp = jax.tree.map(lambda h: jnp.tile(h, S), hparams)  # run s * G + g has hparams[g]

    def unflatten(x: jax.Array) -> jax.Array:
        return jnp.swapaxes(x.reshape((S, G) + x.shape[1:]), 0, 1)

    return runs, hp, unflatten


def batch_runs(fn: Callable[..., Any], mode: str, map_batch_size: int = 1) -> Callable[..., Any]:
    """Lifts ``fn(run, hparams)`` of one run to ``[G, S]`` runs and ``[G]`` hparams (``None``:
    then ``fn(run, None)``), on one device: ``"vmap"`` (one batched program) or ``"map"``
    (``lax.map`` over the ``G * S`` runs, ``map_batch_size`` of them vmapped per step).
    Returns ``(runs [G, S], hparams [G] | None) -> outputs with leaves [G, S, ...]``.
    """
    if mode not in ("vmap", "map"):
        raise ValueError(f"seed batching mode must be 'vmap' or 'map', got {mode!r}")

    def batched(runner: Any, hparams: HParams | None):
        runs, hp, unflatten = flatten_runs(runner, hparams)
        if mode == "vmap":
            # NOTE: one vmap over the G * S runs, not a vmap over G of a vmap over S: every scan
            # in the update is batched (re-traced) once instead of twice: shorter tracing.
            out = jax.vmap(fn, in_axes=(0, None if hparams is None else 0))(runs, hp)
        else:
            # NOTE: lax.map(batch_size=1) would vmap each run with a batch of 1; None maps
            # plainly. A batch size not dividing G * S traces the run a second time (remainder).
            batch = map_batch_size if map_batch_size > 1 else None
            out = jax.lax.map(lambda a: fn(*a), (runs, hp), batch_size=batch)
        return jax.tree.map(unflatten, out)

    return batched


def runner_specs(axis_name: str) -> RunnerState:
    """``shard_map`` specs of a ``[G, S]`` runner state whose envs are split on ``axis_name``."""
    return RunnerState(
        params=P(), opt_state=P(), env=P(None, None, axis_name), key=P(), update_step=P()
    )


def runner_shardings(mesh: jax.sharding.Mesh, state: RunnerState) -> Any:
    """``NamedSharding``s for every leaf of a ``[G, S]`` runner state (env leaves split)."""
    specs = runner_specs(mesh.axis_names[0])
    return jax.tree.map(
        lambda spec, subtree: jax.tree.map(lambda _: NamedSharding(mesh, spec), subtree),
        specs,
        state,
        is_leaf=lambda x: isinstance(x, P),
    )


@dataclass(frozen=True)
class Placement:
    """The devices, mesh, batching and padding of one config's ``[G, S_padded]`` runs.

    Build with ``Placement.build``. ``mesh`` is None on one device; ``env_parallel`` splits every
    seed's envs over the mesh instead of the seeds.
    """

    config: PPOConfig
    num_devices: int
    env_parallel: bool
    mesh: jax.sharding.Mesh | None
    seed_batching: str  # "vmap" or "map" (resolved)
    seeds: tuple[int, ...]  # the real seeds, then the padding seeds

    @classmethod
    def build(
        cls, config: PPOConfig, num_devices: int | None = None, env_parallel: bool = False
    ) -> "Placement":
        """Resolves the device count (``None``: all) and everything that follows from it.

        Raises:
            ValueError: a bad ``num_devices`` (``resolve_num_devices``), or env-parallel
                training over a device count that does not divide the envs or the minibatch.
        """
        n_dev = resolve_num_devices(num_devices)
        env_parallel = env_parallel and n_dev > 1
        seeds = config.seeds
        if env_parallel:
            check_env_parallel(config, n_dev)
            mesh = distributed.env_mesh(n_dev)
        elif n_dev > 1:
            mesh = distributed.seed_mesh(n_dev)
            seeds = pad_seeds(seeds, n_dev)
        else:
            mesh = None
        platform = (mesh.devices.flat[0] if mesh is not None else jax.devices()[0]).platform
        mode = resolve_seed_batching(config, platform, n_dev)
        return cls(config, n_dev, env_parallel, mesh, mode, seeds)

    # ------------------------------------------------------------------------------ padding
    @property
    def num_real(self) -> int:
        """Real seeds: the first ``num_real`` of ``seeds``."""
        return self.config.num_seeds

    def unpad(self, tree: Any) -> Any:
        """Drops the padding seeds: leaves ``[G, S_padded, ...]`` -> ``[G, S, ...]``."""
        return unpad_seeds(tree, self.num_real)

    def real_mask(self) -> np.ndarray:
        """``[S_padded]`` bool: which seeds are real (not padding)."""
        return np.arange(len(self.seeds)) < self.num_real

    # ------------------------------------------------------------------------------ inputs
    def keys(self) -> jax.Array:
        """``[S_padded]`` seed keys, placed: sharded over a seed mesh, else replicated."""
        return self._put(seed_keys(self.seeds), sharded=not self.env_parallel)

    def hparams(self) -> HParams:
        """The traced hyperparameters ``[G]`` (``make_hparams``), replicated over the mesh."""
        return self._put(make_hparams(self.config), sharded=False)

    def _put(self, tree: Any, sharded: bool) -> Any:
        if self.mesh is None:
            return tree
        if sharded:
            return jax.device_put(tree, distributed.seed_sharding(self.mesh, 0))
        return jax.device_put(tree, distributed.replicated(self.mesh))

    # ------------------------------------------------------------------------------ batching
    def lift(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(run, hparams)`` of one whole run (not split over devices) -> ``(runs [G, S],
        hparams [G] | None) -> [G, S, ...]``. With ``"map"`` batching over a seed mesh the map
        runs inside a ``jax.shard_map``, each device over its own seeds (no collective).
        NOTE: a ``lax.map`` over a sharded axis would make XLA gather the whole axis."""
        batched = batch_runs(fn, self.seed_batching, self.config.seed_map_batch_size)
        if self.seed_batching != "map" or self.mesh is None or self.env_parallel:
            return batched
        seeds = P(None, self.mesh.axis_names[0])
        return jax.shard_map(
            batched, mesh=self.mesh, in_specs=(seeds, P()), out_specs=seeds, check_vma=False
        )

    def lift_update(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``lift`` for an update ``fn(run, hparams) -> (run, metrics)``. With ``env_parallel``
        ``fn`` runs inside a ``jax.shard_map`` over the env axis (it sees this device's envs and
        must reduce over ``self.mesh.axis_names[0]`` itself); the seeds stay whole per device."""
        if not self.env_parallel:
            return self.lift(fn)
        specs = runner_specs(self.mesh.axis_names[0])
        # NOTE: check_vma=False: grad does not psum by itself; the update pmeans explicitly.
        return jax.shard_map(
            batch_runs(fn, self.seed_batching, self.config.seed_map_batch_size),
            mesh=self.mesh,
            in_specs=(specs, P()),
            out_specs=(specs, P()),
            check_vma=False,
        )

    # ------------------------------------------------------------------------------ outputs
    def out_shardings(self, state_shapes: Any) -> tuple[Any, Any]:
        """``(runner state shardings, shardings of every other output)`` for ``jax.jit``.

        One device: ``None`` (jax's choice). Seeds: sharded on the seed axis (outputs lead with
        ``[G, S]``). Envs: env leaves split, the rest replicated. NOTE: with several processes
        (jax.distributed) every process reads whole results (and process 0 checkpoints the
        whole state), so everything leaving a program is replicated.
        """
        if self.mesh is None:
            return None, None
        if jax.process_count() > 1:
            return distributed.replicated(self.mesh), distributed.replicated(self.mesh)
        if self.env_parallel:
            return runner_shardings(self.mesh, state_shapes), distributed.replicated(self.mesh)
        sharded = distributed.seed_sharding(self.mesh, 1)
        return sharded, sharded


def compile_program(fn: Callable[..., Any], *args: Any, out_shardings: Any = None) -> Any:
    """``jax.jit(fn)`` lowered for ``args`` (arrays or ``ShapeDtypeStruct``s) and compiled
    under ``rng_config``."""
    with rng_config():
        return jax.jit(fn, out_shardings=out_shardings).lower(*args).compile()
