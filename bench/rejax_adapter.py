"""gymnax 1.x envs for rejax 0.1.3, which still unpacks gymnax's old 5-tuple step.

gymnax 1.x (and jaxgrid) return ``(obs, state, reward, terminated, truncated, info)`` from
``env.step``; rejax 0.1.3's PPO and its evaluation unpack ``(obs, state, reward, done, info)`` and
fail on the 6-tuple. ``DoneTupleEnv(env)`` gives rejax the old form with
``done = terminated | truncated``; everything else (``reset``, spaces, ``default_params``, ...) is
the wrapped env's.

NOTE: this drops the time-limit distinction for rejax: its GAE then cuts the return at a
truncation and bootstraps with 0, as it does at a real terminal state (jaxgrid's PPO bootstraps a
truncated step with ``gamma * V(s')``). ``info`` still carries ``"terminated"``, ``"truncated"``
and ``"final_observation"``, which rejax does not read.

    env = DoneTupleEnv(gymnax.make("CartPole-v1")[0])
    algo = rejax.PPO.create(env=env, env_params=env.default_params, ...)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def to_done_tuple(step_out: tuple) -> tuple[Any, Any, jax.Array, jax.Array, dict]:
    """A gymnax 1.x step's ``(obs, state, reward, terminated, truncated, info)`` as the old
    ``(obs, state, reward, done, info)`` with ``done = terminated | truncated`` (bool, the shape
    of ``terminated``: ``()`` per env, ``[N]`` batched).

    Raises:
        ValueError: ``step_out`` is not a 6-tuple (e.g. already the old 5-tuple).
    """
    if not isinstance(step_out, tuple) or len(step_out) != 6:
        got = len(step_out) if isinstance(step_out, tuple) else type(step_out).__name__
        raise ValueError(
            f"expected gymnax 1.x's step output (obs, state, reward, terminated, truncated, info), "
            f"a 6-tuple; got {got}"
        )
    obs, state, reward, terminated, truncated, info = step_out
    return obs, state, reward, jnp.logical_or(terminated, truncated), info


class DoneTupleEnv:
    """A gymnax 1.x env whose ``step`` returns the old 5-tuple (``to_done_tuple``).

    Attribute access other than ``step`` falls through to the wrapped env, so rejax's
    ``env.action_space(params)``, ``env.observation_space(params)`` and ``env.default_params`` work.
    """

    def __init__(self, env: Any):
        self.__dict__["env"] = env

    def __getattr__(self, name: str) -> Any:
        # NOTE: copy/deepcopy (rejax deep-copies its config) look attributes up on an instance
        # whose __dict__ is still empty: refuse private names instead of recursing.
        if name.startswith("__") or "env" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["env"], name)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        return self.env.reset(key, params)

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        """``(obs, state, reward, done, info)`` with ``done = terminated | truncated``."""
        return to_done_tuple(self.env.step(key, state, action, params))

    def __repr__(self) -> str:
        return f"DoneTupleEnv({self.env!r})"
