"""PPO: the per-run update as pure functions, and ``make_train`` wiring them into the loop.

Per run (module-level pure functions):
    ``init_runner_state(key, setup) -> RunnerState``
    ``update_step(runner, hparams, setup, envs) -> (RunnerState, UpdateMetrics)``: rollout, GAE,
        ``update_epochs`` passes of minibatch SGD. ``envs`` says where the run's envs live: all
        on this device (``LOCAL_ENVS``) or split over devices (``dataparallel.SplitEnvs``); its
        hooks gather the batch, cut the minibatches (and normalise their advantages), and
        reduce the gradients and the episode stats.
    ``evaluate(runner, setup) -> mean greedy return``

``make_train(config, placement)`` lifts them over the ``[G, S]`` runs (``train.placement``) into a
``train.loop.Trainer``: ``init``, ``run_updates`` (chunkable: ``run_updates(state, a)`` then
``run_updates(state, b)`` gives bitwise ``run_updates(state, a + b)``), ``evaluate``, ``train``,
``run_until``. Trace and compile them inside ``with rng_config():`` as ``train.train`` does::

    trainer = make_train(config)
    with rng_config():
        state = jax.jit(trainer.init)(seed_keys(config.seeds))
        run = jax.jit(trainer.run_updates, static_argnums=2)
        state, metrics_a = run(state, make_hparams(config), 10)  # metrics leaves [G, S, 10]
        state, metrics_b = run(state, make_hparams(config), 10)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from train import networks
from train.config import PPOConfig
from train.dataparallel import SplitEnvs
from train.gae import compute_gae
from train.loop import ProgressFn, Trainer, make_trainer
from train.losses import LossInfo, explained_variance, ppo_loss_terms
from train.placement import Placement
from train.rollout import (
    EnvCarry, EnvSpec, EvalEpisodes, collect_rollout, evaluate_greedy, evaluation_budget, reset_envs,
    run_eval_episodes,
)
from train.setup import TrainSetup, log_std_of, make_setup
from train.types import HParams, RunnerState, UpdateMetrics, stack_fields, unstack_fields


class EnvLayout(Protocol):
    """Where one run's envs live during an update: ``update_step``'s env-parallel hooks."""

    def local(self, x: jax.Array) -> jax.Array:
        """Per-env randomness ``[T, N, ...]`` -> this device's envs' ``[T, n, ...]``."""

    def gather(self, packed: jax.Array, num_steps: int) -> jax.Array:
        """This device's packed rollout ``[T·n, C]`` -> the whole batch ``[T·N, C]``."""

    def minibatches(
        self, packed: jax.Array, unpack: Callable[[jax.Array], dict], config: PPOConfig
    ) -> tuple[Callable[[jax.Array], Any], Callable[[Any], dict], bool]:
        """``(epoch_inputs, to_batch, normalize_in_loss)`` for ``sgd_epochs``."""

    def mean(self, tree: Any) -> Any:
        """Gradients and loss terms of this device's minibatch share -> the minibatch's."""

    def total(self, tree: Any) -> Any:
        """Episode stats of this device's envs -> of all the run's envs."""


class LocalEnvs:
    """All of a run's envs on this device: ``update_step``'s hooks are identities."""

    def local(self, x: jax.Array) -> jax.Array:
        return x

    def gather(self, packed: jax.Array, num_steps: int) -> jax.Array:
        return packed

    def minibatches(
        self, packed: jax.Array, unpack: Callable[[jax.Array], dict], config: PPOConfig
    ) -> tuple[Callable[[jax.Array], Any], Callable[[Any], dict], bool]:
        num_mb, mb_size = config.num_minibatches, config.minibatch_size

        def epoch_inputs(perm: jax.Array) -> jax.Array:
            # NOTE: one gather of the packed [B, D] batch per epoch, then a free reshape.
            return packed[perm].reshape(num_mb, mb_size, packed.shape[-1])

        return epoch_inputs, unpack, config.normalize_advantage

    def mean(self, tree: Any) -> Any:
        return tree

    def total(self, tree: Any) -> Any:
        return tree


LOCAL_ENVS = LocalEnvs()


# --------------------------------------------------------------------------------------------
# Per-run pure functions
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


def minibatch_loss(
    params: Any,
    batch: dict[str, jax.Array],
    hp: HParams,
    setup: TrainSetup,
    normalize_advantage: bool | None = None,
) -> tuple[jax.Array, LossInfo]:
    """PPO loss of one minibatch (``batch`` leaves ``[B, ...]``) under ``params``.

    ``normalize_advantage`` (static; default ``setup.config.normalize_advantage``): normalise the
    minibatch's advantages inside the loss (off when they arrive normalised already).
    """
    if normalize_advantage is None:
        normalize_advantage = setup.config.normalize_advantage
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
        normalize_advantage=normalize_advantage,
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
    reduce: Callable[[Any], Any] = LOCAL_ENVS.mean,
    normalize_advantage: bool | None = None,
) -> tuple[Any, Any, LossInfo]:
    """``update_epochs`` passes of minibatch SGD: ``(params, opt_state, mean loss terms)``.

    Args:
        perms: ``[E, B]`` one permutation of the batch per epoch.
        epoch_inputs: ``perm -> xs``, the scan inputs of one epoch, one per minibatch.
        to_batch: one minibatch's ``xs`` -> the ``minibatch_loss`` batch.
        reduce: applied to ``(grads, loss info)`` before the optimiser step (e.g. a ``pmean``
            over devices that each hold a slice of the minibatch).
        normalize_advantage: passed to ``minibatch_loss``.
    """
    tx = setup.optimizer(hp.max_grad_norm)
    # NOTE: the epochs carry the parameters as one flat vector: the loss unravels it (slices),
    # so each SGD step concatenates only the gradient, not the parameters too.
    flat_params, unravel = ravel_pytree(runner.params)
    grad_fn = jax.grad(
        lambda flat, batch: minibatch_loss(unravel(flat), batch, hp, setup, normalize_advantage),
        has_aux=True,
    )

    def sgd_step(carry, xs):
        flat, opt_state = carry
        grads, info = reduce(grad_fn(flat, to_batch(xs)))
        updates, opt_state = tx.update(grads, opt_state)
        # NOTE: one packed [6] output instead of six scalars (one kernel per scan output).
        return (flat - lr * updates, opt_state), stack_fields(info)

    def epoch(carry, perm):
        return jax.lax.scan(sgd_step, carry, epoch_inputs(perm))

    (flat_params, opt_state), infos = jax.lax.scan(epoch, (flat_params, runner.opt_state), perms)
    return unravel(flat_params), opt_state, unstack_fields(LossInfo, infos.mean((0, 1)))


def update_step(
    runner: RunnerState, hp: HParams, setup: TrainSetup, envs: EnvLayout = LOCAL_ENVS
) -> tuple[RunnerState, UpdateMetrics]:
    """One PPO update of one run: rollout, GAE, ``update_epochs`` passes of minibatch SGD.

    ``envs``: where the run's envs are (``LOCAL_ENVS``, or ``dataparallel.SplitEnvs`` inside a
    ``shard_map``: ``runner.env`` then holds this device's envs, every other leaf is replicated,
    and so are the returned metrics).
    """
    config = setup.config
    key, env_keys, action_uniforms, perms = update_randomness(runner.key, config, setup.spec)
    env_carry, stats, batch = rollout_batch(
        envs.local(env_keys), envs.local(action_uniforms), runner, hp, setup
    )
    packed, unpack = pack_batch(batch)
    packed = envs.gather(packed, config.num_steps)
    lr = learning_rate_at(runner.update_step, hp, config)
    epoch_inputs, to_batch, normalize = envs.minibatches(packed, unpack, config)
    params, opt_state, infos = sgd_epochs(
        runner, perms, epoch_inputs, to_batch, hp, setup, lr, envs.mean, normalize
    )
    whole = unpack(packed)  # the run's whole batch, [T * N, ...]
    T, N = config.num_steps, config.num_envs
    values, targets = whole["value"].reshape(T, N), whole["target"].reshape(T, N)
    metrics = update_metrics(envs.total(stats), infos, values, targets, lr)
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
) -> UpdateMetrics:
    """The logged scalars of one update: episode stats of its rollout (NaN where no episode
    ended), the mean loss terms over its minibatches, explained variance, learning rate."""
    count = stats.count
    return UpdateMetrics(
        episode_return=jnp.where(count > 0, stats.return_sum / jnp.maximum(count, 1), jnp.nan),
        episode_length=jnp.where(count > 0, stats.length_sum / jnp.maximum(count, 1), jnp.nan),
        episodes_completed=count,
        policy_loss=infos.policy_loss,
        value_loss=infos.value_loss,
        entropy=infos.entropy,
        approx_kl=infos.approx_kl,
        clip_fraction=infos.clip_fraction,
        explained_variance=explained_variance(values, targets),
        learning_rate=lr,
    )


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
# Batched over the runs
# --------------------------------------------------------------------------------------------
class PolicyKind(NamedTuple):
    """What one policy kind gives the trainer and the evaluation (``policy_kind`` picks it).

    Attributes:
        functions: ``(setup, placement) -> (init(key, setup), update(runner, hp, setup, envs),
            evaluate(runner, setup))``, the per-run pieces ``make_train`` lifts over the runs.
        episode_runner: ``setup -> run(params, key, num_envs, max_steps, greedy) -> EvalEpisodes``:
            fresh evaluation episodes of one run's policy (``train.evaluate``).
        host_greedy: ``(setup, params) -> policy(obs, state) -> action``: the greedy policy for a
            host loop over one episode (``jaxgrid.replay_episode``; the eval GIF). One per episode.
    """

    functions: Callable[[TrainSetup, Placement], tuple[Callable, Callable, Callable]]
    episode_runner: Callable[[TrainSetup], Callable[..., EvalEpisodes]]
    host_greedy: Callable[[TrainSetup, Any], Callable[..., Any]]


def _feedforward_episode_runner(setup: TrainSetup) -> Callable[..., EvalEpisodes]:
    def run(p: Any, key: jax.Array, num_envs: int, max_steps: int, greedy: Any) -> EvalEpisodes:
        policy_params, apply = setup.rollout_policy(p)
        return run_eval_episodes(key, policy_params, apply, setup.spec, num_envs, max_steps, greedy, log_std_of(p, setup))

    return run


def _feedforward_host_greedy(setup: TrainSetup, params: Any) -> Callable[..., Any]:
    def greedy(obs: jax.Array, state: Any = None) -> Any:
        policy_out, _ = setup.apply(params, obs[None])
        return networks.greedy_action(policy_out, setup.spec.discrete_actions)[0]

    return greedy


FEEDFORWARD = PolicyKind(
    functions=lambda setup, placement: (init_runner_state, update_step, evaluate),
    episode_runner=_feedforward_episode_runner,
    host_greedy=_feedforward_host_greedy,
)


def policy_kind(config: PPOConfig) -> PolicyKind:
    """The policy kind of ``config``: ``FEEDFORWARD``, or ``train.recurrent.POLICY_KIND`` (the GRU
    policy) when ``config.rnn_hidden_size > 0``. The one place that tells the kinds apart."""
    if config.rnn_hidden_size > 0:
        from train import recurrent

        return recurrent.POLICY_KIND
    return FEEDFORWARD


def make_train(
    config: PPOConfig,
    placement: Placement | None = None,
    progress: ProgressFn | None = None,
    progress_every: int | None = None,
) -> Trainer:
    """PPO's per-run pieces lifted over ``placement``'s ``[G, S]`` runs into a ``Trainer``.

    Args:
        config: the run's config.
        placement: devices, batching and padding (default: ``Placement.build(config, 1)``).
        progress: optional host callback ``(update_index, env_steps (), episode_return [G, S])``,
            called from inside the program every ``progress_every`` updates and after the last.
        progress_every: throttle for ``progress`` (default: about 100 calls per run).

    Returns:
        A ``train.loop.Trainer`` (of the feedforward policy, or of ``train.recurrent``'s GRU
        policy when ``config.rnn_hidden_size > 0``).

    Raises:
        ValueError: env-parallel training of a recurrent policy over a device count that does not
            divide a minibatch's env sequences (``train.recurrent.check_env_split``).
    """
    setup = make_setup(config)
    placement = placement or Placement.build(config, num_devices=1)
    envs = LOCAL_ENVS
    if placement.env_parallel:
        envs = SplitEnvs(placement.mesh.axis_names[0], placement.num_devices)
    init, update, evaluate_run = policy_kind(config).functions(setup, placement)
    return make_trainer(
        setup,
        placement,
        init=lambda key: init(key, setup),
        update=lambda runner, hp: update(runner, hp, setup, envs),
        evaluate=lambda runner: evaluate_run(runner, setup),
        metric_type=UpdateMetrics,
        progress=progress,
        progress_every=progress_every,
    )
