"""The actor-critic MLP of ``train.networks.ActorCritic`` evaluated feature-major, for XLA:CPU.

Same parameters, same function (up to float rounding) as ``ActorCritic.apply`` on a flat
(``"vector"``) observation, but every hidden activation is kept as ``[features, batch]`` and each
layer is a ``linear`` with a hand-written backward pass, so that all three matmuls of a dense layer
(forward, input gradient, weight gradient) contract over a contiguous axis:

    forward      y^T  = W^T h^T           NN, with W^T materialised once per call (a 64x64 copy)
    input grad   dh^T = W dy^T            NN
    weight grad  dW   = h^T (dy^T)^T      NT (contracts over the batch, which is contiguous)

NOTE: why. In the batch-major form (``h @ W``) the weight gradient ``h^T dy`` contracts over the
leading (strided) batch axis; XLA:CPU then leaves its fast dot kernels (YNNPACK) for a generic one
(measured on this 2-core EPYC, one core: 64 vs 43 us for a 512x64x64 dot), and for the towers'
stacked ``einsum("kbi,kio->kbo")`` it also picks transposed activation layouts that make the tanh
and its gradient strided copies. A PPO minibatch step of the 64x64 two-tower MLP on a 512-sample
minibatch of CartPole: ~710 us as ``ActorCritic`` (stacked towers), ~430 us as two plain towers,
~360 us feature-major (``bench/rejax_peer.py`` measures whole training runs). The optimization
barriers keep XLA from folding a materialised transpose back into the dot (which would undo it).

``TrainSetup`` (``train.setup``) uses this for ``"vector"`` observations, for images through the
``"dense"`` encoder (which only flattens them: the same parameters) and for ``"discrete"``
observations without the observation table (``num_categories``: the first layer is
``index_linear``, a look-up of its kernel, exactly the one-hot matmul forward, with a
scatter-add gradient); the observation table and the ``"embed"``/``"cnn"`` image encoders keep
``ActorCritic.apply``. NOTE: on FourRooms-v0 (``Discrete(169)``, PPOConfig defaults: no table)
this made training ~2x faster than ``ActorCritic``'s one-hot einsum, whose weight gradients left
the fast dot kernels (``bench/encoders.py``; README "Results versions": version 3).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
_NT = (((1,), (1,)), ((), ()))  # dot_general dimension numbers: contract both operands' last axis


@jax.custom_vjp
def linear(kernel: jax.Array, bias: jax.Array, h_t: jax.Array) -> jax.Array:
    """``(h @ kernel + bias)^T`` from ``h_t = h^T``: kernel ``[I, O]``, bias ``[O]``, h_t ``[I, B]``
    -> ``[O, B]`` float32."""
    kernel_t = jax.lax.optimization_barrier(kernel.T)
    return kernel_t @ h_t + bias[:, None]


def _linear_fwd(kernel, bias, h_t):
    return linear(kernel, bias, h_t), (kernel, h_t)


def _linear_bwd(residuals, g_t):
    kernel, h_t = residuals
    return jax.lax.dot_general(h_t, g_t, _NT), g_t.sum(axis=1), kernel @ g_t


linear.defvjp(_linear_fwd, _linear_bwd)


@jax.custom_vjp
def input_linear(kernel: jax.Array, bias: jax.Array, x: jax.Array) -> jax.Array:
    """``(x @ kernel + bias)^T`` from a batch-major input ``x`` ``[B, I]`` -> ``[O, B]`` float32
    (the first layer: the observations arrive batch-major)."""
    kernel_t = jax.lax.optimization_barrier(kernel.T)
    return jax.lax.dot_general(kernel_t, x, _NT) + bias[:, None]


def _input_linear_fwd(kernel, bias, x):
    return input_linear(kernel, bias, x), (kernel, x)


def _input_linear_bwd(residuals, g_t):
    kernel, x = residuals
    # NOTE: dW^T = g^T x is an NN dot; the barrier stops XLA from rewriting transpose(dot) as the
    # strided-batch dot this module avoids.
    grad_kernel = jax.lax.optimization_barrier(g_t @ x).T
    return grad_kernel, g_t.sum(axis=1), (kernel @ g_t).T


input_linear.defvjp(_input_linear_fwd, _input_linear_bwd)


@jax.custom_vjp
def index_linear(kernel: jax.Array, bias: jax.Array, index: jax.Array) -> jax.Array:
    """``(one_hot(index) @ kernel + bias)^T`` for ``Discrete(I)`` observations ``index`` ``[B]``
    int32: kernel ``[I, O]``, bias ``[O]`` -> ``[O, B]`` float32.

    The forward pass is a row gather of the kernel (exactly ``one_hot(index) @ kernel``: one
    non-zero term per sum). The kernel's gradient ``one_hot(index)^T g`` is a scatter-add of the
    rows of ``g`` into the rows of the observed categories (``index`` has no gradient).
    """
    # NOTE: the barriers keep the gather a column look-up of a materialised kernel^T, with the
    # index computed once: a row gather then a transpose was fused, index arithmetic (from the
    # packed batch) included, into the tanh after it (~5x that tanh's time). Measured on
    # FourRooms-v0, one core: ~6% faster per update than that, and than materialising the
    # gathered columns too (which keeps the next weight gradient on the fast dot kernels).
    index = jax.lax.optimization_barrier(index)
    kernel_t = jax.lax.optimization_barrier(kernel.T)
    rows_t = jnp.take(kernel_t, index, axis=1)
    return rows_t + bias[:, None]


def _index_linear_fwd(kernel, bias, index):
    return index_linear(kernel, bias, index), (kernel, index)


def _index_linear_bwd(residuals, g_t):
    kernel, index = residuals
    grad_kernel = jnp.zeros_like(kernel).at[index].add(g_t.T)
    return grad_kernel, g_t.sum(axis=1), None  # the integer index has no cotangent


index_linear.defvjp(_index_linear_fwd, _index_linear_bwd)


def apply(
    params: Any, obs: jax.Array, num_layers: int, activation: str, critic_only: bool = False,
    num_categories: int = 0,
) -> tuple[jax.Array | None, jax.Array]:
    """``ActorCritic.apply(params, obs, critic_only=critic_only)`` for flat observations.

    Args:
        params: ``ActorCritic`` parameters (``{"params": {"tower_{i}_kernel": [2, I, O],
            "tower_{i}_bias": [2, O], "actor_head": ..., "critic_head": ...}}``; tower 0 is the
            actor, tower 1 the critic).
        obs: ``[B, ...]`` observations, flattened to ``[B, F]`` float32; with ``num_categories``
            ``[B]`` (or ``[B, 1]``) integer indices of a ``Discrete(num_categories)`` space.
        num_layers: ``len(hidden_sizes)`` (static).
        activation: ``"tanh"`` or ``"relu"`` (static).
        critic_only: skip the actor tower and return ``(None, value)``.
        num_categories: ``n`` of a ``Discrete(n)`` observation (one-hot encoded, as
            ``ActorCritic`` does), or 0 for flat observations (static).

    Returns:
        ``(policy_out [B, A] float32 or None, value [B] float32)``.
    """
    p = params["params"]
    act = _ACTIVATIONS[activation]
    if num_categories:
        index = obs.reshape(obs.shape[0]).astype(jnp.int32)
        first = lambda kernel, bias: index_linear(kernel, bias, index)  # noqa: E731
    else:
        x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        first = lambda kernel, bias: input_linear(kernel, bias, x)  # noqa: E731
    towers = (1,) if critic_only else (0, 1)
    hidden: dict[int, jax.Array] = {}
    for i in range(num_layers):
        kernel, bias = p[f"tower_{i}_kernel"], p[f"tower_{i}_bias"]
        for t in towers:
            hidden[t] = act(
                first(kernel[t], bias[t]) if i == 0 else linear(kernel[t], bias[t], hidden[t])
            )

    def head(name: str, tower: int) -> jax.Array:  # [out, B]
        kernel, bias = p[name]["kernel"], p[name]["bias"]
        if num_layers == 0:
            return first(kernel, bias)
        return linear(kernel, bias, hidden[tower])

    value = head("critic_head", 1)[0]
    if critic_only:
        return None, value
    return head("actor_head", 0).T, value
