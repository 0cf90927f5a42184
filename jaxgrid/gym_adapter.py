"""Gymnasium adapters: every registered id as ``gymnasium.make("jaxgrid/<id>")`` and
``gymnasium.make_vec("jaxgrid/<id>", num_envs=N)``, behaving as Gymnasium's own envs do.

What a user observes follows Gymnasium 1.x (``tests/jaxgrid/test_gym_parity.py`` runs the same
scripted calls on Gymnasium's FrozenLake/CartPole and on these adapters):

- ``JaxGridEnv`` (one env): no auto-reset; ``int`` observations for a ``Discrete`` space, otherwise a
  writable NumPy array; ``float`` reward, ``bool`` flags. Info is ``{}``, except for Gymnasium's
  toy-text ports (FrozenLake, CliffWalking): ``{"prob": p}``, the sampled transition's probability
  as Gymnasium reports it, and Gymnasium's reward values and types (``int`` for its default tables);
  FrozenLake's terminal cells absorb steps taken without a reset, as there.
- Time limits: ids with a fixed default limit register it as the spec's ``max_episode_steps``
  (``FrozenLake-v1``: 100, as in Gymnasium), so ``gymnasium.make`` adds Gymnasium's ``TimeLimit`` and
  ``make(..., max_episode_steps=N)`` overrides it. Ids whose default depends on a ``make`` argument
  (``EmptyRoom-v0``, ``Maze-v0``) or that have none (``CliffWalking-v1``) have no spec limit; their
  env-side ``max_steps_in_episode`` applies. An explicit ``max_steps_in_episode=`` is an env-side
  limit too; the episode is cut at the smaller of the two. Truncation follows ``TimeLimit``:
  ``truncated`` is True on the step that uses up the limit, even if that step also terminates.
- ``JaxGridVectorEnv`` (``make_vec``): N envs in one jitted call through ``jaxgrid.VecEnv`` (a reset
  is computed only for the envs that need one: a procedural env makes no maze for envs that go on),
  with Gymnasium's three
  autoreset modes (``autoreset_mode=`` keyword, ``AutoresetMode.NEXT_STEP`` by default, as
  Gymnasium's vector envs) and ``SyncVectorEnv``'s exact semantics in each: NEXT_STEP resets an
  ended env on the following ``step`` (reward 0, flags False); SAME_STEP resets it in the same
  ``step`` and reports ``info["final_obs"]``/``info["final_info"]`` with masks ``_final_obs``/
  ``_final_info``; DISABLED never resets (``reset(options={"reset_mask": mask})`` does). Observations
  and rewards have ``SyncVectorEnv``'s dtypes (int64 for ``Discrete``, float64 rewards).
- Seeding: ``reset(seed=s)`` makes the env's JAX key ``jax.random.PRNGKey(s)`` (``keys_from_seeds``); a vector env seeds env
  ``i`` with ``seed[i]`` (a list) or ``seed + i`` (an int), so env ``i`` of ``make_vec`` with seed ``s``
  runs the same trajectory as ``gymnasium.make`` of the same id with seed ``s + i``, and never
  depends on the other envs' seeds. ``reset()`` without a seed continues each env's key chain.

The ids are registered when ``jaxgrid`` is imported; ``gymnasium.make("jaxgrid:jaxgrid/<id>")``
imports it for you.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from jaxgrid.gymnax_base import spaces as gymnax_spaces

from jaxgrid import registry, vec

NAMESPACE = "jaxgrid"
RENDER_MODES = ["ansi", "rgb_array"]

# The fixed default time limit of each built-in id, registered as its spec's max_episode_steps
# (tests check each against ``jaxgrid.make(id)``). Ids not listed keep their limit in the env.
SPEC_MAX_EPISODE_STEPS = {
    "GridWorld-4x4-v0": 50,
    "GridWorld-v0": 50,
    "FrozenLake-v1": 100,
    "FrozenLake8x8-v1": 200,
    "FourRooms-v0": 100,
    "FourRoomsRandom-v0": 100,
    "Maze-9x9-v0": 162,
    "Maze-15x15-v0": 450,
}
# Gymnasium's reward_threshold of the ids it also registers (its spec field, copied).
SPEC_REWARD_THRESHOLD = {"FrozenLake-v1": 0.70, "FrozenLake8x8-v1": 0.85}
# Gymnasium's toy-text ports: their info is {"prob": p} as Gymnasium's (the probability of the
# sampled transition; 1 at reset); value: whether terminal cells absorb further steps (FrozenLake's do,
# with reward 0; CliffWalking moves on from its goal).
TOY_TEXT_ABSORBING = {
    "FrozenLake-v1": True,
    "FrozenLake8x8-v1": True,
    "CliffWalking-v1": False,
    "CliffWalkingSlippery-v1": False,
}
# What the adapter's params hold where no limit applies; time counts in int32.
NO_TIME_LIMIT = 2**31 - 2


class VectorEnvError(ValueError, AssertionError):
    """A misuse of the vector env. Also an ``AssertionError``: the class ``SyncVectorEnv`` raises for
    the same misuse (wrong number of seeds, a bad ``reset_mask``, stepping an ended env with
    autoreset DISABLED), so code written against Gymnasium catches it unchanged."""


class ResetNeededError(gymnasium.error.ResetNeeded, RuntimeError, AssertionError):
    """``step`` before ``reset``. Also the classes Gymnasium raises for it: ``ResetNeeded``
    (``gymnasium.make``'s order check) and ``AssertionError`` (its vector envs)."""


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


# ------------------------------------------------------------------------------------------------
# seeds -> keys


def _check_seed(seed: Any) -> int:
    # Gymnasium's rule (gymnasium.utils.seeding.np_random): a non-negative Python int.
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise gymnasium.error.Error(f"Seed must be a python integer, actual type: {type(seed)}")
    if seed < 0:
        raise gymnasium.error.Error(f"Seed must be greater or equal to zero, actual value: {seed}")
    return int(seed)


def keys_from_seeds(seeds: np.ndarray | list[int]) -> np.ndarray:
    """[N, 2] uint32 raw JAX keys, row ``i`` equal to ``jax.random.PRNGKey(seeds[i])`` for seeds below 2**32.

    Seeds are non-negative ints; one below 2**64 is split into its high and low 32-bit words (what
    ``PRNGKey`` does with x64 enabled; without it ``PRNGKey`` drops the high word), a larger one is
    hashed with ``np.random.SeedSequence``: distinct seeds, distinct keys.
    """
    seeds = [_check_seed(s) for s in seeds] if isinstance(seeds, list) else seeds
    if isinstance(seeds, list) and any(s >= 2**64 for s in seeds):
        return np.stack([
            np.random.SeedSequence(s).generate_state(2, np.uint32) if s >= 2**64 else keys_from_seeds([s])[0]
            for s in seeds
        ])
    words = np.asarray(seeds, dtype=np.uint64)
    return np.stack([(words >> np.uint64(32)).astype(np.uint32), words.astype(np.uint32)], axis=-1)


def _random_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**32, size=(n, 2), dtype=np.uint32)


# ------------------------------------------------------------------------------------------------
# one env, Gymnasium's semantics. The single env runs these directly; the vector env runs the same
# keys and env functions through VecEnv (bitwise the vmapped pieces), so env i of the vector env and
# a single env with the same key run the same trajectory.


def _env_reset(env, key: jax.Array, params):
    """``(key', obs, state)``: a new episode from ``key`` ([2] uint32)."""
    key, key_reset = jax.random.split(key)
    obs, state = env.reset_env(key_reset, params)
    return key, obs, state


def _env_step(env, key: jax.Array, state, action: jax.Array, params):
    """``(key', obs, state, reward, terminated, truncated, slipped)``; no auto-reset.

    The step is the env's own (``env.step_without_reset`` on the step key, slip included: the
    intended move with probability ``1 - slip_prob``, each perpendicular one with
    ``slip_prob / 2``); ``slipped`` is that step's slip (``env.draw_slip`` of the same key), so the
    adapter can report the transition's probability. ``truncated`` is Gymnasium's ``TimeLimit``
    rule: the step count reached the limit, whether or not this step also terminated.
    """
    key, key_step = jax.random.split(key)
    obs, state, reward, terminated, _, _ = env.step_without_reset(key_step, state, action, params)
    slipped, _ = env.draw_slip(key_step, params)
    truncated = state.time >= params.max_steps_in_episode
    return key, obs, state, reward, terminated, truncated, slipped


@partial(jax.jit, static_argnums=0)
def _absorb(env, state, params):
    """A step taken in an absorbing terminal cell: only the step count moves."""
    state = state.replace(time=state.time + 1)
    return state, state.time >= params.max_steps_in_episode


_single_reset = partial(jax.jit, static_argnums=0)(_env_reset)
_single_step = partial(jax.jit, static_argnums=0)(_env_step)


# ------------------------------------------------------------------------------------------------
# N envs: the batched reset and step are these two functions (one XLA call each per Python call),
# both through ``jaxgrid.VecEnv`` (``transition_each`` / ``reset_where``: a reset is computed only
# for the envs that need one). Env i's keys are those of ``_env_reset`` / ``_env_step`` on its key.


def _split_each(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``vmap(jax.random.split)(keys)`` as its two halves, each [N, 2] uint32."""
    return vec.child_keys(keys, 0), vec.child_keys(keys, 1)


@partial(jax.jit, static_argnums=0)
def batch_reset(venv: vec.VecEnv, keys: jax.Array, params, mask: jax.Array, obs, state):
    """Resets the envs where ``mask`` ([N] bool) is set; the others keep ``keys``/``obs``/``state``.

    Returns ``(keys', obs', state')``. ``obs``/``state`` may be None (the first reset: mask is all True).
    """
    new_keys, key_reset = _split_each(keys)
    if obs is None:
        obs, state = venv.reset_each(key_reset, params)
        return new_keys, obs, state
    obs, state = venv.reset_where(key_reset, mask, obs, state, params)
    return _where(mask, new_keys, keys), obs, state


@partial(jax.jit, static_argnums=(0, 1))
def batch_step(venv: vec.VecEnv, mode: AutoresetMode, keys: jax.Array, state, actions: jax.Array, params,
               reset_first: jax.Array):
    """One step of N envs in autoreset ``mode``, each env on its own key.

    Args:
        venv: the ``VecEnv`` of the jaxgrid env (static).
        mode: ``AutoresetMode`` (static). NEXT_STEP: envs with ``reset_first`` are reset instead of
            stepped (reward 0, flags False). SAME_STEP: envs whose step ends the episode are reset in
            this call. DISABLED: every env is stepped.
        keys: [N, 2] uint32, each env's key.
        state: the batched env state.
        actions: [N] int32.
        params: the (shared) env params.
        reset_first: [N] bool, envs that ended on the previous step (used by NEXT_STEP).

    Returns:
        ``(keys', obs, state', reward, terminated, truncated, final_obs, slipped)``; ``final_obs`` is
        the observation each step reached (before a SAME_STEP reset); ``slipped`` [N] bool.
    """
    keys, key_step = _split_each(keys)  # as _env_step, env by env
    obs_s, state_s, reward, terminated, _, _ = venv.transition_each(key_step, state, actions, params)
    slipped = jax.vmap(venv.env.draw_slip, in_axes=(0, None))(key_step, params)[0]
    truncated = state_s.time >= params.max_steps_in_episode  # TimeLimit's rule, as _env_step
    if mode == AutoresetMode.NEXT_STEP:
        # _env_reset on the same key splits it as the step did: the reset key is key_step and the
        # next key the same, so only obs/state change for the envs reset instead of stepped.
        obs, state = venv.reset_where(key_step, reset_first, obs_s, state_s, params)
        reward = jnp.where(reset_first, jnp.zeros_like(reward), reward)
        return (keys, obs, state, reward, terminated & ~reset_first, truncated & ~reset_first, obs_s, slipped)
    if mode == AutoresetMode.SAME_STEP:
        done = terminated | truncated
        keys_after, key_reset = _split_each(keys)  # _env_reset on the key the step left
        obs, state = venv.reset_where(key_reset, done, obs_s, state_s, params)
        return _where(done, keys_after, keys), obs, state, reward, terminated, truncated, obs_s, slipped
    return keys, obs_s, state_s, reward, terminated, truncated, obs_s, slipped


def _where(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``a`` where ``mask`` (per env, leading axis) else ``b``; under vmap, a scalar mask."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), a, b)


# ------------------------------------------------------------------------------------------------
# construction shared by both adapters


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
# object and hence, through the module-level jitted functions above (env is a static argument),
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


def _time_limit(env_id: str, params, make_kwargs: dict[str, Any], max_episode_steps: Any) -> int:
    """The adapter's step limit: the smaller of Gymnasium's ``max_episode_steps`` (None or -1: none)
    and the env-side limit (an explicit ``max_steps_in_episode``, or the env's default where the id
    has no spec limit). ``NO_TIME_LIMIT`` where neither applies."""
    limits = []
    if max_episode_steps is not None and max_episode_steps != -1:
        if not isinstance(max_episode_steps, (int, np.integer)) or isinstance(max_episode_steps, bool) \
                or max_episode_steps < 1:
            raise ValueError(
                f"max_episode_steps must be a positive int (or None / -1 for no limit), got {max_episode_steps!r}"
            )
        limits.append(int(max_episode_steps))
    if "max_steps_in_episode" in make_kwargs or env_id not in SPEC_MAX_EPISODE_STEPS:
        limits.append(int(params.max_steps_in_episode))
    return min([*limits, NO_TIME_LIMIT])


def _build(env_id: str, make_kwargs: dict[str, Any], max_episode_steps: Any):
    env, params = _make_shared(env_id, make_kwargs)
    limit = _time_limit(env_id, params, make_kwargs, max_episode_steps)
    return env, params.replace(max_steps_in_episode=jnp.int32(limit))


def _move_probs(env_id: str, env, params, make_kwargs: dict[str, Any]) -> tuple[float, float]:
    """``(p_intended, p_side)``: Gymnasium's ``prob`` of a step that did not / did slip, computed as
    Gymnasium computes it (FrozenLake: ``success_rate`` and ``(1 - success_rate) / 2``; slippery
    CliffWalking: ``1 / 3`` each)."""
    if not env.slippery:
        return 1.0, 1.0
    if "slip_prob" not in make_kwargs:
        if env_id.startswith("FrozenLake"):
            success_rate = float(make_kwargs.get("success_rate", 1.0 / 3.0))
            return success_rate, (1.0 - success_rate) / 2.0
        if env_id.startswith("CliffWalking"):
            return 1 / 3, 1 / 3
    slip = float(make_kwargs.get("slip_prob", params.slip_prob))
    return 1.0 - slip, slip / 2.0


def _reward_table(env_id: str, make_kwargs: dict[str, Any]) -> dict[float, Any] | None:
    """Gymnasium's reward values of a toy-text port, keyed by their float32 value (what the jitted
    step computes): its envs return their reward table's entries as given (``int`` for the defaults,
    ``-0.01`` not float32's ``-0.009999999776``). None (plain ``float``) for other ids and wherever
    a jaxgrid reward param is overridden."""
    if env_id not in TOY_TEXT_ABSORBING or any(
        k in make_kwargs for k in ("step_reward", "goal_reward", "lava_reward")
    ):
        return None
    values = make_kwargs.get("reward_schedule", (1, 0, 0)) if env_id.startswith("FrozenLake") else (-1, -100)
    return {float(np.float32(v)): v for v in values}


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode {render_mode!r}; valid: {RENDER_MODES} or None")


class JaxGridEnv(gymnasium.Env):
    """One jaxgrid env behind the Gymnasium ``Env`` API (no auto-reset).

    Args:
        env_id: a jaxgrid id (``jaxgrid.registered_ids()``).
        render_mode: ``"ansi"``, ``"rgb_array"`` or None.
        **make_kwargs: passed to ``jaxgrid.make`` (``obs=``, ``layout=``, ``is_slippery=``, params).

    ``reset`` returns ``(obs, info)``; ``step`` returns ``(obs, reward, bool, bool, info)``; ``obs`` is
    an ``int`` for a ``Discrete`` space, else a fresh writable ``np.ndarray`` of the space's dtype;
    ``reward`` a ``float`` and ``info`` ``{}`` (for the toy-text ports, Gymnasium's reward type and
    ``{"prob": p}``).

    Raises:
        ValueError: an unknown id, override or render mode; an invalid action in ``step``.
        ResetNeededError (a RuntimeError): ``step`` before ``reset``.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, env_id: str, render_mode: str | None = None, **make_kwargs: Any):
        _check_render_mode(render_mode)
        self.env_id = env_id
        self.env, self.params = _build(env_id, make_kwargs, None)
        self._toy_text = env_id in TOY_TEXT_ABSORBING
        self._absorbing = TOY_TEXT_ABSORBING.get(env_id, False)
        self._probs = _move_probs(env_id, self.env, self.params, make_kwargs)
        self._rewards = _reward_table(env_id, make_kwargs) or {}
        self._terminated = False
        self._last_obs = None
        self.render_mode = render_mode
        self.observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.action_space = gymnasium.spaces.Discrete(self.env.num_actions)
        env = self.env
        self._render = jax.jit(lambda state, params: env.render(state, params))
        self._key: jax.Array | None = None
        self._state = None

    def _obs(self, obs: np.ndarray):
        if isinstance(self.observation_space, gymnasium.spaces.Discrete):
            return int(obs)
        return np.array(obs, dtype=self.observation_space.dtype)  # a writable copy

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = keys_from_seeds([seed])[0]
        elif self._key is None:
            self._key = _random_keys(self.np_random, 1)[0]
        self._key, obs, self._state = _single_reset(self.env, self._key, self.params)
        self._terminated = False
        self._last_obs = jax.device_get(obs)
        return self._obs(self._last_obs), ({"prob": 1} if self._toy_text else {})

    def step(self, action):
        if self._state is None:
            raise ResetNeededError(f"call reset() before step() on {gymnasium_id(self.env_id)}")
        action = _check_action(action, self.env.num_actions, self.env.action_names, self.env_id)
        if self._terminated and self._absorbing:  # Gymnasium's FrozenLake: a terminal cell absorbs
            self._state, truncated = _absorb(self.env, self._state, self.params)
            return self._obs(self._last_obs), 0, True, bool(truncated), {"prob": 1.0}  # Gymnasium's int 0
        self._key, obs, self._state, *out = _single_step(self.env, self._key, self._state, action, self.params)
        obs, reward, terminated, truncated, slipped = jax.device_get((obs, *out))
        self._terminated, self._last_obs = bool(terminated), obs
        info = {"prob": self._probs[int(slipped)]} if self._toy_text else {}
        reward = self._rewards.get(float(reward), float(reward))
        return self._obs(obs), reward, bool(terminated), bool(truncated), info

    def render(self):
        if self._state is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return self.env.render(self._state, self.params, mode="ansi")
        return np.array(self._render(self._state, self.params))


class JaxGridVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of a jaxgrid env in one jitted, vmapped call, with ``SyncVectorEnv``'s
    semantics in each of Gymnasium's autoreset modes (see the module docstring).

    Args:
        env_id: a jaxgrid id.
        num_envs: batch size N.
        render_mode: ``"rgb_array"`` (a [N, h, w, 3] uint8 array), ``"ansi"`` (a tuple of str) or None.
        max_episode_steps: Gymnasium's time limit (``make_vec`` passes the spec's); None or -1: none.
        autoreset_mode: an ``AutoresetMode`` or its value (``"NextStep"``, ``"SameStep"``,
            ``"Disabled"``), as ``SyncVectorEnv`` takes it; Gymnasium's default NEXT_STEP. (Gymnasium's ``make_vec`` refuses
            ``vector_kwargs`` for any env with a vector entry point, CartPole-v1 included, and passes
            keywords instead: ``make_vec(id, num_envs=N, autoreset_mode=AutoresetMode.SAME_STEP)``.)
        **make_kwargs: passed to ``jaxgrid.make``.

    Returns from ``step``: obs [N, ...] (int64 for ``Discrete``), reward [N] float64, terminated and
    truncated [N] bool, all fresh writable arrays, and the info dict ``SyncVectorEnv`` gives.

    Raises:
        ValueError: bad ``num_envs``, render mode, autoreset mode, time limit, override or actions.
        VectorEnvError (a ValueError and an AssertionError): the wrong number of seeds, a bad
            ``reset_mask``, or stepping an ended env with autoreset DISABLED.
        ResetNeededError (a RuntimeError and an AssertionError): ``step`` before ``reset``.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **make_kwargs: Any,
    ):
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        _check_render_mode(render_mode)
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            valid = ", ".join(f"AutoresetMode.{m.name} ({m.value!r})" for m in AutoresetMode)
            raise ValueError(f"unknown autoreset_mode {autoreset_mode!r}; valid: {valid}") from None
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.env_id = env_id
        self.env, self.params = _build(env_id, make_kwargs, max_episode_steps)
        self._toy_text = env_id in TOY_TEXT_ABSORBING
        self._probs = np.array(_move_probs(env_id, self.env, self.params, make_kwargs), dtype=np.float64)
        self._rewards = _reward_table(env_id, make_kwargs) or {}
        self.num_envs = int(num_envs)
        self.venv = vec.VecEnv(self.env, self.num_envs)  # the batched path: resets only where needed
        self.render_mode = render_mode
        self.single_observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.single_action_space = gymnasium.spaces.Discrete(self.env.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        env = self.env
        self._render = jax.jit(jax.vmap(lambda state, params: env.render(state, params), in_axes=(0, None)))
        self._device_keys: jax.Array | None = None  # [N, 2] uint32, each env's key
        self._state = None
        self._obs_device = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)  # envs that ended on the last step

    # -- helpers ---------------------------------------------------------------------------------
    def _seed_list(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [_check_seed(seed) + i for i in range(self.num_envs)]
        if not isinstance(seed, (list, tuple, np.ndarray)) or len(seed) != self.num_envs:
            raise VectorEnvError(
                f"seed must be None, an int (env i gets seed + i) or a list of {self.num_envs} "
                f"ints/None (one per env), got {seed!r}"
            )
        return [None if s is None else _check_seed(s) for s in seed]

    def _reset_mask(self, options: dict | None) -> np.ndarray:
        if options is None or "reset_mask" not in options:
            return np.ones(self.num_envs, dtype=bool)
        mask = options["reset_mask"]
        if not (isinstance(mask, np.ndarray) and mask.shape == (self.num_envs,) and mask.dtype == np.bool_
                and mask.any()):
            raise VectorEnvError(
                f"options['reset_mask'] must be a NumPy bool array of shape ({self.num_envs},) with at "
                f"least one True, got {mask!r}"
            )
        return mask

    def _host_obs(self, obs: np.ndarray) -> np.ndarray:
        return np.array(obs, dtype=self.observation_space.dtype)  # a writable copy

    def _single_obs(self, obs: np.ndarray):
        if isinstance(self.single_observation_space, gymnasium.spaces.Discrete):
            return int(obs)
        return np.array(obs, dtype=self.single_observation_space.dtype)

    # -- API -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Resets every env (or those in ``options["reset_mask"]``); returns ``(obs [N, ...], {})``.

        ``seed``: None (each env continues its own key chain; fresh random keys on the first
        reset), an int (env i gets ``seed + i``) or a list of N ints/None.
        """
        seeds = self._seed_list(seed)
        mask = self._reset_mask(options)
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
        if self._device_keys is None:
            keys = _random_keys(self.np_random, self.num_envs)
        else:
            keys = np.array(jax.device_get(self._device_keys))
        given = [i for i, s in enumerate(seeds) if s is not None and mask[i]]
        if given:
            keys[given] = keys_from_seeds([seeds[i] for i in given])
        first = self._state is None
        mask_d = jnp.asarray(mask if not first else np.ones(self.num_envs, dtype=bool))
        new_keys, obs, self._state = batch_reset(
            self.venv, jnp.asarray(keys), self.params, mask_d,
            None if first else self._obs_device, None if first else self._state,
        )
        self._device_keys, self._obs_device = new_keys, obs
        self._autoreset = self._autoreset & ~mask
        infos = {"prob": mask.astype(np.int64), "_prob": mask.copy()} if self._toy_text else {}
        return self._host_obs(jax.device_get(obs)), infos

    def step(self, actions):
        """Steps every env; returns ``(obs, reward, terminated, truncated, info)`` as SyncVectorEnv."""
        if self._state is None:
            raise ResetNeededError(f"call reset() before step() on the vector {gymnasium_id(self.env_id)}")
        actions = np.asarray(actions)
        names = ", ".join(f"{i} {n}" for i, n in enumerate(self.env.action_names))
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer) or (
            actions.size and (actions.min() < 0 or actions.max() >= self.env.num_actions)
        ):
            raise ValueError(
                f"invalid actions {actions!r} for {self.num_envs} envs of {gymnasium_id(self.env_id)}: "
                f"expected {self.num_envs} ints in [0, {self.env.num_actions}) ({names})"
            )
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise VectorEnvError(
                f"envs {np.flatnonzero(self._autoreset).tolist()} ended on the last step and autoreset is "
                "DISABLED: reset them first with reset(options={'reset_mask': mask})"
            )
        mode = self.autoreset_mode
        if mode == AutoresetMode.NEXT_STEP and not self._autoreset.any():
            mode = AutoresetMode.DISABLED  # the same result without computing resets nobody needs
        # NumPy arguments go straight to the jitted call (a jnp.asarray each would be an extra dispatch).
        out = batch_step(
            self.venv, mode, self._device_keys, self._state, actions.astype(np.int32), self.params, self._autoreset
        )
        self._device_keys, obs_d, self._state, reward, terminated, truncated, final_d, slipped = out
        self._obs_device = obs_d
        obs, reward, terminated, truncated, slipped = jax.device_get((obs_d, reward, terminated, truncated, slipped))
        terminated, truncated = np.array(terminated), np.array(truncated)
        done = terminated | truncated
        infos = self._step_infos(done, slipped, final_d)
        self._autoreset = done
        rewards = np.array(reward, dtype=np.float64)
        for value32, value in self._rewards.items():  # Gymnasium's values, as SyncVectorEnv holds them
            rewards[reward == value32] = value
        return self._host_obs(obs), rewards, terminated, truncated, infos

    def _step_infos(self, done: np.ndarray, slipped: np.ndarray, final_d: jax.Array) -> dict[str, Any]:
        """The info dict ``SyncVectorEnv`` assembles (``VectorEnv._add_info``, env by env) from the
        single env's infos, in its key order and dtypes: an info array takes the type of the first
        env's value (``int`` 1 from a reset, ``float`` from a step)."""
        n = self.num_envs
        # NEXT_STEP: the envs that were reset instead of stepped report the reset info.
        reset = self._autoreset if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(n, bool)
        prob = self._probs[np.asarray(slipped, np.int64)]
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final = jax.device_get(final_d)
            final_obs = np.full(n, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = self._single_obs(final[i])
            final_info = {"prob": np.where(done, prob, 0.0), "_prob": done.copy()} if self._toy_text else {}
            ended = {"final_obs": final_obs, "_final_obs": done.copy(), "final_info": final_info,
                     "_final_info": done.copy()}
            reset = done
        else:
            ended = {}
        if not self._toy_text:
            return ended
        top = np.where(reset, 1.0, prob).astype(np.int64 if reset[0] else np.float64)
        step_info = {"prob": top, "_prob": np.ones(n, bool)}
        # env 0's own entries come first: its final_* if it ended, else its step info
        return {**ended, **step_info} if done[0] and ended else {**step_info, **ended}

    def render(self):
        if self._state is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return tuple(
                self.env.render(jax.tree.map(lambda x: x[i], self._state), self.params, mode="ansi")
                for i in range(self.num_envs)
            )
        return np.array(self._render(self._state, self.params))


def _register(env_id: str) -> None:
    gid = gymnasium_id(env_id)
    if gid in gymnasium.registry:
        return
    gymnasium.register(
        id=gid,
        entry_point="jaxgrid.gym_adapter:JaxGridEnv",
        vector_entry_point="jaxgrid.gym_adapter:JaxGridVectorEnv",
        kwargs={"env_id": env_id},
        max_episode_steps=SPEC_MAX_EPISODE_STEPS.get(env_id),
        reward_threshold=SPEC_REWARD_THRESHOLD.get(env_id),
        disable_env_checker=False,
    )


def register_gymnasium_envs() -> None:
    """Registers every jaxgrid id (and any registered later) as ``jaxgrid/<id>`` in Gymnasium."""
    for env_id in registry.registered_ids():
        _register(env_id)
    registry.add_register_hook(_register)
