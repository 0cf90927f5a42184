"""``VecEnv``: N copies of a gymnax env stepped with one key, resetting only the envs that ended.

``jax.vmap(env.step)`` auto-resets with a select, so every env computes a reset on every step. For a
fixed layout that costs nothing; for a procedural env (a new maze at every reset) it is the whole
step. ``VecEnv.step`` gives bitwise the same results as

    jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(key, num_envs), state, action, params)

but, for envs with a costly reset, it computes the step without its reset for all envs, then a reset
for only the envs whose episode ended: their indices are compacted into ``reset_capacity`` slots,
each done env's reset is made from its own reset key (the same key ``env.step`` would have split
off), and the results are scattered back. When more than ``reset_capacity`` envs end in one step,
further chunks of ``reset_capacity`` run in a loop until every done env is reset (exact, never
dropped), so a capacity sets the speed, never the results.

Keys: ``env.step`` steps on its key itself (a slippery step hashes the key's words, no Threefry)
and resets on ``key_reset = split(key)[1]``; ``VecEnv`` derives the per-env keys ``split(key, N)[i]``
and their reset halves only where they are used (threefry is counter-based: ``split(key, N)[i]`` is
one hash of the counter ``i``), so the keys of envs that did not end are never hashed unless the
step itself is random (slippery moves: one Threefry hash per env and step, the per-env key).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jaxgrid.gymnax_base import environment

from jaxgrid import generators
from jaxgrid.env import GridWorld
from jaxgrid.procedural import ProceduralGridWorld, RandomGoalGridWorld

# Default reset capacity of a procedural env: this fraction of the batch, at least MIN_CAPACITY.
# Under random actions 0.5% (Maze-9x9-v0, median) to 1% (FourRoomsRandom-v0) of the envs end per
# step, so N/128 is about one round; measured beside N/32 (1.7x slower for Maze-9x9-v0 at 4,096
# envs: a maze costs ~3 us, every slot is generated) and N/8 by bench/peers.py's capacity rows.
DEFAULT_CAPACITY_FRACTION = 1 / 128
MIN_CAPACITY = 4


def default_reset_capacity(env: environment.Environment, num_envs: int) -> int:
    """The ``reset_capacity`` ``VecEnv`` uses when none is given.

    ``num_envs`` (a reset for every env, as ``vmap(env.step)``) where the reset is cheap (fixed
    layouts, gymnax's classic-control envs): compaction would cost more than it saves. For a
    procedural jaxgrid env, ``max(MIN_CAPACITY, num_envs * DEFAULT_CAPACITY_FRACTION)``.
    """
    if isinstance(env, ProceduralGridWorld):
        return min(num_envs, max(MIN_CAPACITY, math.ceil(num_envs * DEFAULT_CAPACITY_FRACTION)))
    return num_envs


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class VecEnv:
    """``num_envs`` copies of ``env`` with gymnax-style batched ``reset`` and ``step``.

    Args:
        env: a gymnax ``Environment`` (any jaxgrid env, or a gymnax env such as ``CartPole-v1``).
        num_envs: N, the batch size (static).
        reset_capacity: K, the number of resets computed per step (static); more than K done
            envs in one step take further rounds of K. ``None``: ``default_reset_capacity(env, N)``.
            ``K >= N`` is ``vmap(env.step)`` itself. Envs other than jaxgrid's grids (gymnax's
            own, wrappers, subclasses that override ``step``) always run as ``vmap(env.step)``.

    Raises:
        ValueError: ``num_envs`` or ``reset_capacity`` is not an int >= 1.

    Every method works under ``jit``, ``vmap`` (e.g. over seeds), ``lax.scan`` and ``shard_map``
    (one ``VecEnv`` of the per-device batch inside the mapped function). ``transition_each`` and
    ``reset_where`` are the two pieces of ``step``, for drivers with their own auto-reset rule (the
    Gymnasium vector adapter). Two ``VecEnv`` of equal envs, sizes and capacities compare and hash
    equal (a static argument of ``jit`` compiles once for both).
    """

    def __init__(self, env: environment.Environment, num_envs: int, reset_capacity: int | None = None):
        self.env = env
        self.num_envs = _check_count("num_envs", num_envs)
        if reset_capacity is None:
            reset_capacity = default_reset_capacity(env, num_envs)
        self.reset_capacity = min(_check_count("reset_capacity", reset_capacity), self.num_envs)
        self._transition = _transition_of(env)
        self._obs_of_state = _obs_of_state(env) if self._transition is not None else None
        self.compacted = self._transition is not None and self.reset_capacity < self.num_envs

    # ----------------------------------------------------------------------------------------
    @property
    def default_params(self) -> Any:
        return self.env.default_params

    def action_space(self, params: Any = None):
        """The space of one env's action (the batch adds a leading ``[N]``)."""
        return self.env.action_space(params)

    def observation_space(self, params: Any = None):
        """The space of one env's observation (the batch adds a leading ``[N]``)."""
        return self.env.observation_space(params)

    @property
    def name(self) -> str:
        return self.env.name

    def __repr__(self) -> str:
        return f"VecEnv({self.env!r}, num_envs={self.num_envs}, reset_capacity={self.reset_capacity})"

    # ----------------------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        """``(obs [N, ...], state)``: bitwise ``vmap(env.reset)(jax.random.split(key, N), params)``."""
        return self.reset_each(jax.random.split(key, self.num_envs), params)

    def reset_each(self, keys: jax.Array, params: Any = None) -> tuple[Any, Any]:
        """``reset`` with one key per env (``keys`` ``[N]``): ``vmap(env.reset)(keys, params)``."""
        params = self.env.default_params if params is None else params
        return jax.vmap(self.env.reset, in_axes=(0, None))(keys, params)

    def step(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any = None
    ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One auto-resetting step of every env.

        Args:
            key: one PRNG key for the whole batch (raw ``uint32[2]`` or typed).
            state: the batched env state, leaves ``[N, ...]``.
            action: ``[N, ...]`` actions.
            params: env params shared by the batch (``None``: the env's defaults).

        Returns:
            ``(obs [N, ...], state, reward [N], terminated [N], truncated [N], info)``, bitwise
            ``vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(key, N), state, action, params)``;
            ``info["final_observation"]`` holds the observation each episode ended on.
        """
        if self._transition is None:
            return self.step_each(jax.random.split(key, self.num_envs), state, action, params)
        return self._step(lambda idx: env_keys(key, self.num_envs, idx), state, action, params)

    def step_each(
        self, keys: jax.Array, state: Any, action: jax.Array, params: Any = None
    ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """``step`` with one key per env (``keys`` ``[N]``, e.g. drawn ahead for a whole rollout):
        bitwise ``vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)``."""
        if self._transition is None:
            params = self.env.default_params if params is None else params
            return jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
        return self._step(lambda idx: keys if idx is None else keys[idx], state, action, params)

    # ----------------------------------------------------------------------------------------
    # The two pieces of a step, public for drivers with their own auto-reset rule (the Gymnasium
    # adapter's NEXT_STEP / SAME_STEP / DISABLED modes); ``step`` is ``transition_each`` then
    # ``reset_where``.
    def transition_each(
        self, keys: jax.Array, state: Any, action: jax.Array, params: Any = None
    ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """Every env's step without its auto-reset: bitwise
        ``vmap(env.step_without_reset, in_axes=(0, 0, 0, None))(keys, state, action, params)``.

        Args:
            keys: ``[N]`` keys, each used as that env's step key (the key ``env.step`` was given).
            state, action, params: as for ``step``.

        Returns:
            ``(obs, state, reward, terminated, truncated, info)`` of the state each env reached
            (``truncated``: the time limit was used up without terminating), leaves ``[N, ...]``.

        Raises:
            ValueError: ``env`` is not a jaxgrid grid env (gymnax's own envs have no such split).
        """
        self._check_split("transition_each")
        params = self.env.default_params if params is None else params
        return jax.vmap(self._transition, in_axes=(0, 0, 0, None))(keys, state, action, params)

    def reset_where(self, keys: jax.Array, mask: jax.Array, obs: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        """``(obs, state)`` with each env where ``mask`` replaced by ``env.reset_env(keys[i], params)``:
        bitwise ``where(mask, vmap(env.reset_env)(keys, params), (obs, state))``, computing at most
        ``reset_capacity`` resets per round (one round unless more envs are masked).

        Args:
            keys: ``[N]`` keys, each used as that env's reset key.
            mask: ``[N]`` bool, the envs to reset.
            obs, state: the batch (leaves ``[N, ...]``); unmasked envs keep theirs.
            params: as for ``step``.

        Raises:
            ValueError: ``env`` is not a jaxgrid grid env.
        """
        self._check_split("reset_where")
        params = self.env.default_params if params is None else params
        return self._reset_where(lambda idx: keys if idx is None else keys[idx], mask, obs, state, params)

    def _check_split(self, method: str) -> None:
        if self._transition is None:
            raise ValueError(
                f"VecEnv.{method} needs a jaxgrid grid env (step_without_reset / reset_env); "
                f"{self.env!r} steps only as a whole (use step or step_each)"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VecEnv):
            return NotImplemented
        return (self.env, self.num_envs, self.reset_capacity) == (other.env, other.num_envs, other.reset_capacity)

    def __hash__(self) -> int:  # equal VecEnvs share compiled programs where one is a static argument
        return hash((VecEnv, self.env, self.num_envs, self.reset_capacity))

    def _step(self, keys_at, state, action, params):
        """``env.step`` rebuilt from its pieces; ``keys_at(idx [M] int32 | None) -> [M]`` keys of
        those envs (None: all): ``transition_each`` on the keys themselves, then ``reset_where`` on
        the reset halves (``split(key)[1]``) of the envs that ended."""
        params = self.env.default_params if params is None else params
        # Every env's key: hashed only where used (a slippery step; XLA drops it otherwise).
        obs_st, state_st, reward, terminated, truncated, info = jax.vmap(
            self._transition, in_axes=(0, 0, 0, None)
        )(keys_at(None), state, action, params)
        done = jnp.logical_or(terminated, truncated)
        reset_keys_at = lambda idx: child_keys(keys_at(idx), 1)  # noqa: E731
        if self._obs_of_state is None:
            obs, state = self._reset_where(reset_keys_at, done, obs_st, state_st, params)
        else:
            # Only the (small) state is reset and scattered; the observation is encoded once, from
            # the state each env ends the step in: the same values as the select of the two
            # observations (a grid env's observation is get_obs of its state), without writing the
            # observation batch twice (and, where the caller drops info, fused into its consumer).
            _, state = self._reset_where(reset_keys_at, done, None, state_st, params)
            obs = jax.vmap(self._obs_of_state, in_axes=(0, None))(state, params)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st,
                "final_state": state_st}  # as GridWorld.step's info
        return obs, state, reward, terminated, truncated, info

    def _reset_where(self, keys_at, mask: jax.Array, obs: Any, state: Any, params: Any) -> tuple[Any, Any]:
        """Dense (K = N): every env's reset and a select, as ``env.step``; compacted: resets for
        the masked envs only."""
        if self.compacted:
            return self._reset_done(keys_at, mask, obs, state, params)
        obs_re, state_re = jax.vmap(self.env.reset_env, in_axes=(0, None))(keys_at(None), params)
        select = lambda r, s: jnp.where(jnp.reshape(mask, mask.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
        obs = None if obs is None else jax.tree.map(select, obs_re, obs)
        return obs, jax.tree.map(select, state_re, state)

    def _reset_done(self, keys_at, done: jax.Array, obs: Any, state: Any, params: Any):
        """``obs``/``state`` with every ``done`` env replaced by its reset (``keys_at(idx)``: the reset keys of
        those envs), K envs per round."""
        n, k = self.num_envs, self.reset_capacity
        rank = jnp.cumsum(done, dtype=jnp.int32) - 1  # [N] place of each done env among the done
        count = rank[-1] + 1
        # [N + K] the done envs' indices in order, then n (no env: dropped by the scatters below).
        order = jnp.full((n + k,), n, jnp.int32).at[jnp.where(done, rank, n + k)].set(
            jnp.arange(n, dtype=jnp.int32), mode="drop"
        )

        def reset_round(first: jax.Array, obs: Any, state: Any) -> tuple[Any, Any]:
            # The done envs of rank first .. first+K-1; slots past the last done env hold n.
            idx = jax.lax.dynamic_slice(order, (first,), (k,))
            keys = keys_at(jnp.minimum(idx, n - 1))
            obs_re, state_re = jax.vmap(self.env.reset_env, in_axes=(0, None))(keys, params)
            put = lambda full, part: full.at[idx].set(part, mode="drop")  # noqa: E731
            obs = None if obs is None else jax.tree.map(put, obs, obs_re)  # None: state only
            return obs, jax.tree.map(put, state, state_re)

        obs, state = reset_round(jnp.int32(0), obs, state)

        # NOTE: a while loop, not lax.cond: under vmap (over seeds) a cond becomes a select that
        # runs its costly branch every step; the loop runs only when some batch member needs it.
        def more(carry):
            return carry[0] < count

        def next_round(carry):
            first, obs, state = carry
            obs, state = reset_round(first, obs, state)
            return first + k, obs, state

        _, obs, state = jax.lax.while_loop(more, next_round, (jnp.int32(k), obs, state))
        return obs, state


def _transition_of(env: environment.Environment):
    """``env.step_without_reset`` for jaxgrid grids that keep ``GridWorld.step``, else None.

    NOTE: other gymnax envs (CartPole, wrappers) always run as ``vmap(env.step)``: their resets
    are cheap, and float dynamics are not bitwise stable across differently fused XLA programs
    (gymnax CartPole's ``x_dot`` differs in the last bit between eager and jit), so a rebuilt
    step could not promise bitwise equality.
    """
    if isinstance(env, GridWorld) and type(env).step is GridWorld.step:
        return env.step_without_reset
    return None


def _obs_of_state(env: environment.Environment):
    """``env.get_obs`` where every observation the env returns is ``get_obs`` of the state it returns
    with it (jaxgrid's own ``step_env``/``reset_env``, which end in ``self.get_obs(state, params)``),
    else None (a subclass with its own reset or step: its observations are scattered as given)."""
    step_ok = type(env).step_env is GridWorld.step_env
    reset_ok = type(env).reset_env in (
        GridWorld.reset_env, ProceduralGridWorld.reset_env, RandomGoalGridWorld.reset_env
    )
    return env.get_obs if step_ok and reset_ok else None


# ------------------------------------------------------------------------------------------------
# Keys, hashed only where used.
def _threefry_words(key: jax.Array) -> jax.Array | None:
    """``[..., 2] uint32`` words of a threefry key (raw or typed), or None for another PRNG or
    when ``jax_threefry_partitionable`` is off (the counter layout below assumes it)."""
    if not jax.config.jax_threefry_partitionable:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        return jax.random.key_data(key)
    if key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        return key
    return None


def _as_key_like(words: jax.Array, like: jax.Array) -> jax.Array:
    if jnp.issubdtype(like.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(words, impl=jax.random.key_impl(like))
    return words


def _hash(words: jax.Array, counter: jax.Array) -> jax.Array:
    """``[M, 2]`` uint32: threefry2x32 of the 64-bit counters ``(0, counter)`` under the keys ``words``."""
    counter = jnp.asarray(counter, jnp.uint32)
    shape = jnp.broadcast_shapes(words.shape[:-1], counter.shape)
    k1, k2 = (jnp.broadcast_to(words[..., i], shape) for i in (0, 1))
    bits1, bits2 = generators.threefry2x32(k1, k2, jnp.zeros(shape, jnp.uint32), jnp.broadcast_to(counter, shape))
    return jnp.stack([bits1, bits2], axis=-1)


def env_keys(key: jax.Array, num: int, idx: jax.Array | None = None) -> jax.Array:
    """``jax.random.split(key, num)[idx]`` (``idx`` ``[M]`` int32 in ``0 .. num-1``; None: all),
    hashing only the ``M`` keys asked for. Bitwise equal to the split (tested)."""
    words = _threefry_words(key)
    if words is None:
        keys = jax.random.split(key, num)
        return keys if idx is None else keys[idx]
    if idx is None:
        idx = jnp.arange(num, dtype=jnp.int32)
    return _as_key_like(_hash(words, idx.astype(jnp.uint32)), key)


def child_keys(keys: jax.Array, which: int) -> jax.Array:
    """``jax.vmap(jax.random.split)(keys)[:, which]``: half ``which`` (0 or 1) of each key's split."""
    words = _threefry_words(keys)
    if words is None:
        return jax.vmap(jax.random.split)(keys)[:, which]
    return _as_key_like(_hash(words, jnp.uint32(which)), keys)
