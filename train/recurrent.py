"""Recurrent (GRU) policy for PPO: the network, hidden-state resets, a rollout that carries and
stores the hidden state, sequence minibatches and the BPTT loss (pure functions, tested alone in
``tests/train/test_recurrent.py``), and the trainer's per-run ``init_runner``, ``update_step``
and ``evaluate`` that ``train.ppo.make_train`` uses when ``PPOConfig.rnn_hidden_size > 0``
(``policy_functions``; tested end to end in ``tests/train/test_recurrent_trainer.py``). The
hidden state lives in ``RunnerState.env`` (a ``RecurrentCarry``), so chunked ``run_updates``,
checkpoints, resume, seed sharding and sweeps carry it like any other run state.

Conventions (``T`` steps, ``N`` envs, ``H`` hidden units):

- ``episode_start[t]`` is True where ``obs[t]`` is the first observation of an episode (the first
  rollout step after ``reset``, and every step after a ``done``): ``episode_start[t + 1] = done[t]``.
- ``hidden[t]`` is the carry *before* step ``t``, before the reset. Step ``t`` computes
  ``h_in = where(episode_start[t], 0, hidden[t])`` (``reset_hidden``), then
  ``hidden[t + 1] = GRU(h_in, obs[t])``, and the actor and critic read ``hidden[t + 1]``.
  So an episode's outputs never depend on what came before its first step, and the gradient does
  not flow across an episode start either.
- A minibatch is a set of whole env sequences ``[K, B]`` (``K = T`` by default: BPTT over the
  whole rollout); the loss re-runs the GRU over each sequence from its stored ``hidden[0]``.

The GRU is shared by the actor and the critic (encoder -> GRU -> the two MLP towers of
``networks.ActorCritic``): the sequential part, which dominates a small network's cost, runs once
per step instead of twice, and the critic's dense value error trains the same memory the actor
reads (the choice of PureJaxRL's and CleanRL's recurrent PPO).

NOTE: no orthogonal initialisation in the GRU (flax's uses a QR decomposition, a LAPACK kernel
that can deadlock under vmap inside jit on jaxlib 0.10.2's CPU backend): its kernels are
LeCun-normal (``net.init``), its biases zero but the update gate's (``UPDATE_GATE_BIAS`` in the
trainer). The towers after it are ``networks.ActorCritic``'s (QR-free).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree

from train import networks
from train.gae import compute_gae
from train.losses import LossInfo, normalize_advantages, ppo_loss_terms
from train.ppo import (
    LOCAL_ENVS, PolicyKind, learning_rate_at, next_runner, pack_batch, permutations_from_bits,
    update_metrics,
)
from train.types import RunnerState, stack_fields, unstack_fields
from train.rollout import (
    EnvCarry, EnvSpec, EpisodeStats, EvalEpisodes, StatefulApplyFn, evaluation_budget, reset_envs,
    run_eval_episodes,
)
from train.rollout import _step_envs as step_envs  # VecEnv: resets computed only where episodes end

# apply_fn(params, hidden [B, H], obs [K, B, ...], episode_start [K, B])
#   -> (hidden_seq [K, B, H], policy_out [K, B, A], value [K, B])
RecurrentApplyFn = Callable[
    [Any, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]
]


# --------------------------------------------------------------------------------------------
# The GRU
# --------------------------------------------------------------------------------------------
def reset_hidden(hidden: jax.Array, episode_start: jax.Array) -> jax.Array:
    """``where(episode_start, 0, hidden)``: ``hidden`` ``[..., H]``, ``episode_start`` ``[...]`` bool."""
    return jnp.where(episode_start[..., None], jnp.zeros_like(hidden), hidden)


def gru_update(
    hidden: jax.Array, input_proj: jax.Array, recurrent_kernel: jax.Array, recurrent_bias: jax.Array
) -> jax.Array:
    """One GRU step (the cuDNN/PyTorch form) from the input's projection.

        [x_r, x_z, x_n] = input_proj               (x W_i + b_i, computed outside the recurrence)
        [h_r, h_z, h_n] = hidden W_h + b_h
        r = σ(x_r + h_r),  z = σ(x_z + h_z),  n = tanh(x_n + r ⊙ h_n)
        hidden' = (1 − z) ⊙ n + z ⊙ hidden

    Args:
        hidden: ``[B, H]`` float32.
        input_proj: ``[B, 3H]`` float32.
        recurrent_kernel: ``[H, 3H]``; recurrent_bias: ``[3H]``.

    Returns:
        ``[B, H]`` float32, in (-1, 1) when ``hidden`` is.
    """
    size = hidden.shape[-1]
    h_proj = hidden @ recurrent_kernel + recurrent_bias
    x_r, x_z, x_n = (input_proj[..., i * size:(i + 1) * size] for i in range(3))
    h_r, h_z, h_n = (h_proj[..., i * size:(i + 1) * size] for i in range(3))
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * hidden


class GRU(nn.Module):
    """A GRU over a sequence with per-step hidden resets.

    ``__call__(hidden [B, H], inputs [K, B, F], episode_start [K, B]) -> hidden_seq [K, B, H]``:
    ``hidden_seq[t]`` is the state after input ``t`` (``reset_hidden`` is applied before each step).
    The input projection of all ``K`` steps is one matmul outside the ``lax.scan``.
    """

    hidden_size: int
    update_gate_bias: float = 0.0  # initial bias of z (> 0: start by keeping more of the memory)

    @nn.compact
    def __call__(self, hidden: jax.Array, inputs: jax.Array, episode_start: jax.Array) -> jax.Array:
        size, features = self.hidden_size, inputs.shape[-1]
        init = nn.initializers.lecun_normal()
        input_kernel = self.param("input_kernel", init, (features, 3 * size))

        def bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            return jnp.zeros(shape, dtype).at[size:2 * size].set(self.update_gate_bias)

        input_bias = self.param("input_bias", bias_init, (3 * size,))
        recurrent_kernel = self.param("recurrent_kernel", init, (size, 3 * size))
        recurrent_bias = self.param("recurrent_bias", nn.initializers.zeros, (3 * size,))
        dtype = input_kernel.dtype  # float32 (float64 params give a float64 GRU, for gradient checks)
        input_proj = inputs.astype(dtype) @ input_kernel + input_bias  # [K, B, 3H]

        def step(h: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            proj, start = xs
            h = gru_update(reset_hidden(h, start), proj, recurrent_kernel, recurrent_bias)
            return h, h

        if inputs.shape[0] == 1:  # one step (the rollout, evaluation, bootstrap): no loop
            return step(hidden.astype(dtype), (input_proj[0], episode_start[0]))[1][None]
        _, hidden_seq = jax.lax.scan(step, hidden.astype(dtype), (input_proj, episode_start))
        return hidden_seq


class RecurrentActorCritic(nn.Module):
    """Encoder -> GRU (shared) -> ``networks.ActorCritic`` towers and heads, over sequences.

    ``__call__(hidden [B, H], obs [K, B, *obs_shape], episode_start [K, B])`` returns
    ``(hidden_seq [K, B, H], policy_out [K, B, A], value [K, B])``. The encoder (``encode``):
    one-hot for ``Discrete`` observations, flattened vectors and images.
    """

    action_dim: int
    discrete_actions: bool
    obs_kind: networks.ObsKind
    rnn_hidden_size: int
    num_obs_categories: int = 0
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    update_gate_bias: float = 0.0  # the GRU's initial update-gate bias (``GRU.update_gate_bias``)

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs`` ``[M, *obs_shape]`` -> ``[M, F]`` float32 features: one-hot for ``Discrete``
        observations, flattened otherwise (images included: the GRU's input projection is the
        encoder's dense layer). NOTE: no convolutions: on XLA:CPU a conv stack's forward and
        backward over every step of every sequence cost several times the rest of the update
        (measured: 1.1 s of a 1.13 s update, TMaze-v0 3x3 view, 64 envs x 64 steps)."""
        if self.obs_kind == "discrete":
            return jax.nn.one_hot(obs.reshape(obs.shape[0]), self.num_obs_categories)
        return obs.reshape(obs.shape[0], -1).astype(jnp.float32)

    @nn.compact
    def __call__(
        self, hidden: jax.Array, obs: jax.Array, episode_start: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        steps, batch = episode_start.shape
        features = self.encode(obs.reshape((steps * batch,) + obs.shape[2:]))
        features = features.reshape(steps, batch, -1)
        hidden_seq = GRU(self.rnn_hidden_size, self.update_gate_bias, name="gru")(hidden, features, episode_start)
        towers = networks.ActorCritic(
            action_dim=self.action_dim,
            discrete_actions=self.discrete_actions,
            obs_kind="vector",
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
            name="towers",
        )
        policy_out, value = towers(hidden_seq.reshape(steps * batch, self.rnn_hidden_size))
        return hidden_seq, policy_out.reshape(steps, batch, -1), value.reshape(steps, batch)


def initial_hidden(num_envs: int, hidden_size: int) -> jax.Array:
    """``[N, H]`` float32 zeros: the hidden state of fresh envs."""
    return jnp.zeros((num_envs, hidden_size), jnp.float32)


# --------------------------------------------------------------------------------------------
# Rollout
# --------------------------------------------------------------------------------------------
@struct.dataclass
class RecurrentCarry:
    """Per-seed state carried between rollouts (``N`` envs, ``H`` hidden units)."""

    env: EnvCarry
    hidden: jax.Array  # [N, H] float32, the GRU state before the next step (before its reset)
    episode_start: jax.Array  # [N] bool, env.obs is the first observation of an episode


@struct.dataclass
class RecurrentTrajectory:
    """One rollout, every leaf ``[T, N, ...]``: ``rollout.Trajectory``'s fields and the hidden state."""

    obs: jax.Array  # s_t
    action: jax.Array  # a_t
    log_prob: jax.Array  # log π_old(a_t | s_≤t)
    value: jax.Array  # V_old(s_≤t)
    reward: jax.Array  # r_t, float32
    terminated: jax.Array  # bool
    done: jax.Array  # bool, terminated | truncated
    next_obs: jax.Array  # the true s'_t (info["final_observation"])
    hidden: jax.Array  # [T, N, H] the carry before step t (before the reset at an episode start)
    episode_start: jax.Array  # [T, N] bool, obs[t] starts an episode


def reset_recurrent(keys: jax.Array, spec: EnvSpec, hidden_size: int) -> RecurrentCarry:
    """Resets one env per key (``keys`` ``[N]``); zero hidden state, every env at an episode start."""
    env = reset_envs(keys, spec)
    num_envs = keys.shape[0]
    return RecurrentCarry(
        env=env,
        hidden=initial_hidden(num_envs, hidden_size),
        episode_start=jnp.ones((num_envs,), jnp.bool_),
    )


# Length: 62 lines, 13 of them the docstring; the body is one scan over the rollout's steps.
def collect_recurrent_rollout(
    env_keys: jax.Array,
    action_uniforms: jax.Array,
    params: Any,
    apply_fn: RecurrentApplyFn,
    spec: EnvSpec,
    carry: RecurrentCarry,
) -> tuple[RecurrentCarry, RecurrentTrajectory, EpisodeStats]:
    """``rollout.collect_rollout`` for a recurrent policy: the hidden state is carried from step to
    step, reset where an episode starts, and stored per step.

    Args:
        env_keys: ``[T, N]`` keys for the env steps.
        action_uniforms: ``[T, N, A]`` uniforms in (0, 1) for the action samples.
        params, apply_fn: the ``RecurrentActorCritic`` and its params (apply_fn as ``RecurrentApplyFn``).
        spec: the env.
        carry: env state, hidden state and episode-start flags of the ``N`` envs.

    Returns:
        ``(carry, trajectory [T, N], episode stats)``.
    """
    log_std = params["params"]["towers"].get("log_std") if not spec.discrete_actions else None

    def step(state: tuple[RecurrentCarry, jax.Array], xs: tuple[jax.Array, jax.Array]):
        carry, stats = state
        keys_env, uniforms = xs
        hidden_seq, policy_out, value = apply_fn(
            params, carry.hidden, carry.env.obs[None], carry.episode_start[None]
        )
        policy_out, value = policy_out[0], value[0]
        action = networks.sample_action_from_uniform(uniforms, policy_out, log_std, spec.discrete_actions)
        log_prob = networks.log_prob(policy_out, log_std, action, spec.discrete_actions)
        obs, env_state, reward, terminated, done, next_obs = step_envs(keys_env, spec, carry.env, action)
        ep_return = carry.env.episode_return + reward
        ep_length = carry.env.episode_length + 1
        ended = done.astype(jnp.float32)
        stats = stats + jnp.stack([jnp.sum(ended * ep_return), jnp.sum(ended * ep_length), jnp.sum(ended)])
        env = EnvCarry(
            env_state=env_state,
            obs=obs,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
        )
        new_carry = RecurrentCarry(env=env, hidden=hidden_seq[0], episode_start=done)
        out = RecurrentTrajectory(
            obs=carry.env.obs,
            action=action,
            log_prob=log_prob,
            value=value,
            reward=reward,
            terminated=terminated,
            done=done,
            next_obs=next_obs,
            hidden=carry.hidden,
            episode_start=carry.episode_start,
        )
        return (new_carry, stats), out

    (carry, stats), trajectory = jax.lax.scan(
        step, (carry, jnp.zeros((3,), jnp.float32)), (env_keys, action_uniforms)
    )
    return carry, trajectory, EpisodeStats(return_sum=stats[0], length_sum=stats[1], count=stats[2])


def bootstrap_values(
    params: Any, apply_fn: RecurrentApplyFn, trajectory: RecurrentTrajectory, final_hidden: jax.Array
) -> jax.Array:
    """``[T, N]`` V(s'_t) for GAE: one GRU step from the state after step ``t`` over the true next
    observation ``next_obs[t]`` (no reset: s'_t continues the episode of s_t).

    Where step ``t`` did not end an episode this equals ``value[t + 1]`` (same hidden state, same
    observation); at a truncation it values the final observation with the episode's memory; the
    last step is bootstrapped from ``final_hidden`` (the rollout's returned ``carry.hidden``).
    One batched call over all ``T * N`` steps, no scan.
    """
    T, N = trajectory.reward.shape
    after = jnp.concatenate([trajectory.hidden[1:], final_hidden[None]], axis=0)  # [T, N, H]
    next_obs = trajectory.next_obs.reshape((1, T * N) + trajectory.next_obs.shape[2:])
    _, _, value = apply_fn(
        params, after.reshape(T * N, -1), next_obs, jnp.zeros((1, T * N), jnp.bool_)
    )
    return value.reshape(T, N)


# --------------------------------------------------------------------------------------------
# Sequence minibatches and the BPTT loss
# --------------------------------------------------------------------------------------------
def to_sequences(x: jax.Array, seq_len: int) -> jax.Array:
    """``[T, N, ...]`` -> ``[seq_len, (T // seq_len) * N, ...]``: the rollout cut into sequences of
    ``seq_len`` consecutive steps of one env (sequence ``c * N + env`` is steps
    ``c * seq_len .. (c + 1) * seq_len - 1`` of ``env``).

    Raises:
        ValueError: ``seq_len`` does not divide ``T``.
    """
    T, N = x.shape[:2]
    if seq_len < 1 or T % seq_len:
        raise ValueError(f"seq_len must divide the rollout length {T}, got {seq_len}")
    chunks = T // seq_len
    x = x.reshape((chunks, seq_len, N) + x.shape[2:])
    return jnp.swapaxes(x, 0, 1).reshape((seq_len, chunks * N) + x.shape[3:])


def sequence_minibatches(
    batch: dict[str, jax.Array], perm: jax.Array, num_minibatches: int
) -> dict[str, jax.Array]:
    """Shuffles whole sequences (not transitions) into minibatches.

    Args:
        batch: ``{name: [K, S, ...]}``: ``S`` sequences of ``K`` steps each (``to_sequences``).
        perm: ``[S]`` int32 permutation of the sequences.
        num_minibatches: ``M``, dividing ``S``.

    Returns:
        ``{name: [M, K, S // M, ...]}``: minibatch ``m`` holds sequences ``perm[m * S/M : (m+1) * S/M]``,
        each in time order.

    Raises:
        ValueError: ``M`` does not divide ``S``.
    """
    num_seq = perm.shape[0]
    if num_minibatches < 1 or num_seq % num_minibatches:
        raise ValueError(
            f"num_minibatches must divide the number of sequences {num_seq}, got {num_minibatches}"
        )
    size = num_seq // num_minibatches

    def split(x: jax.Array) -> jax.Array:
        x = x[:, perm].reshape((x.shape[0], num_minibatches, size) + x.shape[2:])
        return jnp.swapaxes(x, 0, 1)

    return {name: split(x) for name, x in batch.items()}


def evaluate_sequence(
    params: Any,
    apply_fn: RecurrentApplyFn,
    hidden0: jax.Array,
    obs: jax.Array,
    episode_start: jax.Array,
    action: jax.Array,
    discrete_actions: bool,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Re-runs the GRU over sequences from their stored first hidden state (BPTT: the gradient
    flows through every step of the recurrence, and stops at episode starts).

    Args:
        hidden0: ``[B, H]`` the stored ``hidden`` of each sequence's first step.
        obs: ``[K, B, ...]``; episode_start: ``[K, B]`` bool; action: ``[K, B]`` (or ``[K, B, A]``).

    Returns:
        ``(log_prob, entropy, value)``, each ``[K, B]`` float32.
    """
    _, policy_out, value = apply_fn(params, hidden0, obs, episode_start)
    log_std = None if discrete_actions else params["params"]["towers"]["log_std"]
    steps, batch = value.shape
    policy_out = policy_out.reshape(steps * batch, -1)  # the distributions take [B, A]
    action = action.reshape((steps * batch,) + action.shape[2:])
    log_prob = networks.log_prob(policy_out, log_std, action, discrete_actions)
    entropy = networks.entropy(policy_out, log_std, discrete_actions)
    return log_prob.reshape(steps, batch), entropy.reshape(steps, batch), value


def bptt_loss(
    params: Any,
    apply_fn: RecurrentApplyFn,
    batch: dict[str, jax.Array],
    discrete_actions: bool,
    clip_eps: float | jax.Array,
    vf_coef: float | jax.Array,
    ent_coef: float | jax.Array,
    clip_value_loss: bool = False,
    normalize_advantage: bool = True,
) -> tuple[jax.Array, LossInfo]:
    """The PPO loss of one sequence minibatch, differentiated through time.

    Args:
        batch: leaves ``[K, B, ...]``: ``obs``, ``action``, ``log_prob``, ``value``, ``advantage``,
            ``target``, ``hidden`` (``[K, B, H]``; only step 0 is read) and ``episode_start``.

    Returns:
        ``(total, LossInfo)`` of ``losses.ppo_loss_terms`` over all ``K * B`` steps.
    """
    log_prob, entropy, value = evaluate_sequence(
        params, apply_fn, batch["hidden"][0], batch["obs"], batch["episode_start"], batch["action"],
        discrete_actions,
    )
    flat = lambda x: x.reshape(-1)  # noqa: E731
    return ppo_loss_terms(
        flat(log_prob), flat(batch["log_prob"]), flat(batch["advantage"]), flat(value),
        flat(batch["value"]), flat(batch["target"]), flat(entropy), clip_eps, vf_coef, ent_coef,
        clip_value_loss=clip_value_loss, normalize_advantage=normalize_advantage,
    )


# --------------------------------------------------------------------------------------------
# Greedy evaluation
# --------------------------------------------------------------------------------------------
def stateful_apply(apply_fn: RecurrentApplyFn) -> StatefulApplyFn:
    """One step of the recurrent policy in ``rollout.run_eval_episodes``' ``StatefulApplyFn`` form:
    ``(params, obs [B, ...], hidden [B, H], episode_start [B]) -> (policy_out [B, A], hidden')``,
    the hidden state reset where ``episode_start`` before the GRU step."""

    def apply(params: Any, obs: jax.Array, hidden: jax.Array, episode_start: jax.Array):
        hidden_seq, policy_out, _ = apply_fn(params, hidden, obs[None], episode_start[None])
        return policy_out[0], hidden_seq[0]

    return apply


def recurrent_log_std(params: Any, discrete_actions: bool) -> jax.Array | None:
    """The Gaussian policy's log-std ``[A]`` of a ``RecurrentActorCritic`` (None: categorical)."""
    return None if discrete_actions else params["params"]["towers"]["log_std"]


def run_recurrent_eval_episodes(
    key: jax.Array,
    params: Any,
    apply_fn: RecurrentApplyFn,
    spec: EnvSpec,
    num_envs: int,
    hidden_size: int,
    max_steps: int | None = None,
    greedy: bool | jax.Array = True,
) -> EvalEpisodes:
    """``rollout.run_eval_episodes`` for a recurrent policy: ``num_envs`` fresh episodes (returns,
    success, lengths, each ``[num_envs]``), each starting from a zero hidden state that is carried
    from step to step of the episode. ``greedy`` as there (a ``[num_envs]`` bool array mixes the
    greedy and the sampled policy); the same keys as the feedforward evaluation."""
    return run_eval_episodes(
        key, params, stateful_apply(apply_fn), spec, num_envs, max_steps, greedy,
        recurrent_log_std(params, spec.discrete_actions), memory=initial_hidden(num_envs, hidden_size),
    )


def evaluate_greedy_recurrent(
    key: jax.Array,
    params: Any,
    apply_fn: RecurrentApplyFn,
    spec: EnvSpec,
    num_envs: int,
    hidden_size: int,
    max_steps: int | None = None,
) -> jax.Array:
    """``rollout.evaluate_greedy`` for a recurrent policy: mean return ``()`` float32 of the greedy
    policy over ``num_envs`` fresh episodes (``run_recurrent_eval_episodes``), each capped at
    ``max_steps`` (default ``rollout.eval_max_steps(spec)``)."""
    episodes = run_recurrent_eval_episodes(key, params, apply_fn, spec, num_envs, hidden_size, max_steps)
    return episodes.returns.mean()


class HostGreedyPolicy:
    """The greedy recurrent policy for a host loop over one episode (``jaxgrid.replay_episode``'s
    ``policy(obs, state) -> action``): the hidden state lives in the object, zero at the first
    call (the episode's start) and carried from call to call. One object per episode."""

    def __init__(self, net: RecurrentActorCritic, params: Any, discrete_actions: bool):
        step = stateful_apply(net.apply)
        self._step = jax.jit(lambda hidden, obs, start: step(params, obs[None], hidden, start[None]))
        self._discrete = discrete_actions
        self._hidden = initial_hidden(1, net.rnn_hidden_size)
        self._start = True

    def __call__(self, obs: jax.Array, state: Any = None) -> Any:
        policy_out, self._hidden = self._step(self._hidden, obs, jnp.asarray(self._start))
        self._start = False
        return networks.greedy_action(policy_out, self._discrete)[0]


# --------------------------------------------------------------------------------------------
# The trainer's recurrent policy (``PPOConfig.rnn_hidden_size > 0``): per-run init, update and
# evaluation with ``train.ppo``'s signatures, which ``ppo.make_train`` dispatches to
# --------------------------------------------------------------------------------------------
# The trainer's GRU starts with its update gate's bias at 2 (z = σ(2) ≈ 0.88: each step keeps
# ~88% of the memory), as an LSTM's forget gate starts at 1 (Jozefowicz et al., ICML 2015). On
# TMaze-v0 (length 8, 4 seeds, 614k steps each) 0 solved 2 seeds of 4, 1 solved 3, 2 solved 3
# and reached 0.79 on the fourth (tuning runs, bench/memory.py has the 16-seed result).
UPDATE_GATE_BIAS = 2.0


def make_network(setup: Any) -> RecurrentActorCritic:
    """The ``RecurrentActorCritic`` of ``setup`` (a ``train.setup.TrainSetup`` whose config has
    ``rnn_hidden_size > 0``): the feedforward network's towers (``hidden_sizes``, ``activation``)
    after the GRU."""
    config, spec = setup.config, setup.spec
    return RecurrentActorCritic(
        action_dim=spec.action_dim,
        discrete_actions=spec.discrete_actions,
        obs_kind=spec.obs_kind,
        rnn_hidden_size=config.rnn_hidden_size,
        num_obs_categories=spec.num_obs_categories,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        update_gate_bias=UPDATE_GATE_BIAS,
    )


def policy_functions(setup: Any, placement: Any) -> tuple[Callable, Callable, Callable]:
    """``(init(key, setup), update(runner, hp, setup, envs), evaluate(runner, setup))`` of the
    recurrent policy: what ``ppo.make_train`` uses instead of ``ppo.init_runner_state``,
    ``ppo.update_step`` and ``ppo.evaluate`` when ``rnn_hidden_size > 0``.

    Raises:
        ValueError: env-parallel over a device count that does not divide a minibatch's env
            sequences (``check_env_split``), before anything is traced.
    """
    if placement.env_parallel:
        check_env_split(setup.config, placement.num_devices)
    net = make_network(setup)
    return (
        lambda key, setup: init_runner(key, setup, net),
        lambda runner, hp, setup, envs: update_step(runner, hp, setup, net, envs),
        lambda runner, setup: evaluate(runner, setup, net),
    )


def check_env_split(config: Any, num_shards: int) -> None:
    """Env-parallel training with a recurrent policy splits every minibatch's sequences
    (``num_envs / num_minibatches`` of them) over the devices.

    Raises:
        ValueError: the device count does not divide the sequences of a minibatch.
    """
    per_minibatch = config.num_sequences // config.num_minibatches
    if per_minibatch % num_shards:
        count = (f"num_envs / num_minibatches = {config.num_envs} / {config.num_minibatches}"
                 if config.bptt_length is None else
                 f"num_steps / bptt_length * num_envs / num_minibatches = {config.num_steps} / "
                 f"{config.bptt_length} * {config.num_envs} / {config.num_minibatches}")
        raise ValueError(
            f"env-parallel training with rnn_hidden_size > 0 splits each minibatch of "
            f"{per_minibatch} env sequences ({count}) over {num_shards} devices: that count must "
            "be a multiple of the device count"
        )


def init_runner(key: jax.Array, setup: Any, net: RecurrentActorCritic) -> Any:
    """``ppo.init_runner_state`` for the recurrent policy: ``runner.env`` is a ``RecurrentCarry``
    (zero hidden state, every env at an episode start). Keys drawn as the feedforward init does."""
    num_envs = setup.config.num_envs
    keys = jax.random.split(key, 2 + num_envs)
    key_params, key_run = keys[0], keys[1]
    carry = reset_recurrent(keys[2:], setup.spec, net.rnn_hidden_size)
    params = net.init(
        key_params,
        initial_hidden(1, net.rnn_hidden_size),
        carry.env.obs[None, :1],
        jnp.ones((1, 1), jnp.bool_),
    )
    opt_state = setup.optimizer(1.0).init(ravel_pytree(params)[0])
    return RunnerState(
        params=params, opt_state=opt_state, env=carry, key=key_run,
        update_step=jnp.zeros((), jnp.int32),
    )


def recurrent_randomness(
    key: jax.Array, config: Any, spec: EnvSpec
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """A whole update's randomness: ``(next key, env-step keys [T, N], action uniforms [T, N, A],
    epoch permutations of the S BPTT sequences [E, S])`` (``S = config.num_sequences``: ``N``
    with whole-rollout BPTT) (two random sites, as
    ``ppo.update_randomness``)."""
    T, N, A, E = config.num_steps, config.num_envs, spec.action_dim, config.update_epochs
    S = config.num_sequences  # N with whole-rollout BPTT (bptt_length None)
    keys = jax.random.split(key, 2 + T * N)
    env_keys = keys[2:].reshape((T, N) + keys.shape[1:])
    bits = jax.random.bits(keys[1], (T * N * A + E * S,), jnp.uint32)
    action_uniforms = networks.uniform_from_bits(bits[: T * N * A]).reshape(T, N, A)
    perms = permutations_from_bits(bits[T * N * A:].reshape(E, S))
    return keys[0], env_keys, action_uniforms, perms


# Length: 75 lines, 10 of them the docstring: the rollout, bootstrap, GAE and the epoch scan of
# sequence minibatches in order, as ``ppo.update_step``; its pieces are the functions above.
def update_step(
    runner: Any, hp: Any, setup: Any, net: RecurrentActorCritic, envs: Any = None
) -> tuple[Any, Any]:
    """``ppo.update_step`` for the recurrent policy: rollout carrying the hidden state, GAE on
    ``bootstrap_values``, then ``update_epochs`` passes over minibatches of env sequences
    (``to_sequences``: whole rollouts, or ``config.bptt_length`` steps each) with ``bptt_loss``,
    Adam on the flat parameter vector.

    ``envs``: ``ppo.LOCAL_ENVS`` (default) or ``dataparallel.SplitEnvs`` (inside a
    ``shard_map``): each device steps its envs, the packed per-step rollouts are gathered into
    the whole ``[T, N]`` batch, each device differentiates its slice of every minibatch's
    sequences (advantages normalised over the whole minibatch first) and the gradients are
    averaged (``envs.mean``).
    """
    envs = LOCAL_ENVS if envs is None else envs
    config, spec = setup.config, setup.spec
    T, N, M = config.num_steps, config.num_envs, config.num_minibatches
    shards = getattr(envs, "num_shards", 1)
    key, env_keys, action_uniforms, perms = recurrent_randomness(runner.key, config, spec)
    carry, traj, stats = collect_recurrent_rollout(
        envs.local(env_keys), envs.local(action_uniforms), runner.params, net.apply, spec, runner.env
    )
    next_values = bootstrap_values(runner.params, net.apply, traj, carry.hidden)
    advantages, targets = compute_gae(
        traj.reward, traj.value, next_values, traj.terminated, traj.done, hp.gamma, hp.gae_lambda
    )
    n = traj.reward.shape[1]
    flat = lambda x: x.reshape((T * n,) + x.shape[2:])  # noqa: E731
    packed, unpack = pack_batch({
        "obs": flat(traj.obs), "action": flat(traj.action), "log_prob": flat(traj.log_prob),
        "value": flat(traj.value), "advantage": flat(advantages), "target": flat(targets),
        "hidden": flat(traj.hidden), "episode_start": flat(traj.episode_start),
    })
    rows = unpack(envs.gather(packed, T))  # the whole batch, row t * N + env
    L, S = config.sequence_length, config.num_sequences
    whole = {k: to_sequences(v.reshape((T, N) + v.shape[1:]), L) for k, v in rows.items()}  # [L, S]
    whole["hidden"] = whole["hidden"][:1]  # a sequence's BPTT starts from its first hidden state
    lr = learning_rate_at(runner.update_step, hp, config)
    tx = setup.optimizer(hp.max_grad_norm)
    flat_params, unravel = ravel_pytree(runner.params)
    normalize_in_loss = config.normalize_advantage and shards == 1

    def loss_fn(flat_params: jax.Array, mb: dict[str, jax.Array]):
        return bptt_loss(
            unravel(flat_params), net.apply, mb, spec.discrete_actions, hp.clip_eps, hp.vf_coef,
            hp.ent_coef, clip_value_loss=config.clip_value_loss,
            normalize_advantage=normalize_in_loss,
        )

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def my_share(mbs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Leaves ``[M, L, B, ...]`` -> this device's ``[M, L, B / D, ...]`` (advantages
        normalised over the whole minibatch first)."""
        if shards == 1:
            return mbs
        if config.normalize_advantage:
            adv = mbs["advantage"]
            adv = jax.vmap(normalize_advantages)(adv.reshape(M, -1)).reshape(adv.shape)
            mbs = dict(mbs, advantage=adv)
        size = S // M // shards
        start = jax.lax.axis_index(envs.axis_name) * size
        return {k: jax.lax.dynamic_slice_in_dim(v, start, size, axis=2) for k, v in mbs.items()}

    def sgd_step(state, mb):
        flat_params, opt_state = state
        grads, info = envs.mean(grad_fn(flat_params, mb))
        updates, opt_state = tx.update(grads, opt_state)
        return (flat_params - lr * updates, opt_state), stack_fields(info)

    def epoch(state, perm):
        return jax.lax.scan(sgd_step, state, my_share(sequence_minibatches(whole, perm, M)))

    (flat_params, opt_state), infos = jax.lax.scan(epoch, (flat_params, runner.opt_state), perms)
    infos = unstack_fields(LossInfo, infos.mean((0, 1)))
    metrics = update_metrics(envs.total(stats), infos, whole["value"], whole["target"], lr)
    return next_runner(runner, unravel(flat_params), opt_state, carry, key), metrics


def evaluate(runner: Any, setup: Any, net: RecurrentActorCritic) -> jax.Array:
    """``ppo.evaluate`` for the recurrent policy: mean greedy return ``()`` over
    ``num_eval_envs`` fresh episodes (``evaluate_greedy_recurrent``), each capped at
    ``evaluation_budget``'s step cap, from a key folded out of the runner's key as the
    feedforward evaluation does."""
    key = jax.random.fold_in(runner.key, 0x5EED)
    _, max_steps = evaluation_budget(setup.config, setup.spec)
    return evaluate_greedy_recurrent(
        key, runner.params, net.apply, setup.spec, setup.config.num_eval_envs, net.rnn_hidden_size,
        max_steps,
    )


def _episode_runner(setup: Any) -> Callable[..., EvalEpisodes]:
    """The recurrent ``PolicyKind.episode_runner``: ``run_recurrent_eval_episodes`` of the run."""
    net = make_network(setup)

    def run(p: Any, key: jax.Array, num_envs: int, max_steps: int, greedy: Any) -> EvalEpisodes:
        return run_recurrent_eval_episodes(key, p, net.apply, setup.spec, num_envs, net.rnn_hidden_size, max_steps, greedy)

    return run


POLICY_KIND = PolicyKind(
    functions=policy_functions,
    episode_runner=_episode_runner,
    host_greedy=lambda setup, params: HostGreedyPolicy(make_network(setup), params, setup.spec.discrete_actions),
)
