"""How a config's network is evaluated and optimised: ``TrainSetup`` (env spec, network, the
observation-table strategy, the optimiser), built once per config by ``make_setup``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from train import feature_major, networks
from train.config import PPOConfig
from train.envs import make_env
from train.rollout import EnvSpec, describe_env


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

    With ``feature_major`` (flat ``"vector"`` observations, e.g. CartPole, images through the
    ``"dense"`` encoder, a flattened image being a vector, and ``Discrete`` observations without
    the table, whose one-hot first layer is a row gather) the same network is evaluated by
    ``train.feature_major.apply``: activations ``[features, batch]`` and matmuls that stay on
    XLA:CPU's fast dot kernels (the same function up to float rounding).
    """

    config: PPOConfig
    spec: EnvSpec
    network: networks.ActorCritic
    obs_table: bool = False
    feature_major: bool = False

    def _feature_major(self, params: Any, obs: jax.Array, critic_only: bool = False):
        categories = self.spec.num_obs_categories if self.spec.obs_kind == "discrete" else 0
        return feature_major.apply(
            params, obs, len(self.config.hidden_sizes), self.config.activation, critic_only, categories
        )

    def _table(self, params: Any, critic_only: bool = False):
        every_obs = jnp.arange(self.spec.num_obs_categories, dtype=jnp.int32)
        return self.network.apply(params, every_obs, critic_only=critic_only, every_obs=True)

    def apply(self, params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.feature_major:
            return self._feature_major(params, obs)
        if not self.obs_table:
            return self.network.apply(params, obs)
        policy_table, value_table = self._table(params)
        table = jnp.concatenate([policy_table, value_table[:, None]], axis=1)  # [n, A + 1]
        one_hot = jax.nn.one_hot(obs.reshape(-1), table.shape[0], dtype=table.dtype)
        out = one_hot @ table
        return out[:, :-1], out[:, -1]

    def value(self, params: Any, obs: jax.Array) -> jax.Array:
        if self.feature_major:
            return self._feature_major(params, obs, critic_only=True)[1]
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
        log_std = log_std_of(params, self)
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
        """``(params', apply')`` for a stretch of steps under fixed ``params``: with the table
        (or ``Discrete`` observations without it under ``obs_table="auto"``), ``params'``
        carries the network's outputs on every observation (and the parameters, e.g. a
        Gaussian's ``log_std``) and ``apply'`` only gathers rows; otherwise ``(params, apply)``."""
        if self.obs_table:
            table = self._table(params)
        elif self.feature_major and self.spec.obs_kind == "discrete" and self.config.obs_table == "auto":
            # NOTE: without the table in the loss (n > minibatch, "auto"), a rollout step still
            # has only n possible observations: one pass over all of them, then a gather per step.
            table = self._feature_major(params, jnp.arange(self.spec.num_obs_categories, dtype=jnp.int32))
        else:
            return params, self.apply
        frozen = {"params": params["params"], "obs_table": table}

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
    encoder = resolve_encoder(config, spec)
    network = networks.ActorCritic(
        action_dim=spec.action_dim,
        discrete_actions=spec.discrete_actions,
        obs_kind=spec.obs_kind,
        num_obs_categories=spec.num_obs_categories,
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        encoder=encoder,
    )
    # The dense image encoder only flattens the image: the towers see a vector, with the same
    # parameters as for a "vector" observation of that size.
    flat = spec.obs_kind == "vector" or (spec.obs_kind == "image" and encoder == "dense")
    obs_table = resolve_obs_table(config, spec)
    # Discrete observations without the table (n > minibatch, or obs_table="off"): the one-hot
    # first layer is a look-up of its kernel, then the feature-major towers (results version 3).
    index = spec.obs_kind == "discrete" and not obs_table
    return TrainSetup(
        config=config,
        spec=spec,
        network=network,
        obs_table=obs_table,
        feature_major=flat or index,
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


def resolve_encoder(config: PPOConfig, spec: EnvSpec) -> networks.ImageEncoder:
    """The image encoder of ``config`` (``PPOConfig.encoder``); ``"auto"`` is ``"dense"``.

    ``bench/encoders.py`` (bench/results/encoders.json) timed one minibatch's forward and backward
    pass of each encoder on the procedural envs' observation shapes (9x9, 13x13 grids, 7x7 and 5x5
    views): the dense layer on the flattened image was the fastest on CPU, by a wide margin over
    the CNN, and it is one small matmul on a GPU as well.

    Raises:
        ValueError: ``"embed"`` or ``"cnn"`` for observations that are not images.
    """
    if config.encoder in ("embed", "cnn") and spec.obs_kind != "image":
        raise ValueError(
            f"PPOConfig.encoder={config.encoder!r} needs image observations (a Box of rank 3), but "
            f"{config.env_id!r} has {spec.env.observation_space(spec.env_params)!r}; valid choices "
            "here: 'auto', 'dense'"
        )
    return "dense" if config.encoder == "auto" else config.encoder


def log_std_of(params: Any, setup: TrainSetup) -> jax.Array | None:
    """The Gaussian policy's log-std parameter ``[A]`` (None for a categorical policy)."""
    return None if setup.spec.discrete_actions else params["params"]["log_std"]
