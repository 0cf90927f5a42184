"""Actor-critic networks, orthogonal initialisation and action distributions.

The actor and the critic are two separate MLP towers (PureJaxRL/CleanRL style), but their weights
are stacked on a leading axis of size 2 so one batched matmul per layer computes both towers: the
fused forward pass costs one op per layer instead of two, which matters on CPU where PPO's update is
dominated by many tiny ops.

Observations are encoded by kind:
- ``"discrete"``: a ``Discrete(n)`` index; one-hot encoded (done as a row look-up of the first
  layer's kernel, which is the same arithmetic as ``one_hot(obs) @ W``);
- ``"vector"``: a flat ``Box``; fed as is (other non-image shapes are flattened);
- ``"image"``: a ``Box`` of rank 3 (H, W, C); a small CNN shared by both towers.

NOTE: ``flax.linen.initializers.orthogonal`` uses a QR decomposition (LAPACK). On jaxlib 0.10.2's
CPU backend a batched LAPACK kernel inside a jitted, vmapped program can deadlock, so this module
builds orthogonal matrices with Gram-Schmidt in plain ``jnp`` ops instead.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

ObsKind = Literal["discrete", "vector", "image"]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# Orthogonal initialisation without LAPACK
# --------------------------------------------------------------------------------------------
def _orthonormal_columns(gaussian: jax.Array) -> jax.Array:
    """Orthonormalises the columns of a tall ``[m, k]`` matrix (``m >= k``) by Gram-Schmidt.

    Classical Gram-Schmidt with one re-orthogonalisation pass ("CGS2"), which is as accurate as
    Householder QR in float32. The result equals the Q of a QR decomposition whose R has a positive
    diagonal, so for a Gaussian input Q is Haar-distributed (uniform over the Stiefel manifold).
    All-zero columns stay zero, so a matrix zero-padded with extra rows/columns orthonormalises its
    top-left block exactly as the block alone (``init_params`` batches every layer this way).
    """
    m, k = gaussian.shape
    cols = jnp.arange(k)

    def add_column(q: jax.Array, j: jax.Array) -> tuple[jax.Array, None]:
        v = jax.lax.dynamic_index_in_dim(gaussian, j, axis=1, keepdims=False)
        mask = (cols < j).astype(gaussian.dtype)  # columns already filled
        for _ in range(2):  # project out the filled columns twice
            v = v - q @ ((q.T @ v) * mask)
        norm = jnp.linalg.norm(v)
        v = v / jnp.where(norm > 0, norm, 1.0)
        return jax.lax.dynamic_update_index_in_dim(q, v, j, axis=1), None

    q, _ = jax.lax.scan(add_column, jnp.zeros((m, k), gaussian.dtype), cols)
    return q


def orthogonal_from_gaussian(gaussian: jax.Array, shape: tuple[int, ...], scale: float) -> jax.Array:
    """Turns a standard-normal ``[max(r, c), min(r, c)]`` draw into an orthogonal ``shape`` matrix.

    ``r`` is the product of all but the last axis of ``shape`` and ``c`` the last one.
    """
    n_rows, n_cols = math.prod(shape[:-1]), shape[-1]
    q = _orthonormal_columns(gaussian)
    if n_rows < n_cols:
        q = q.T
    return (scale * q).reshape(shape)


def orthogonal(scale: float = 1.0):
    """A flax-compatible initializer for (semi-)orthogonal matrices, times ``scale``.

    Same contract as ``flax.linen.initializers.orthogonal`` (the last axis is the output axis; all
    leading axes are flattened into rows) but QR-free, so it is safe inside jit/vmap on every
    backend.

    Args:
        scale: the gain; every singular value of the result equals ``scale``.
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"orthogonal init needs a shape of rank >= 2, got {shape}")
        n_rows, n_cols = math.prod(shape[:-1]), shape[-1]
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        gaussian = jax.random.normal(key, tall, jnp.float32)
        return orthogonal_from_gaussian(gaussian, shape, scale).astype(dtype)

    return init


def stacked(initializer, count: int):
    """Initializer for ``[count, *shape]``: ``count`` independent draws of ``initializer``."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if shape[0] != count:
            raise ValueError(f"expected leading axis {count}, got shape {shape}")
        keys = jax.random.split(key, count)
        return jnp.stack([initializer(k, shape[1:], dtype) for k in keys])

    return init


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


class ActorCritic(nn.Module):
    """Two-tower actor-critic, evaluated as one fused pass.

    ``__call__(obs)`` with ``obs`` of shape ``[B, *obs_shape]`` returns ``(policy_out, value)``:
    ``policy_out`` is logits ``[B, A]`` for a categorical policy or the Gaussian mean ``[B, A]``;
    ``value`` is ``[B]``. The Gaussian log-std is the parameter ``log_std`` (state-independent).
    """

    action_dim: int
    discrete_actions: bool
    obs_kind: ObsKind
    num_obs_categories: int = 0  # n of a Discrete observation space, else unused
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    def _encode(self, obs: jax.Array) -> jax.Array:
        """Shared input encoding: flat features [B, F] (only the CNN has parameters here)."""
        if self.obs_kind == "image":
            x = obs.astype(jnp.float32)
            if x.ndim == 3:  # [B, H, W] -> one channel
                x = x[..., None]
            for features in (16, 32):
                x = nn.Conv(
                    features,
                    (3, 3),
                    padding="SAME",
                    kernel_init=orthogonal(math.sqrt(2.0)),
                    bias_init=nn.initializers.zeros,
                )(x)
                x = jax.nn.relu(x)
            return x.reshape(x.shape[0], -1)
        return obs.reshape(obs.shape[0], -1).astype(jnp.float32)

    @nn.compact
    def __call__(
        self, obs: jax.Array, critic_only: bool = False, every_obs: bool = False
    ) -> tuple[jax.Array | None, jax.Array]:
        """``critic_only`` (static) skips the actor tower and returns ``(None, value)``.

        ``every_obs`` (static, Discrete observations only): evaluate on every observation
        ``0..n-1`` in order (``obs`` is then only a placeholder); the first layer's one-hot matmul
        is then the identity, so the kernel is used as is (same values as ``obs=arange(n)``).
        """
        act = _ACTIVATIONS[self.activation]
        gain = math.sqrt(2.0)
        if self.obs_kind == "discrete":
            in_dim = self.num_obs_categories
        else:
            in_dim = None  # inferred below
            x = self._encode(obs)
            in_dim = x.shape[-1]

        h = None
        prev = in_dim
        for i, width in enumerate(self.hidden_sizes):
            kernel = self.param(f"tower_{i}_kernel", stacked(orthogonal(gain), 2), (2, prev, width))
            bias = self.param(f"tower_{i}_bias", nn.initializers.zeros, (2, width))
            if critic_only:  # tower 1 is the critic
                kernel, bias = kernel[1:], bias[1:]
            if i == 0:
                if self.obs_kind == "discrete" and every_obs:
                    h = kernel  # one_hot(arange(n)) @ kernel: [2, n, width]
                elif self.obs_kind == "discrete":
                    # NOTE: a one-hot matmul, not a row gather W[obs]: same arithmetic, but the
                    # gather's gradient is a scatter-add, which XLA:CPU runs slowly under vmap.
                    x = jax.nn.one_hot(obs.reshape(obs.shape[0]), self.num_obs_categories)
                    h = jnp.einsum("bi,kio->kbo", x, kernel)  # [2, B, width]
                else:
                    h = jnp.einsum("bi,kio->kbo", x, kernel)
            else:
                h = jnp.einsum("kbi,kio->kbo", h, kernel)
            h = act(h + bias[:, None, :])
            prev = width

        if h is None:  # no hidden layers: both heads read the encoded input
            if self.obs_kind == "discrete" and every_obs:
                x = jnp.eye(self.num_obs_categories, dtype=jnp.float32)
            elif self.obs_kind == "discrete":
                x = jax.nn.one_hot(obs.reshape(obs.shape[0]), self.num_obs_categories)
            h = jnp.stack([x] if critic_only else [x, x])
        critic_h = h[-1]
        value = nn.Dense(
            1, kernel_init=orthogonal(1.0), bias_init=nn.initializers.zeros, name="critic_head"
        )(critic_h)[:, 0]
        if critic_only:
            return None, value
        policy_out = nn.Dense(
            self.action_dim,
            kernel_init=orthogonal(0.01),
            bias_init=nn.initializers.zeros,
            name="actor_head",
        )(h[0])
        if not self.discrete_actions:
            self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return policy_out, value


def kernel_gain(path: tuple[str, ...]) -> float:
    """The orthogonal-init gain of a kernel, from its parameter path: 0.01 for the actor head,
    1 for the critic head, sqrt(2) for hidden layers (the PPO implementation-details choice)."""
    if "actor_head" in path:
        return 0.01
    if "critic_head" in path:
        return 1.0
    return math.sqrt(2.0)


def init_params(key: jax.Array, network: ActorCritic, sample_obs: jax.Array) -> Any:
    """Initialises ``network`` with one random draw and one batched Gram-Schmidt.

    Same distribution as ``network.init`` (orthogonal kernels with ``kernel_gain``, zero biases and
    log-std) but compiles much faster: every random-number site costs XLA-CPU compile time
    (~0.3-0.6 s each for threefry), so all kernels share a single ``normal`` draw, zero-padded into
    one ``[L, M, K]`` stack and orthonormalised by one vmapped scan.
    """
    shapes = jax.eval_shape(network.init, jax.random.PRNGKey(0), sample_obs)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    # Each kernel is one or more matrices: tower kernels [2, in, out] hold two, conv [h, w, i, o] one.
    mats = []  # (leaf index, matrix shape, tall shape)
    for i, (path, leaf) in enumerate(leaves):
        names = tuple(str(getattr(p, "key", p)) for p in path)
        if not any("kernel" in n for n in names):
            continue
        if names[-1].startswith("tower_"):
            for _ in range(leaf.shape[0]):
                mats.append((i, leaf.shape[1:]))
        else:
            mats.append((i, leaf.shape))
    talls = [
        (max(math.prod(s[:-1]), s[-1]), min(math.prod(s[:-1]), s[-1])) for _, s in mats
    ]
    big_m = max(t[0] for t in talls)
    big_k = max(t[1] for t in talls)
    gaussian = jax.random.normal(key, (len(mats), big_m, big_k), jnp.float32)
    mask = jnp.stack([
        (jnp.arange(big_m)[:, None] < m) & (jnp.arange(big_k)[None, :] < k) for m, k in talls
    ])
    q_all = jax.vmap(_orthonormal_columns)(jnp.where(mask, gaussian, 0.0))

    values = [jnp.zeros(leaf.shape, leaf.dtype) for _, leaf in leaves]
    per_leaf: dict[int, list[jax.Array]] = {}
    for j, ((i, shape), (m, k)) in enumerate(zip(mats, talls)):
        names = tuple(str(getattr(p, "key", p)) for p in leaves[i][0])
        q = q_all[j, :m, :k]
        if math.prod(shape[:-1]) < shape[-1]:
            q = q.T
        per_leaf.setdefault(i, []).append(kernel_gain(names) * q.reshape(shape))
    for i, mats_i in per_leaf.items():
        leaf = leaves[i][1]
        values[i] = jnp.stack(mats_i).reshape(leaf.shape).astype(leaf.dtype)
    return jax.tree_util.tree_unflatten(treedef, values)


# --------------------------------------------------------------------------------------------
# Distributions (pure functions; ``discrete`` is static)
# --------------------------------------------------------------------------------------------
def uniform_from_bits(bits: jax.Array) -> jax.Array:
    """uint32 random bits -> float32 uniforms in [2^-24, 1) (never 0, so logs stay finite)."""
    mantissa = jnp.right_shift(bits.astype(jnp.uint32), jnp.uint32(9)) | jnp.uint32(0x3F800000)
    u = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0  # [0, 1) in steps of 2^-23
    return jnp.maximum(u, jnp.float32(2.0**-24))


def sample_action_from_uniform(
    uniform: jax.Array, policy_out: jax.Array, log_std: jax.Array | None, discrete: bool
) -> jax.Array:
    """Samples actions from pre-drawn uniforms ``[B, A]`` in (0, 1).

    Categorical: Gumbel-max, ``argmax(logits - log(-log u))``; Gaussian: ``mean + σ·Φ⁻¹(u)``.
    Returns ``[B]`` int32 or ``[B, A]`` float32.
    """
    if discrete:
        gumbel = -jnp.log(-jnp.log(uniform))
        return jnp.argmax(policy_out + gumbel, axis=-1).astype(jnp.int32)
    normal = jnp.sqrt(2.0) * jax.lax.erf_inv(2.0 * uniform - 1.0)
    return policy_out + jnp.exp(log_std) * normal


def sample_action(
    key: jax.Array, policy_out: jax.Array, log_std: jax.Array | None, discrete: bool
) -> jax.Array:
    """Samples actions: ``[B]`` int32 for categorical logits, ``[B, A]`` float32 for a Gaussian."""
    uniform = jax.random.uniform(
        key, policy_out.shape, minval=jnp.float32(2.0**-24), maxval=1.0
    )
    return sample_action_from_uniform(uniform, policy_out, log_std, discrete)


def log_prob(
    policy_out: jax.Array, log_std: jax.Array | None, action: jax.Array, discrete: bool
) -> jax.Array:
    """Log-probability ``[B]`` of ``action`` under the policy."""
    if discrete:
        logp_all = jax.nn.log_softmax(policy_out, axis=-1)
        # NOTE: a one-hot dot, not take_along_axis: avoids a gather/scatter pair in the gradient.
        one_hot = jax.nn.one_hot(action, policy_out.shape[-1], dtype=logp_all.dtype)
        return jnp.sum(one_hot * logp_all, axis=-1)
    z = (action - policy_out) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def entropy(policy_out: jax.Array, log_std: jax.Array | None, discrete: bool) -> jax.Array:
    """Entropy ``[B]`` of the policy."""
    if discrete:
        logp_all = jax.nn.log_softmax(policy_out, axis=-1)
        return -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    ent = jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI))
    return jnp.broadcast_to(ent, policy_out.shape[:1])


def greedy_action(policy_out: jax.Array, discrete: bool) -> jax.Array:
    """The deterministic (evaluation) action: the argmax for logits, the mean for a Gaussian."""
    if discrete:
        return jnp.argmax(policy_out, axis=-1).astype(jnp.int32)
    return policy_out
