"""The grid environment on the gymnax 1.x contract.

One class serves every fixed-layout grid: the layout is data (transition table and cell kinds in
the params), so new maps need no new step function. The step is a handful of table look-ups and
``jnp.where``s: no Python work, no ``lax.cond``/``switch``, and no random numbers unless the env is
stochastic (slippery moves or several start cells).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from jaxgrid import generators, observations
from jaxgrid.layouts import UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.types import GOAL, LAVA, GridParams, GridState, SlipperyGridParams

# Name of each (row, col) move, for action labels in renders, logs and errors.
DELTA_NAMES = {(-1, 0): "up", (0, 1): "right", (1, 0): "down", (0, -1): "left"}
PARAM_CASTS = {
    "max_steps_in_episode": jnp.int32,
    "step_reward": jnp.float32,
    "goal_reward": jnp.float32,
    "lava_reward": jnp.float32,
    "lava_terminates": jnp.bool_,
    "slip_prob": jnp.float32,
}


class GridWorld(environment.Environment[GridState, GridParams]):
    """A deterministic or slippery gridworld over a ``Layout``.

    Args:
        layout: the map; its height and width fix the array shapes (static).
        obs: observation encoding, one of ``observations.ENCODINGS``.
        view_size: side of the egocentric view for ``obs="view"`` (odd).
        action_deltas: (row, col) delta of each action, in action order.
        slippery: compile the slip sampling in; the slip probability itself is the traced
            ``SlipperyGridParams.slip_prob``. A non-slippery env has ``GridParams``, which have no
            ``slip_prob`` field, so a slip cannot be set on an env that would ignore it.
        param_defaults: values for the traced params (``max_steps_in_episode``, rewards, ...).
        env_id: the registered id, for ``name`` and messages.
    """

    def __init__(
        self,
        layout: Layout,
        obs: str = "index",
        view_size: int = 5,
        action_deltas: tuple[tuple[int, int], ...] = UP_RIGHT_DOWN_LEFT,
        slippery: bool = False,
        param_defaults: dict[str, Any] | None = None,
        env_id: str = "GridWorld-v0",
    ):
        super().__init__()
        observations.check_encoding(obs, view_size)
        self.layout = layout
        self.height = layout.height
        self.width = layout.width
        self.obs_encoding = obs
        self.view_size = view_size
        self.action_deltas = tuple(tuple(d) for d in action_deltas)
        self.slippery = bool(slippery)
        self.random_start = int(layout.start.sum()) > 1
        self.env_id = env_id
        self._param_defaults = dict(param_defaults or {})
        self._default_params = self.params_for_layout(layout, **self._param_defaults)

    # ----------------------------------------------------------------------------------------
    # params
    @property
    def default_params(self) -> GridParams:
        return self._default_params

    def params_for_layout(self, layout: Layout, **values: Any) -> GridParams:
        """Params that run this env on ``layout`` (same height and width), with traced ``values``."""
        if (layout.height, layout.width) != (self.height, self.width):
            raise ValueError(
                f"layout is {layout.height}x{layout.width} but this env was built for "
                f"{self.height}x{self.width}; pad it with Layout.pad_to"
            )
        start_cells = layout.start.reshape(-1)
        fields = {
            "next_cell": jnp.asarray(layout.next_cell_table(self.action_deltas)),
            "cell_kind": jnp.asarray(layout.kind.reshape(-1)),
            "start_logits": jnp.where(jnp.asarray(start_cells), 0.0, -jnp.inf).astype(jnp.float32),
            "start_cell": jnp.int32(int(start_cells.argmax())),
        }
        return self._make_params(fields, values)

    def _make_params(self, fields: dict[str, Any], values: dict[str, Any]) -> GridParams:
        """``GridParams`` (``SlipperyGridParams`` if slippery) from layout ``fields`` and cast ``values``."""
        cls = SlipperyGridParams if self.slippery else GridParams
        fields = dict(fields)
        for name, value in values.items():
            if name not in PARAM_CASTS or (name == "slip_prob" and not self.slippery):
                raise ValueError(f"unknown env param {name!r}; valid: {', '.join(self.param_names)}")
            fields[name] = PARAM_CASTS[name](value)
        return cls(**fields)

    PARAM_NAMES = (
        "max_steps_in_episode", "step_reward", "goal_reward", "lava_reward", "lava_terminates", "slip_prob",
    )

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.PARAM_NAMES if self.slippery else self.PARAM_NAMES[:-1]

    # ----------------------------------------------------------------------------------------
    # dynamics
    @partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: GridState,
        action: int | jax.Array,
        params: GridParams | None = None,
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One step with auto-reset: ``(obs, state, reward, terminated, truncated, info)``.

        ``terminated``: the goal (or terminating lava) was entered, no future return.
        ``truncated``: this step used up ``max_steps_in_episode`` without terminating; the world
        would have gone on. Reaching the goal on the last allowed step is terminated only.
        At either, ``obs``/``state`` start the next episode and ``info["final_observation"]``
        is the observation the episode ended on.
        """
        if params is None:
            params = self.default_params
        # NOTE: jaxgrid.VecEnv rebuilds this auto-reset from the two pieces (``step_without_reset``
        # with key_step, ``reset_env`` with key_reset) for only the envs that ended, bitwise.
        key_step, key_reset = jax.random.split(key)
        obs_st, state_st, reward, terminated, truncated, info = self.step_without_reset(
            key_step, state, action, params
        )
        done = terminated | truncated
        obs_re, state_re = self.reset_env(key_reset, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        obs = jax.tree.map(lambda r, s: jnp.where(done, r, s), obs_re, obs_st)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st}
        return obs, state, reward, terminated, truncated, info

    def step_without_reset(
        self, key: jax.Array, state: GridState, action: int | jax.Array, params: GridParams
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """``step`` before its auto-reset: ``(obs, state, reward, terminated, truncated, info)`` of
        the true next state (``key`` is ``step``'s ``key_step``, the first half of its split)."""
        obs, state, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = (state.time >= params.max_steps_in_episode) & ~terminated
        return obs, state, reward, terminated, truncated, info

    def step_env(
        self, key: jax.Array, state: GridState, action: int | jax.Array, params: GridParams
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, dict[str, Any]]:
        # NOTE: an out-of-range action is clipped to a valid one (the Gymnasium adapter raises on
        # it instead); with action and cell in range, the table gathers skip bounds handling.
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.num_actions - 1)
        if self.slippery:
            # One 32-bit draw per step (results version 2): its top 23 bits are the slip uniform
            # (jax.random.uniform's resolution), its lowest bit the side. Version 1 split the key
            # and drew uniform + bernoulli: four threefry hashes per env step where this is one.
            bits = generators.key_bits(key)  # = jax.random.bits(key, (), uint32)
            uniform = (bits >> 9).astype(jnp.float32) * jnp.float32(2.0**-23)
            slip = uniform < params.slip_prob
            turn = jnp.where((bits & 1) == 1, 1, 3)  # +1: clockwise, +3: counter
            action = jnp.where(slip, (action + turn) % 4, action)
        pos, kind = self.move(state, action, params)
        at_goal, in_lava = kind == GOAL, kind == LAVA
        reward = jnp.where(
            at_goal, params.goal_reward, jnp.where(in_lava, params.lava_reward, params.step_reward)
        ).astype(jnp.float32)
        terminated = at_goal | (in_lava & params.lava_terminates)
        pos = jnp.where(in_lava & ~params.lava_terminates, self.start_of(state, params), pos)
        state = state.replace(time=state.time + 1, pos=pos)
        return self.get_obs(state, params), state, reward, terminated, {}

    # Layout access: fixed layouts keep their tables in params; procedural envs override these
    # to read the layout from the state.
    def move(self, state: GridState, action: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        """``(cell, kind)``: the () int32 cell ``action`` leads to from ``state.pos`` and its kind.

        NOTE: one gather per env step. A ``[cells * actions]`` table packing each move's target
        cell and that cell's kind is built from the (unbatched) params: under ``vmap`` over envs
        it is built once per step for the whole batch (XLA hoists it out of a scan), then every
        env reads one entry, where ``next_pos`` then ``cell_kinds`` would be two dependent
        gathers per env (~1.4x the step's cost at 65,536 envs on CPU).
        """
        num_actions = params.next_cell.shape[-1]
        target = params.next_cell.astype(jnp.int32)  # [cells, actions]
        kind = params.cell_kind.astype(jnp.int32).at[target].get(mode="promise_in_bounds")
        packed = (target * 256 + kind).reshape(-1)  # cell kinds are small non-negative codes
        entry = packed.at[state.pos * num_actions + action].get(mode="promise_in_bounds")
        return entry >> 8, entry & 0xFF

    def next_pos(self, state: GridState, action: jax.Array, params: GridParams) -> jax.Array:
        """() int32 cell that ``action`` leads to from ``state.pos`` (walls and edges applied)."""
        return params.next_cell.at[state.pos, action].get(mode="promise_in_bounds")

    def cell_kinds(self, state: GridState, params: GridParams) -> jax.Array:
        """[H*W] int8 cell kinds of the layout ``state`` lives in."""
        return params.cell_kind

    def start_of(self, state: GridState, params: GridParams) -> jax.Array:
        """() int32 start cell an agent returns to from a non-terminating lava cell."""
        return params.start_cell

    def reset_env(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, GridState]:
        if self.random_start:
            pos = jax.random.categorical(key, params.start_logits).astype(jnp.int32)
        else:
            pos = jnp.asarray(params.start_cell, jnp.int32)
        state = GridState(time=jnp.int32(0), pos=pos)
        return self.get_obs(state, params), state

    def get_obs(self, state: GridState, params: GridParams | None = None, key=None) -> jax.Array:
        if params is None:
            params = self.default_params
        return observations.encode(
            self.obs_encoding, state.pos, self.cell_kinds(state, params), self.height, self.width,
            self.view_size, shared_layout=type(self).cell_kinds is GridWorld.cell_kinds,
        )

    def render(
        self, state: GridState, params: GridParams | None = None, mode: str = "rgb_array",
        cell_px: int = 16,
    ) -> jax.Array | str:
        """Draws ``state``: ``mode="rgb_array"`` gives [H*cell_px, W*cell_px, 3] uint8 (jittable,
        vmappable over states for a batch of frames); ``mode="ansi"`` gives text (host-side)."""
        from jaxgrid import render  # local import: render imports this module

        params = self.default_params if params is None else params
        kinds = self.cell_kinds(state, params)
        if mode == "rgb_array":
            return render.render_rgb(kinds, state.pos, self.height, self.width, cell_px)
        if mode == "ansi":
            return render.render_ansi(kinds, state.pos, self.height, self.width)
        raise ValueError(f"unknown render mode {mode!r}; valid: 'rgb_array', 'ansi'")

    @property
    def action_names(self) -> tuple[str, ...]:
        """Name of each action ("up", "right", ...), in action order."""
        return tuple(DELTA_NAMES[d] for d in self.action_deltas)

    def is_terminated(self, state: GridState, params: GridParams) -> jax.Array:
        kind = self.cell_kinds(state, params)[state.pos]
        return (kind == GOAL) | ((kind == LAVA) & params.lava_terminates)

    def is_truncated(self, state: GridState, params: GridParams) -> jax.Array:
        return (state.time >= params.max_steps_in_episode) & ~self.is_terminated(state, params)

    # ----------------------------------------------------------------------------------------
    # spaces and names
    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return len(self.action_deltas)

    def action_space(self, params: GridParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: GridParams | None = None) -> spaces.Space:
        return observations.observation_space(self.obs_encoding, self.height, self.width, self.view_size)

    def state_space(self, params: GridParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
                "pos": spaces.Discrete(self.height * self.width),
            }
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r}, {self.height}x{self.width}, obs={self.obs_encoding!r})"
