"""PPO as one fused XLA program: pure per-seed pieces, wired by ``make_train``.

Per seed (module-level pure functions):
    ``init_runner_state(key, setup) -> RunnerState``
    ``update_step(runner_state, hparams, setup) -> (RunnerState, metrics)``: rollout, GAE, epochs
    ``evaluate(runner_state, setup) -> mean greedy return``

``make_train(config)`` batches them over a sweep grid ``G`` and seeds ``S`` (``vmap``, or ``lax.map``
per ``config.seed_batching``: see ``batch_runs``), and exposes
``init`` and ``run_updates`` separately, so a caller can run the updates in chunks: running
``run_updates(state, a)`` then ``run_updates(state, b)`` gives bitwise the same result as
``run_updates(state, a + b)`` (every random key lives in the ``RunnerState``; the update index too).
Trace and compile them inside ``with rng_config():`` as ``train.train`` does, e.g.::

    trainer = make_train(config)
    with rng_config():
        state = jax.jit(trainer.init)(seed_keys(config.seeds))
        run = jax.jit(trainer.run_updates, static_argnums=2)
        state, metrics_a = run(state, make_hparams(config), 10)  # metrics leaves [G, S, 10]
        state, metrics_b = run(state, make_hparams(config), 10)

Host callbacks (the progress bar) make an executable uncacheable by jax's persistent compilation
cache, so only programs built with ``progress=None`` are reused across processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from flax import struct

from train import networks
from train.config import SWEEPABLE, PPOConfig
from train.envs import make_env
from train.gae import compute_gae
from train.losses import LossInfo, explained_variance, ppo_loss_terms
from train.rollout import (
    EnvCarry,
    EnvSpec,
    collect_rollout,
    describe_env,
    evaluate_greedy,
    evaluation_budget,
    reset_envs,
)

METRIC_NAMES: tuple[str, ...] = (
    "episode_return",
    "episode_length",
    "episodes_completed",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "learning_rate",
    "env_steps",
)
_PACKED = METRIC_NAMES[:-1]  # computed per update; env_steps is derived from the update index


@struct.dataclass
class HParams:
    """The traced (sweepable) hyperparameters, float32 scalars (``[G]`` when batched)."""

    learning_rate: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array


@struct.dataclass
class RunnerState:
    """Everything one seed carries from update to update."""

    params: Any  # network parameters
    opt_state: Any  # optax state of (clip, adam) over the flat parameter vector
    env: EnvCarry  # env states, current obs, running episode stats; leaves [N, ...]
    key: jax.Array  # PRNG key for the next update
    update_step: jax.Array  # () int32, updates done so far


@dataclass(frozen=True)
class TrainSetup:
    """Static wiring of one config: env, network, optimiser, shapes. Not traced.

    With ``obs_table`` (``config.obs_table``, Discrete observations only) the network runs once
    on all ``n`` observations and its outputs are looked up per sample:
    - ``evaluate_actions`` (what the minibatch loss differentiates) and ``apply``:
      ``one_hot(index) @ table``, whose gradient is ``one_hot.T @ g``, a small matmul (a gather's
      gradient would be a scatter-add, slow on XLA:CPU under vmap);
    - ``rollout_policy`` (parameters frozen for a whole rollout or evaluation): the table is built
      once, outside the step loop, and each step is a row gather.
    NOTE: this is where PPO's time went on small discrete envs: a 64x64 two-tower MLP evaluated
    and differentiated on every sample of every minibatch, when the 4x4 grid has 16 observations.
    """

    config: PPOConfig
    spec: EnvSpec
    network: networks.ActorCritic
    obs_table: bool = False

    def _table(self, params: Any, critic_only: bool = False):
        every_obs = jnp.arange(self.spec.num_obs_categories, dtype=jnp.int32)
        return self.network.apply(params, every_obs, critic_only=critic_only, every_obs=True)

    def apply(self, params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        if not self.obs_table:
            return self.network.apply(params, obs)
        policy_table, value_table = self._table(params)
        table = jnp.concatenate([policy_table, value_table[:, None]], axis=1)  # [n, A + 1]
        one_hot = jax.nn.one_hot(obs.reshape(-1), table.shape[0], dtype=table.dtype)
        out = one_hot @ table
        return out[:, :-1], out[:, -1]

    def value(self, params: Any, obs: jax.Array) -> jax.Array:
        if not self.obs_table:
            return self.network.apply(params, obs, critic_only=True)[1]
        return self._table(params, critic_only=True)[1][obs.reshape(-1)]

    def evaluate_actions(
        self, params: Any, obs: jax.Array, action: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(log π(action | obs), entropy of π(· | obs), V(obs))``, each ``[B]``: what the PPO
        loss needs of the current parameters.

        With the table and a categorical policy every term depends on ``(obs, action)`` only, so
        one ``[n * A, 3]`` table of (log-probability, entropy, value) per pair is built on the ``n``
        observations and one ``one_hot(obs * A + action) @ table`` reads a minibatch's terms: no
        per-sample softmax, and the gradient is one small matmul back into the table.
        """
        spec = self.spec
        log_std = _log_std(params, self)
        if not (self.obs_table and spec.discrete_actions):
            policy_out, value = self.apply(params, obs)
            log_prob = networks.log_prob(policy_out, log_std, action, spec.discrete_actions)
            return log_prob, networks.entropy(policy_out, log_std, spec.discrete_actions), value
        logits, values = self._table(params)  # [n, A], [n]
        n, A = logits.shape
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
        per_pair = lambda x: jnp.broadcast_to(x[:, None], (n, A)).reshape(-1)  # noqa: E731
        table = jnp.stack([log_probs.reshape(-1), per_pair(entropy), per_pair(values)], axis=1)
        pair = obs.reshape(-1).astype(jnp.int32) * A + action.reshape(-1).astype(jnp.int32)
        terms = jax.nn.one_hot(pair, n * A, dtype=table.dtype) @ table  # [B, 3]
        return terms[:, 0], terms[:, 1], terms[:, 2]

    def rollout_policy(self, params: Any) -> tuple[Any, Callable[[Any, jax.Array], Any]]:
        """``(params', apply')`` for a stretch of steps under fixed ``params``: with the table,
        ``params'`` carries the precomputed table (and the parameters, e.g. a Gaussian's
        ``log_std``) and ``apply'`` only gathers rows; otherwise ``(params, apply)``."""
        if not self.obs_table:
            return params, self.apply
        frozen = {"params": params["params"], "obs_table": self._table(params)}

        def lookup(frozen: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
            policy_table, value_table = frozen["obs_table"]
            index = obs.reshape(-1)
            return policy_table[index], value_table[index]

        return frozen, lookup

    def optimizer(self, max_grad_norm: jax.Array | float) -> optax.GradientTransformation:
        """Global-norm clipping then Adam, on the flat parameter vector (``ravel_pytree``).

        The learning rate is applied by hand (it is traced and annealed). NOTE: optimising one
        flat vector instead of the parameter pytree is the same arithmetic, but one kernel per
        step instead of one per leaf: fewer kernels to launch and to compile.
        """
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.scale_by_adam(eps=1e-5))


def make_setup(config: PPOConfig) -> TrainSetup:
    """Builds the env and the network of ``config``."""
    env, env_params = make_env(config.env_id, config.env_kwargs)
    spec = describe_env(env, env_params)
    network = networks.ActorCritic(
        action_dim=spec.action_dim,
        discrete_actions=spec.discrete_actions,
        obs_kind=spec.obs_kind,
        num_obs_categories=spec.num_obs_categories,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
    )
    return TrainSetup(
        config=config, spec=spec, network=network, obs_table=resolve_obs_table(config, spec)
    )


def resolve_obs_table(config: PPOConfig, spec: EnvSpec) -> bool:
    """Whether the network is evaluated as a table over all observations (``config.obs_table``)."""
    discrete = spec.obs_kind == "discrete"
    if config.obs_table == "on" and not discrete:
        raise ValueError(
            f"PPOConfig.obs_table='on' needs a Discrete observation space, but {config.env_id!r} "
            f"has {spec.env.observation_space(spec.env_params)!r}; valid choices here: 'auto', 'off'"
        )
    if config.obs_table == "auto":
        return discrete and spec.num_obs_categories <= config.minibatch_size
    return config.obs_table == "on"


def make_hparams(config: PPOConfig) -> HParams:
    """The grid of traced hyperparameters: every leaf ``[G]`` float32 (G = 1 without a sweep)."""
    values = config.hparam_values()
    return HParams(**{k: jnp.asarray(values[k], jnp.float32) for k in SWEEPABLE})


# --------------------------------------------------------------------------------------------
# Per-seed pure functions
# --------------------------------------------------------------------------------------------
def init_runner_state(key: jax.Array, setup: TrainSetup) -> RunnerState:
    """Fresh network, optimiser and envs for one seed, all drawn from ``key``."""
    num_envs = setup.config.num_envs
    keys = jax.random.split(key, 2 + num_envs)  # one random site: params, run, env resets
    key_params, key_run = keys[0], keys[1]
    carry = reset_envs(keys[2:], setup.spec)
    params = networks.init_params(key_params, setup.network, carry.obs)
    opt_state = setup.optimizer(1.0).init(ravel_pytree(params)[0])
    return RunnerState(
        params=params,
        opt_state=opt_state,
        env=carry,
        key=key_run,
        update_step=jnp.zeros((), jnp.int32),
    )


def _log_std(params: Any, setup: TrainSetup) -> jax.Array | None:
    return None if setup.spec.discrete_actions else params["params"]["log_std"]


def minibatch_loss(
    params: Any, batch: dict[str, jax.Array], hp: HParams, setup: TrainSetup
) -> tuple[jax.Array, LossInfo]:
    """PPO loss of one minibatch (``batch`` leaves ``[B, ...]``) under ``params``."""
    new_log_prob, entropy, values = setup.evaluate_actions(params, batch["obs"], batch["action"])
    return ppo_loss_terms(
        new_log_prob,
        batch["log_prob"],
        batch["advantage"],
        values,
        batch["value"],
        batch["target"],
        entropy,
        hp.clip_eps,
        hp.vf_coef,
        hp.ent_coef,
        clip_value_loss=setup.config.clip_value_loss,
        normalize_advantage=setup.config.normalize_advantage,
    )


def pack_batch(batch: dict[str, jax.Array]):
    """Packs ``{name: [B, ...]}`` into one float32 ``[B, D]`` array, and returns the inverse.

    One array means one gather and one scan input per epoch instead of one per field. Integer
    fields (discrete obs/actions, small-integer images) round-trip exactly below 2^24.
    """
    names = list(batch)
    size = batch[names[0]].shape[0]
    specs = [(n, batch[n].shape[1:], batch[n].dtype) for n in names]
    columns = [batch[n].reshape(size, -1).astype(jnp.float32) for n in names]
    widths = [c.shape[1] for c in columns]
    packed = jnp.concatenate(columns, axis=1)

    def unpack(rows: jax.Array) -> dict[str, jax.Array]:
        out, start = {}, 0
        for (name, shape, dtype), width in zip(specs, widths):
            col = rows[..., start : start + width]
            start += width
            if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
                col = jnp.round(col)
            out[name] = col.reshape(rows.shape[:-1] + shape).astype(dtype)
        return out

    return packed, unpack


def permutations_from_bits(bits: jax.Array) -> jax.Array:
    """``[num, size]`` uint32 random bits -> ``num`` random permutations of ``range(size)``.

    Sorts the random bits with the index packed into the low bits, in one single-operand unstable
    sort: ~5x faster on XLA:CPU than ``argsort`` (a stable two-operand sort) or
    ``jax.random.permutation``. Equal random high bits (probability ~size²/2^(33-log2 size)) fall
    back to index order.
    """
    size = bits.shape[-1]
    index_bits = max(1, (size - 1).bit_length())
    if index_bits > 16:  # too few random bits would be left: use the plain argsort
        return jnp.argsort(bits, axis=-1).astype(jnp.int32)
    packed = (bits << index_bits) | jnp.arange(size, dtype=jnp.uint32)
    packed = jax.lax.sort(packed, dimension=-1, is_stable=False)
    return (packed & jnp.uint32((1 << index_bits) - 1)).astype(jnp.int32)


def learning_rate_at(update_step: jax.Array, hp: HParams, config: PPOConfig) -> jax.Array:
    """The learning rate of update ``update_step`` (linear annealing counted in updates)."""
    if not config.anneal_lr:
        return hp.learning_rate
    return hp.learning_rate * (1.0 - update_step.astype(jnp.float32) / config.num_updates)


def update_randomness(
    key: jax.Array, config: PPOConfig, spec: EnvSpec
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """A whole update's randomness: ``(next key, env-step keys [T, N], action uniforms [T, N, A],
    epoch permutations [E, T * N])``.

    NOTE: two random sites (each costs XLA compile time): one split for the next key, the bits
    key and the env-step keys; one bits draw for the action samples and the epoch shuffles.
    """
    T, N, A = config.num_steps, config.num_envs, spec.action_dim
    B, E = T * N, config.update_epochs
    keys = jax.random.split(key, 2 + B)
    env_keys = keys[2:].reshape((T, N) + keys.shape[1:])
    bits = jax.random.bits(keys[1], (B * A + E * B,), jnp.uint32)
    action_uniforms = networks.uniform_from_bits(bits[: B * A]).reshape(T, N, A)
    perms = permutations_from_bits(bits[B * A :].reshape(E, B))
    return keys[0], env_keys, action_uniforms, perms


def rollout_batch(
    env_keys: jax.Array, action_uniforms: jax.Array, runner: RunnerState, hp: HParams, setup: TrainSetup
) -> tuple[EnvCarry, Any, dict[str, jax.Array]]:
    """Rollout and GAE: ``(env carry, episode stats, batch)``, batch leaves ``[T * n, ...]`` for the
    ``n`` envs of ``env_keys`` ``[T, n]`` (row ``t * n + env``)."""
    env_carry, traj, stats = collect_rollout(
        env_keys, action_uniforms, *setup.rollout_policy(runner.params), setup.spec, runner.env
    )
    T, n = traj.reward.shape
    flat = lambda x: x.reshape((T * n,) + x.shape[2:])  # noqa: E731
    # V of the true next state s'_t (the final observation where an episode ended): one batched
    # critic pass over the whole rollout.
    next_values = setup.value(runner.params, flat(traj.next_obs)).reshape(T, n)
    advantages, targets = compute_gae(
        traj.reward, traj.value, next_values, traj.terminated, traj.done, hp.gamma, hp.gae_lambda
    )
    batch = {
        "obs": flat(traj.obs),
        "action": flat(traj.action),
        "log_prob": flat(traj.log_prob),
        "value": flat(traj.value),
        "advantage": flat(advantages),
        "target": flat(targets),
    }
    return env_carry, stats, batch


def sgd_epochs(
    runner: RunnerState,
    perms: jax.Array,
    epoch_inputs: Callable[[jax.Array], Any],
    to_batch: Callable[[Any], dict[str, jax.Array]],
    hp: HParams,
    setup: TrainSetup,
    lr: jax.Array,
    reduce: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any, LossInfo]:
    """``update_epochs`` passes of minibatch SGD: ``(params, opt_state, mean loss terms)``.

    Args:
        perms: ``[E, B]`` one permutation of the batch per epoch.
        epoch_inputs: ``perm -> xs``, the scan inputs of one epoch, one per minibatch.
        to_batch: one minibatch's ``xs`` -> the ``minibatch_loss`` batch.
        reduce: applied to ``(grads, loss info)`` before the optimiser step (e.g. a ``pmean``
            over devices that each hold a slice of the minibatch).
    """
    tx = setup.optimizer(hp.max_grad_norm)
    # NOTE: the epochs carry the parameters as one flat vector: the loss unravels it (slices),
    # so each SGD step concatenates only the gradient, not the parameters too.
    flat_params, unravel = ravel_pytree(runner.params)
    grad_fn = jax.grad(
        lambda flat, batch: minibatch_loss(unravel(flat), batch, hp, setup), has_aux=True
    )

    def sgd_step(carry, xs):
        flat, opt_state = carry
        grads_info = grad_fn(flat, to_batch(xs))
        grads, info = grads_info if reduce is None else reduce(grads_info)
        updates, opt_state = tx.update(grads, opt_state)
        # NOTE: one packed [6] output instead of six scalars (one kernel per scan output).
        return (flat - lr * updates, opt_state), jnp.stack(jax.tree.leaves(info))

    def epoch(carry, perm):
        return jax.lax.scan(sgd_step, carry, epoch_inputs(perm))

    (flat_params, opt_state), infos = jax.lax.scan(epoch, (flat_params, runner.opt_state), perms)
    return unravel(flat_params), opt_state, LossInfo(*infos.mean((0, 1)))  # declaration order


def update_step(
    runner: RunnerState, hp: HParams, setup: TrainSetup
) -> tuple[RunnerState, dict[str, jax.Array]]:
    """One PPO update of one seed: rollout, GAE, ``update_epochs`` passes of minibatch SGD."""
    config = setup.config
    key, env_keys, action_uniforms, perms = update_randomness(runner.key, config, setup.spec)
    env_carry, stats, batch = rollout_batch(env_keys, action_uniforms, runner, hp, setup)
    packed, unpack = pack_batch(batch)
    num_mb, mb_size = config.num_minibatches, config.minibatch_size
    lr = learning_rate_at(runner.update_step, hp, config)
    params, opt_state, infos = sgd_epochs(
        runner,
        perms,
        # NOTE: one gather of the packed [B, D] batch per epoch, then a free reshape.
        lambda perm: packed[perm].reshape(num_mb, mb_size, packed.shape[-1]),
        unpack,
        hp,
        setup,
        lr,
    )
    T, N = config.num_steps, config.num_envs
    values, targets = batch["value"].reshape(T, N), batch["target"].reshape(T, N)
    metrics = update_metrics(stats, infos, values, targets, lr)
    return next_runner(runner, params, opt_state, env_carry, key), metrics


def next_runner(
    runner: RunnerState, params: Any, opt_state: Any, env: EnvCarry, key: jax.Array
) -> RunnerState:
    """The runner state after one update of ``runner``."""
    return RunnerState(
        params=params, opt_state=opt_state, env=env, key=key, update_step=runner.update_step + 1
    )


def update_metrics(
    stats: Any, infos: LossInfo, values: jax.Array, targets: jax.Array, lr: jax.Array
) -> dict[str, jax.Array]:
    """The logged scalars of one update: episode stats of its rollout (NaN where no episode
    ended), the mean loss terms over its minibatches, explained variance, learning rate."""
    count = stats.count
    return {
        "episode_return": jnp.where(count > 0, stats.return_sum / jnp.maximum(count, 1), jnp.nan),
        "episode_length": jnp.where(count > 0, stats.length_sum / jnp.maximum(count, 1), jnp.nan),
        "episodes_completed": count,
        "policy_loss": infos.policy_loss,
        "value_loss": infos.value_loss,
        "entropy": infos.entropy,
        "approx_kl": infos.approx_kl,
        "clip_fraction": infos.clip_fraction,
        "explained_variance": explained_variance(values, targets),
        "learning_rate": lr,
    }


def evaluate(runner: RunnerState, setup: TrainSetup) -> jax.Array:
    """Mean greedy return ``()`` over ``num_eval_envs`` fresh episodes, each capped at
    ``evaluation_budget``'s step cap (``PPOConfig.eval_max_steps``).

    The key is derived from the runner's key with ``fold_in``, so evaluating does not change the
    training stream.
    """
    key = jax.random.fold_in(runner.key, 0x5EED)
    _, max_steps = evaluation_budget(setup.config, setup.spec)
    return evaluate_greedy(
        key, *setup.rollout_policy(runner.params), setup.spec, setup.config.num_eval_envs, max_steps
    )


# --------------------------------------------------------------------------------------------
# Batched over the sweep grid and seeds
# --------------------------------------------------------------------------------------------
ProgressFn = Callable[[Any, Any, Any], None]  # (update_index, env_steps (), return [G, S])


def resolve_seed_batching(config: PPOConfig, platform: str | None = None, num_devices: int = 1) -> str:
    """``config.seed_batching`` with ``"auto"`` resolved; ``"auto"`` is ``"vmap"`` today.

    Measured (``bench/seed_batching.py``, 2-core CPU, 8 seeds, PureJaxRL-style and default
    configs): on one CPU device ``lax.map`` is only ~5-10% faster than ``vmap`` (within this shared
    machine's run-to-run noise); with the seeds sharded over 2 host devices ``vmap`` is ~10-20%
    faster; on GPU/TPU ``vmap`` is what fills the device. Choosing ``"map"`` on one device only
    would also make a config's results depend on the device count in the last float bits, where
    ``vmap`` trains bitwise the same on any number of devices. ``platform`` and ``num_devices``
    are where a backend-dependent choice would go.
    """
    del platform, num_devices  # no backend measured where "map" wins by more than noise
    return "vmap" if config.seed_batching == "auto" else config.seed_batching


def batch_runs(
    fn: Callable[..., Any],
    mode: str,
    map_batch_size: int = 1,
    mesh: jax.sharding.Mesh | None = None,
) -> Callable[..., Any]:
    """Lifts ``fn(runner, hparams)`` of one run to ``[G, S]`` runners and ``[G]`` hparams.

    Args:
        fn: per-run function; ``hparams`` may be ``None`` (then ``fn(runner, None)``).
        mode: ``"vmap"`` (one batched program) or ``"map"`` (``lax.map`` over the ``G * S`` runs,
            ``map_batch_size`` of them vmapped per step).
        map_batch_size: see ``mode``.
        mesh: the 1-D mesh the seed axis is sharded over, if any. In ``"map"`` mode the map then
            runs inside a ``jax.shard_map``, each device over its own seeds (no collective).
            NOTE: a ``lax.map`` over a sharded axis would make XLA gather the whole axis.

    Returns:
        ``(runner [G, S], hparams [G] | None) -> outputs with leaves [G, S, ...]``.
    """
    if mode == "vmap":
        # NOTE: one vmap over the G * S runs, not a vmap over G of a vmap over S: every scan in
        # the update is batched (re-traced) once instead of twice, which shortens tracing.
        def vmapped(runner: RunnerState, hparams: HParams | None):
            runs, hp, unflatten = flatten_runs(runner, hparams)
            out = jax.vmap(fn, in_axes=(0, None if hparams is None else 0))(runs, hp)
            return jax.tree.map(unflatten, out)

        return vmapped
    if mode != "map":
        raise ValueError(f"seed batching mode must be 'vmap' or 'map', got {mode!r}")

    def mapped(runner: RunnerState, hparams: HParams | None):
        runs, hp, unflatten = flatten_runs(runner, hparams)
        # NOTE: lax.map(batch_size=1) would vmap each run with a batch of 1; None maps plainly.
        # A batch size that does not divide G * S traces the run a second time (the remainder).
        batch = map_batch_size if map_batch_size > 1 else None
        out = jax.lax.map(lambda a: fn(*a), (runs, hp), batch_size=batch)
        return jax.tree.map(unflatten, out)

    if mesh is None or mesh.size == 1:
        return mapped
    seeds = jax.sharding.PartitionSpec(None, mesh.axis_names[0])
    return jax.shard_map(
        mapped,
        mesh=mesh,
        in_specs=(seeds, jax.sharding.PartitionSpec()),
        out_specs=seeds,
        check_vma=False,
    )


def flatten_runs(
    runner: RunnerState, hparams: HParams | None
) -> tuple[RunnerState, HParams | None, Callable[[jax.Array], jax.Array]]:
    """``[G, S]`` runners and ``[G]`` hparams -> ``G * S`` runs, their hparams, and the inverse
    (``[G * S, ...]`` -> ``[G, S, ...]``) for outputs.

    Runs are ordered seed-major (run ``s * G + g``), so a seed axis sharded over devices stays a
    contiguous block per device: no data moves.
    """
    G, S = runner.update_step.shape[:2]
    runs = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape((S * G,) + x.shape[2:]), runner)
    hp = jax.tree.map(lambda h: jnp.tile(h, S), hparams)  # run s * G + g has hparams[g]

    def unflatten(x: jax.Array) -> jax.Array:
        return jnp.swapaxes(x.reshape((S, G) + x.shape[1:]), 0, 1)

    return runs, hp, unflatten


@dataclass(frozen=True)
class Trainer:
    """The batched, jittable pieces of one config. Leading axes: ``[G, S]`` (grid, seeds)."""

    setup: TrainSetup
    init: Callable[[jax.Array], RunnerState]
    run_updates: Callable[..., tuple[RunnerState, dict[str, jax.Array]]]
    evaluate: Callable[[RunnerState], jax.Array]
    train: Callable[[jax.Array, HParams], tuple[RunnerState, dict[str, jax.Array], jax.Array]]
    run_until: Callable[..., tuple[RunnerState, jax.Array, jax.Array]]


def rng_config():
    """The PRNG setting every trainer program is traced and lowered under (a context manager).

    NOTE: ``jax_threefry_partitionable=True`` (jax's default) makes each random-number site ~3x
    slower to compile on XLA:CPU; seeds are vmapped and sharded on their own axis, so the
    partitionable variant buys nothing here. Lower/compile ``Trainer`` functions inside this.
    """
    return jax.threefry_partitionable(False)


def seed_keys(seeds: tuple[int, ...]) -> jax.Array:
    """``[S]`` keys: seed k is ``jax.random.PRNGKey(k)``."""
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def make_train(
    config: PPOConfig,
    progress: ProgressFn | None = None,
    progress_every: int | None = None,
    ordered_progress: bool = True,
    batched_update: Callable[[RunnerState, HParams], tuple[RunnerState, dict]] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> Trainer:
    """Wires the pure pieces into batched functions over ``[G, S]``.

    Args:
        config: the run's config.
        progress: optional host callback ``(update_index, env_steps, episode_return)``, called from
            inside the scan every ``progress_every`` updates and after the last one.
        progress_every: throttle for ``progress`` (default: about 100 calls per run).
        ordered_progress: use an ordered ``jax.debug.callback`` (single-device programs).
        batched_update: one update of every seed and grid point, ``(runner [G, S], hparams [G])
            -> (runner, metrics [G, S])``; default: ``update_step`` vmapped over ``[G, S]``
            (``train.dataparallel`` passes a ``shard_map`` over the env axis).
        mesh: the 1-D mesh the seed axis will be sharded over (``distributed.seed_mesh``), if
            any; ``"map"`` seed batching then maps each device's own seeds (see ``batch_runs``).

    Returns:
        A ``Trainer``: ``init(keys [S]) -> RunnerState [G, S]``, ``run_updates(state, hparams,
        num_updates) -> (state, metrics [G, S, num_updates])``, ``evaluate(state) -> [G, S]``, and
        ``train(keys, hparams)`` which does all three in one program.
    """
    setup = make_setup(config)
    num_grid = config.num_grid_points
    every = progress_every or max(1, math.ceil(config.num_updates / 100))
    last = config.num_updates - 1

    def init(keys: jax.Array) -> RunnerState:
        per_seed = jax.vmap(lambda k: init_runner_state(k, setup))(keys)
        # Every grid point starts from the same per-seed state.
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_grid,) + x.shape), per_seed)

    platform = mesh.devices.flat[0].platform if mesh is not None else None
    mode = resolve_seed_batching(config, platform, 1 if mesh is None else mesh.size)
    lift = lambda fn: batch_runs(fn, mode, config.seed_map_batch_size, mesh)  # noqa: E731
    if batched_update is None:
        batched_update = lift(lambda r, h: update_step(r, h, setup))
    batched_evaluate = lift(lambda r, _: evaluate(r, setup))

    def run_updates(
        runner: RunnerState, hparams: HParams, num_updates: int
    ) -> tuple[RunnerState, dict[str, jax.Array]]:
        start = runner.update_step.reshape(-1)[0]  # the same for every seed and grid point

        def body(runner: RunnerState, index: jax.Array):
            runner, metrics = batched_update(runner, hparams)
            packed = jnp.stack([metrics[k].astype(jnp.float32) for k in _PACKED], axis=-1)
            if progress is not None:
                report = (index % every == 0) | (index == last)
                jax.lax.cond(
                    report,
                    lambda: jax.debug.callback(
                        progress,
                        index,
                        (index + 1) * config.batch_size,
                        metrics["episode_return"],
                        ordered=ordered_progress,
                    ),
                    lambda: None,
                )
            # NOTE: metrics leave the scan packed as one [G, S, M] array (one output kernel).
            return runner, packed

        runner, packed = jax.lax.scan(
            body, runner, start + jnp.arange(num_updates, dtype=jnp.int32)
        )
        # [U, G, S, M] -> name: [G, S, U]
        metrics = {k: jnp.moveaxis(packed[..., i], 0, -1) for i, k in enumerate(_PACKED)}
        steps = (start + 1 + jnp.arange(num_updates, dtype=jnp.int32)) * config.batch_size
        metrics["env_steps"] = jnp.broadcast_to(steps, packed.shape[1:3] + (num_updates,))
        return runner, metrics

    def evaluate_all(runner: RunnerState) -> jax.Array:
        return batched_evaluate(runner, None)

    def train(keys: jax.Array, hparams: HParams):
        runner = init(keys)
        runner, metrics = run_updates(runner, hparams, config.num_updates)
        return runner, metrics, evaluate_all(runner)

    def run_until(
        runner: RunnerState, hparams: HParams, max_updates: int, target_return: float
    ) -> tuple[RunnerState, jax.Array, jax.Array]:
        """Updates every run until each one's greedy return (``evaluate``, after every update)
        reaches ``target_return``, or ``max_updates`` updates: one program, one call.

        Returns ``(runner, updates done (), greedy returns [G, S])``. The updates are the same as
        ``run_updates``' (evaluating does not touch the training keys); no metrics are kept.
        """

        def running(carry):
            _, done, returns = carry
            return (done < max_updates) & ~jnp.all(returns >= target_return)

        def body(carry):
            runner, done, _ = carry
            runner, _ = batched_update(runner, hparams)
            return runner, done + 1, evaluate_all(runner)

        lead = runner.update_step.shape
        init_carry = (runner, jnp.int32(0), jnp.full(lead, -jnp.inf, jnp.float32))
        return jax.lax.while_loop(running, body, init_carry)

    return Trainer(
        setup=setup,
        init=init,
        run_updates=run_updates,
        evaluate=evaluate_all,
        train=train,
        run_until=run_until,
    )
