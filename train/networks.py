"""Actor-critic networks, orthogonal initialisation and action distributions.

The actor and the critic are two separate MLP towers (PureJaxRL/CleanRL style), but their weights
are stacked on a leading axis of size 2 so one batched matmul per layer computes both towers: the
fused forward pass costs one op per layer instead of two, which matters on CPU where PPO's update is
dominated by many tiny ops.

Observations are encoded by kind:
- ``"discrete"``: a ``Discrete(n)`` index; one-hot encoded (done as a row look-up of the first
  layer's kernel, which is the same arithmetic as ``one_hot(obs) @ W``);
- ``"vector"``: a flat ``Box``; fed as is (other non-image shapes are flattened);
- ``"image"``: a ``Box`` of rank 3 (H, W, C), by the network's ``encoder``: ``"dense"`` (the
  flattened image straight into the towers' first layer), ``"embed"`` (each cell's channels read
  as a cell-kind code, a learned embedding per code, flattened into the towers), or ``"cnn"`` (two
  3x3 convolutions, 16 and 32 channels, shared by both towers). ``bench/encoders.py`` measures
  them; ``train.setup.resolve_encoder`` picks one for ``PPOConfig.encoder="auto"``.

Every kernel is orthogonally initialised with the gain declared beside its layer
(``ActorCritic.orthogonal_kernels``: sqrt 2 for hidden layers and encoders, 0.01 for the actor
head, 1 for the critic head); biases and the Gaussian log-std start at zero.

NOTE: ``flax.linen.initializers.orthogonal`` uses a QR decomposition (LAPACK). On jaxlib 0.10.2's
CPU backend a batched LAPACK kernel inside a jitted, vmapped program can deadlock, so this module
builds orthogonal matrices with Gram-Schmidt in plain ``jnp`` ops instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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

ImageEncoder = Literal["dense", "embed", "cnn"]
IMAGE_ENCODERS: tuple[str, ...] = ("dense", "embed", "cnn")

# Orthogonal-init gains (the PPO implementation-details choice, Huang et al. 2022): sqrt 2 before a
# nonlinearity, 0.01 for the policy head (near-uniform initial policy), 1 for the value head.
HIDDEN_GAIN = math.sqrt(2.0)
ACTOR_HEAD_GAIN = 0.01
CRITIC_HEAD_GAIN = 1.0

CNN_FEATURES = (16, 32)  # channels of the CNN encoder's two 3x3 convolutions
EMBED_DIM = 8  # width of the embedding encoder's per-cell vector


@dataclass(frozen=True)
class OrthogonalKernel:
    """How one parameter is initialised: orthogonal with ``gain`` (every singular value), as
    ``count`` independent matrices stacked on a leading axis (``count=0``: the parameter is one
    matrix; its last axis is the output axis, the others are flattened into rows)."""

    gain: float
    count: int = 0

    def initializer(self):
        """The flax initializer of this parameter (``orthogonal``, or ``stacked`` of it)."""
        init = orthogonal(self.gain)
        return stacked(init, self.count) if self.count else init


class ActorCritic(nn.Module):
    """Two-tower actor-critic, evaluated as one fused pass.

    ``__call__(obs)`` with ``obs`` of shape ``[B, *obs_shape]`` returns ``(policy_out, value)``:
    ``policy_out`` is logits ``[B, A]`` for a categorical policy or the Gaussian mean ``[B, A]``;
    ``value`` is ``[B]``. The Gaussian log-std is the parameter ``log_std`` (state-independent).
    ``encoder`` chooses the image encoder (``obs_kind="image"`` only; see the module docstring).
    """

    action_dim: int
    discrete_actions: bool
    obs_kind: ObsKind
    num_obs_categories: int = 0  # n of a Discrete observation space, else unused
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    encoder: ImageEncoder = "cnn"

    def orthogonal_kernels(self) -> dict[tuple[str, ...], OrthogonalKernel]:
        """Every orthogonally initialised parameter, by its path in ``params["params"]``, with its
        gain: the one table both the layer declarations (``__call__``) and ``init_params`` read.
        Every other parameter (biases, ``log_std``) starts at zero."""
        table = {("actor_head", "kernel"): OrthogonalKernel(ACTOR_HEAD_GAIN),
                 ("critic_head", "kernel"): OrthogonalKernel(CRITIC_HEAD_GAIN)}
        for i in range(len(self.hidden_sizes)):  # [2, in, out]: the actor's and the critic's
            table[(f"tower_{i}_kernel",)] = OrthogonalKernel(HIDDEN_GAIN, count=2)
        if self.obs_kind == "image" and self.encoder == "cnn":
            for i in range(len(CNN_FEATURES)):
                table[(f"Conv_{i}", "kernel")] = OrthogonalKernel(HIDDEN_GAIN)
        if self.obs_kind == "image" and self.encoder == "embed":
            table[("cell_embedding",)] = OrthogonalKernel(HIDDEN_GAIN)
        return table

    def _encode(self, obs: jax.Array) -> jax.Array:
        """Image and vector encoding: flat float32 features ``[B, F]``."""
        if self.obs_kind != "image" or self.encoder == "dense":
            return obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        x = obs.astype(jnp.float32)
        if x.ndim == 3:  # [B, H, W] -> one channel
            x = x[..., None]
        kernels = self.orthogonal_kernels()
        if self.encoder == "embed":
            # The channels of a cell are 0/1 flags of its kinds (wall, goal, lava, agent, ...):
            # the code sum_c x_c 2^c names the combination, and each code has its own vector.
            # NOTE: a one-hot matmul, not a row gather (the gather's gradient is a scatter-add).
            num_codes = 2 ** x.shape[-1]
            code = jnp.einsum("bhwc,c->bhw", x, 2.0 ** jnp.arange(x.shape[-1], dtype=jnp.float32))
            table = self.param("cell_embedding", kernels[("cell_embedding",)].initializer(),
                               (num_codes, EMBED_DIM))
            x = jax.nn.one_hot(code.astype(jnp.int32), num_codes) @ table  # [B, H, W, E]
            return jnp.tanh(x).reshape(x.shape[0], -1)
        for i, features in enumerate(CNN_FEATURES):
            x = nn.Conv(
                features,
                (3, 3),
                padding="SAME",
                kernel_init=kernels[(f"Conv_{i}", "kernel")].initializer(),
                bias_init=nn.initializers.zeros,
                name=f"Conv_{i}",
            )(x)
            x = jax.nn.relu(x)
        return x.reshape(x.shape[0], -1)

    # Length: 64 lines, 6 of them the docstring: the fused two-tower pass (encoder, stacked hidden
    # layers, both heads) in one place, so its layer declarations match ``orthogonal_kernels``.
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
        kernels = self.orthogonal_kernels()
        if self.obs_kind == "discrete":
            in_dim = self.num_obs_categories
        else:
            x = self._encode(obs)
            in_dim = x.shape[-1]

        h = None
        prev = in_dim
        for i, width in enumerate(self.hidden_sizes):
            kernel = self.param(f"tower_{i}_kernel", kernels[(f"tower_{i}_kernel",)].initializer(),
                                (2, prev, width))
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
            1,
            kernel_init=kernels[("critic_head", "kernel")].initializer(),
            bias_init=nn.initializers.zeros,
            name="critic_head",
        )(critic_h)[:, 0]
        if critic_only:
            return None, value
        policy_out = nn.Dense(
            self.action_dim,
            kernel_init=kernels[("actor_head", "kernel")].initializer(),
            bias_init=nn.initializers.zeros,
            name="actor_head",
        )(h[0])
        if not self.discrete_actions:
            self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return policy_out, value


def init_params(key: jax.Array, network: ActorCritic, sample_obs: jax.Array) -> Any:
    """Initialises ``network`` with one random draw and one batched Gram-Schmidt.

    Same distribution as ``network.init`` (the kernels of ``network.orthogonal_kernels()``
    orthogonal with their gains, every other parameter zero) but compiles much faster: every
    random-number site costs XLA-CPU compile time (~0.3-0.6 s each for threefry), so all kernels
    share a single ``normal`` draw, zero-padded into one ``[L, M, K]`` stack and orthonormalised by
    one vmapped scan. The matrices are drawn in the order of the flattened parameter tree.

    Raises:
        ValueError: a parameter of the table is missing from the network, or has the wrong rank.
    """
    shapes = jax.eval_shape(network.init, jax.random.PRNGKey(0), sample_obs)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    kernels = network.orthogonal_kernels()
    found = set()
    mats = []  # (leaf index, matrix shape, gain)
    for i, (path, leaf) in enumerate(leaves):
        names = tuple(str(getattr(p, "key", p)) for p in path)
        if names[0] != "params" or names[1:] not in kernels:
            continue
        spec = kernels[names[1:]]
        found.add(names[1:])
        shape = leaf.shape[1:] if spec.count else leaf.shape
        if len(shape) < 2 or (spec.count and leaf.shape[0] != spec.count):
            raise ValueError(f"parameter {'/'.join(names)} of shape {leaf.shape} is not {spec}")
        mats.extend([(i, shape, spec.gain)] * max(spec.count, 1))
    if found != set(kernels):
        missing = sorted("/".join(p) for p in set(kernels) - found)
        raise ValueError(f"{type(network).__name__}.orthogonal_kernels() names parameters it lacks: {missing}")
    talls = [(max(math.prod(s[:-1]), s[-1]), min(math.prod(s[:-1]), s[-1])) for _, s, _ in mats]
    big_m = max(t[0] for t in talls)
    big_k = max(t[1] for t in talls)
    gaussian = jax.random.normal(key, (len(mats), big_m, big_k), jnp.float32)
    mask = jnp.stack([
        (jnp.arange(big_m)[:, None] < m) & (jnp.arange(big_k)[None, :] < k) for m, k in talls
    ])
    q_all = jax.vmap(_orthonormal_columns)(jnp.where(mask, gaussian, 0.0))

    values = [jnp.zeros(leaf.shape, leaf.dtype) for _, leaf in leaves]
    per_leaf: dict[int, list[jax.Array]] = {}
    for j, ((i, shape, gain), (m, k)) in enumerate(zip(mats, talls)):
        q = q_all[j, :m, :k]
        if math.prod(shape[:-1]) < shape[-1]:
            q = q.T
        per_leaf.setdefault(i, []).append(gain * q.reshape(shape))
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
