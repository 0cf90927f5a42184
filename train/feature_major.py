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

``TrainSetup`` (``train.setup``) uses this for ``"vector"`` observations and for images through the
``"dense"`` encoder (which only flattens them: the same parameters); ``"discrete"`` (one-hot or the
observation table) observations and the ``"embed"``/``"cnn"`` image encoders keep ``ActorCritic.apply``.
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


def apply(
    params: Any, obs: jax.Array, num_layers: int, activation: str, critic_only: bool = False
) -> tuple[jax.Array | None, jax.Array]:
    """``ActorCritic.apply(params, obs, critic_only=critic_only)`` for flat observations.

    Args:
        params: ``ActorCritic`` parameters (``{"params": {"tower_{i}_kernel": [2, I, O],
            "tower_{i}_bias": [2, O], "actor_head": ..., "critic_head": ...}}``; tower 0 is the
            actor, tower 1 the critic).
        obs: ``[B, ...]`` observations, flattened to ``[B, F]`` float32.
        num_layers: ``len(hidden_sizes)`` (static).
        activation: ``"tanh"`` or ``"relu"`` (static).
        critic_only: skip the actor tower and return ``(None, value)``.

    Returns:
        ``(policy_out [B, A] float32 or None, value [B] float32)``.
    """
    p = params["params"]
    act = _ACTIVATIONS[activation]
    x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
    towers = (1,) if critic_only else (0, 1)
    hidden: dict[int, jax.Array] = {}
    for i in range(num_layers):
        kernel, bias = p[f"tower_{i}_kernel"], p[f"tower_{i}_bias"]
        for t in towers:
            hidden[t] = act(
                input_linear(kernel[t], bias[t], x) if i == 0 else linear(kernel[t], bias[t], hidden[t])
            )

    def head(name: str, tower: int) -> jax.Array:  # [out, B]
        kernel, bias = p[name]["kernel"], p[name]["bias"]
        if num_layers == 0:
            return input_linear(kernel, bias, x)
        return linear(kernel, bias, hidden[tower])

    value = head("critic_head", 1)[0]
    if critic_only:
        return None, value
    return head("actor_head", 0).T, value
