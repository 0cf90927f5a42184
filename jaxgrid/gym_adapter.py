"""Gymnasium adapters: every registered id as ``gymnasium.make("jaxgrid/<id>")`` and
``gymnasium.make_vec("jaxgrid/<id>", num_envs=N)``.

``JaxGridEnv`` is one env with Gymnasium's semantics (no auto-reset: call ``reset`` after an
episode ends). ``JaxGridVectorEnv`` runs N envs in one jitted, vmapped step that auto-resets in the
same step (``AutoresetMode.SAME_STEP``): at an episode end the returned observation starts the next
episode and ``info["final_obs"]`` (object array, ``None`` elsewhere; mask ``info["_final_obs"]``)
holds the observation the episode ended on, as Gymnasium's own vector envs do in that mode.

Both return NumPy (``int`` for a ``Discrete`` observation of the single env). The ids are
registered when ``jaxgrid`` is imported; ``gymnasium.make("jaxgrid:jaxgrid/<id>")`` imports it for you.
Time limits are the env's own ``max_steps_in_episode`` (no ``TimeLimit`` wrapper), so a goal on the
last step is terminated, not truncated, exactly as in the JAX env.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from jaxgrid.gymnax_base import spaces as gymnax_spaces

from jaxgrid import registry

NAMESPACE = "jaxgrid"
RENDER_MODES = ["ansi", "rgb_array"]


def gymnasium_id(env_id: str) -> str:
    """``"FrozenLake-v1"`` -> ``"jaxgrid/FrozenLake-v1"``."""
    return f"{NAMESPACE}/{env_id}"


def to_gymnasium_space(space: gymnax_spaces.Space) -> gymnasium.spaces.Space:
    """The Gymnasium space of a gymnax ``Discrete`` or ``Box``."""
    if isinstance(space, gymnax_spaces.Discrete):
        return gymnasium.spaces.Discrete(int(space.n))
    if isinstance(space, gymnax_spaces.Box):
        dtype = np.dtype(space.dtype)
        low = np.broadcast_to(np.asarray(space.low, dtype), space.shape)
        high = np.broadcast_to(np.asarray(space.high, dtype), space.shape)
        return gymnasium.spaces.Box(low=low, high=high, shape=space.shape, dtype=dtype)
    raise TypeError(f"no Gymnasium counterpart for the gymnax space {space!r}")


def _check_action(action: Any, num_actions: int, names: tuple[str, ...], env_id: str) -> int:
    valid = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    try:
        ok = np.ndim(action) == 0 and np.issubdtype(np.asarray(action).dtype, np.integer)
    except (TypeError, ValueError):
        ok = False
    if not ok or not 0 <= int(action) < num_actions:
        raise ValueError(
            f"invalid action {action!r} for {gymnasium_id(env_id)}: expected an int in "
            f"[0, {num_actions}) ({valid})"
        )
    return int(action)


# Envs are cached per (id, make kwargs) so that every adapter instance of one env shares one env
# object and hence, through the module-level jitted functions below (env is a static argument),
# one compiled reset/step: SB3's 16 copies of an env compile once, not 16 times.
_ENV_CACHE: dict[tuple, tuple[Any, Any]] = {}


def _make_shared(env_id: str, make_kwargs: dict[str, Any]):
    try:
        cache_key = (env_id, tuple(sorted(make_kwargs.items())))
        hash(cache_key)
    except TypeError:  # unhashable kwargs (e.g. a Layout or array): no sharing
        return registry.make(env_id, **make_kwargs)
    if cache_key not in _ENV_CACHE:
        _ENV_CACHE[cache_key] = registry.make(env_id, **make_kwargs)
    return _ENV_CACHE[cache_key]


@partial(jax.jit, static_argnums=0)
def _single_step(env, key, state, action, params):
    # Key splitting and the truncation flag live inside the one jitted call: a host-side
    # split or an extra dispatch per step would double the adapter's overhead.
    key, key_step = jax.random.split(key)
    obs, state, reward, terminated, _ = env.step_env(key_step, state, action, params)
    truncated = (state.time >= params.max_steps_in_episode) & ~terminated
    return key, state, (obs, reward, terminated, truncated)


@partial(jax.jit, static_argnums=0)
def _single_reset(env, key, params):
    key, key_reset = jax.random.split(key)
    obs, state = env.reset_env(key_reset, params)
    return key, state, obs


@partial(jax.jit, static_argnums=(0, 3))
def _vector_reset(env, key, params, num_envs: int):
    key, key_reset = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params)
    return key, obs, state


@partial(jax.jit, static_argnums=0)
def _vector_step(env, key, state, actions, params):
    key, key_step = jax.random.split(key)
    keys = jax.random.split(key_step, actions.shape[0])
    out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
    return key, out


class JaxGridEnv(gymnasium.Env):
    """One jaxgrid env behind the Gymnasium ``Env`` API.

    Args:
        env_id: a jaxgrid id (``jaxgrid.registered_ids()``).
        render_mode: ``"ansi"``, ``"rgb_array"`` or None.
        **make_kwargs: passed to ``jaxgrid.make`` (``obs=``, ``layout=``, ``is_slippery=``, params).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, env_id: str, render_mode: str | None = None, **make_kwargs: Any):
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: {RENDER_MODES} or None")
        self.env_id = env_id
        self.env, self.params = _make_shared(env_id, make_kwargs)
        self.render_mode = render_mode
        self.observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.action_space = gymnasium.spaces.Discrete(self.env.num_actions)
        env = self.env
        self._step = partial(_single_step, env)
        self._reset = partial(_single_reset, env)
        self._render = jax.jit(lambda state, params: env.render(state, params))
        self._key: jax.Array | None = None
        self._state = None

    def _obs(self, obs: jax.Array):
        if isinstance(self.observation_space, gymnasium.spaces.Discrete):
            return int(obs)
        return np.asarray(obs, dtype=self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        key = jax.random.PRNGKey(int(self.np_random.integers(2**31 - 1)))
        self._key, self._state, obs = self._reset(key, self.params)
        return self._obs(jax.device_get(obs)), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError(f"call reset() before step() on {gymnasium_id(self.env_id)}")
        action = _check_action(action, self.env.num_actions, self.env.action_names, self.env_id)
        self._key, self._state, out = self._step(self._key, self._state, action, self.params)
        obs, reward, terminated, truncated = jax.device_get(out)
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), {}

    def render(self):
        if self._state is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return self.env.render(self._state, self.params, mode="ansi")
        return np.asarray(self._render(self._state, self.params))


class JaxGridVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of a jaxgrid env in one jitted, vmapped step (same-step auto-reset).

    Args:
        env_id: a jaxgrid id.
        num_envs: batch size.
        render_mode: ``"rgb_array"`` (a [N, h, w, 3] uint8 array), ``"ansi"`` (a tuple of str) or None.
        **make_kwargs: passed to ``jaxgrid.make``.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env_id: str, num_envs: int = 1, render_mode: str | None = None, **make_kwargs: Any):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: {RENDER_MODES} or None")
        make_kwargs.pop("max_episode_steps", None)  # time limits live in the env params
        self.env_id = env_id
        self.env, self.params = _make_shared(env_id, make_kwargs)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.single_observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.single_action_space = gymnasium.spaces.Discrete(self.env.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        env = self.env
        self._render = jax.jit(jax.vmap(lambda state, params: env.render(state, params), in_axes=(0, None)))
        self._key: jax.Array | None = None
        self._state = None

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for {self.num_envs} envs")
            seed = int(np.random.SeedSequence([0 if s is None else int(s) for s in seed]).generate_state(1)[0])
        super().reset(seed=seed)
        key = jax.random.PRNGKey(int(self.np_random.integers(2**31 - 1)))
        self._key, obs, self._state = _vector_reset(self.env, key, self.params, self.num_envs)
        return np.asarray(obs), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError(f"call reset() before step() on the vector {gymnasium_id(self.env_id)}")
        actions = np.asarray(actions)
        names = ", ".join(f"{i} {n}" for i, n in enumerate(self.env.action_names))
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer) or (
            actions.size and (actions.min() < 0 or actions.max() >= self.env.num_actions)
        ):
            raise ValueError(
                f"invalid actions {actions!r} for {self.num_envs} envs of {gymnasium_id(self.env_id)}: "
                f"expected {self.num_envs} ints in [0, {self.env.num_actions}) ({names})"
            )
        self._key, out = _vector_step(self.env, self._key, self._state, actions.astype(np.int32), self.params)
        obs, self._state, reward, terminated, truncated, info = out
        obs, reward, terminated, truncated = jax.device_get((obs, reward, terminated, truncated))
        done = terminated | truncated
        infos: dict[str, Any] = {}
        if done.any():
            final = np.asarray(info["final_observation"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = final[i]
            infos = {"final_obs": final_obs, "_final_obs": done}
        return obs, reward, terminated, truncated, infos

    def render(self):
        if self._state is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return tuple(
                self.env.render(jax.tree.map(lambda x: x[i], self._state), self.params, mode="ansi")
                for i in range(self.num_envs)
            )
        return np.asarray(self._render(self._state, self.params))


def _register(env_id: str) -> None:
    gid = gymnasium_id(env_id)
    if gid in gymnasium.registry:
        return
    gymnasium.register(
        id=gid,
        entry_point="jaxgrid.gym_adapter:JaxGridEnv",
        vector_entry_point="jaxgrid.gym_adapter:JaxGridVectorEnv",
        kwargs={"env_id": env_id},
        disable_env_checker=False,
    )


def register_gymnasium_envs() -> None:
    """Registers every jaxgrid id (and any registered later) as ``jaxgrid/<id>`` in Gymnasium."""
    for env_id in registry.registered_ids():
        _register(env_id)
    registry.add_register_hook(_register)
