"""The grid environment on the gymnax 1.x contract.

One class serves every fixed-layout grid: the layout is data (transition table and cell kinds in
the params), so new maps need no new step function. The step is a handful of table look-ups and
``jnp.where``s: no Python work, no ``lax.cond``/``switch``, and no random numbers unless the env is
stochastic (slippery moves or several start cells).
"""

from __future__ import annotations

import contextlib
import inspect
import contextvars
from collections.abc import Iterator
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxgrid.gymnax_base import environment, spaces

from jaxgrid import generators, observations
from jaxgrid.layouts import UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.types import (
    GOAL,
    LAVA,
    PARAM_SPECS,
    GridParams,
    GridState,
    SlipperyGridParams,
    check_param,
)

# Name of each (row, col) move, for action labels in renders, logs and errors.
DELTA_NAMES = {(-1, 0): "up", (0, 1): "right", (1, 0): "down", (0, -1): "left"}

# While set, envs keep their arrays in NumPy: building one checks everything without a device
# transfer (``jaxgrid.check_make``, which a config runs on every construction).
_HOST_ONLY = contextvars.ContextVar("jaxgrid_host_only", default=False)


@contextlib.contextmanager
def host_only() -> Iterator[None]:
    """Envs built inside keep NumPy arrays (no device transfer)."""
    token = _HOST_ONLY.set(True)
    try:
        yield
    finally:
        _HOST_ONLY.reset(token)


def to_device(x: Any) -> Any:
    """``jax.device_put(x)``, or ``x`` itself inside ``host_only()``."""
    return x if _HOST_ONLY.get() else jax.device_put(x)


class GridWorld(environment.Environment[GridState, GridParams]):
    """A deterministic or slippery gridworld over a ``Layout``.

    Two envs built alike (same class, layout, options and param defaults) compare and hash equal,
    so the ``jit``-compiled ``step``/``reset`` (``self`` is a static argument) are shared by them.
    An env is not modified after construction.

    Args:
        layout: the map; its height and width fix the array shapes (static).
        obs: observation encoding, one of ``observations.ENCODINGS``.
        view_size: side of the egocentric view for ``obs="view"`` (a positive odd int).
        action_deltas: (row, col) delta of each action, in action order.
        slippery: compile the slip sampling in; the slip probability itself is the traced
            ``SlipperyGridParams.slip_prob``. A non-slippery env has ``GridParams``, which have no
            ``slip_prob`` field, so a slip cannot be set on an env that would ignore it.
        param_defaults: values for the traced params (``max_steps_in_episode``, rewards, ...),
            each checked by ``jaxgrid.types.check_param``.
        env_id: the registered id, for ``name`` and messages.
        debug: ``step`` checks its inputs at run time with ``jax.experimental.checkify`` and
            raises on an out-of-range action or param value (see ``step``); off by default.

    Raises:
        ValueError: a bad option or param default, naming it and its valid values.
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
        debug: bool = False,
    ):
        self._init_static(layout, obs, view_size, action_deltas, slippery, param_defaults, env_id, debug)
        self.random_start = int(layout.start.sum()) > 1
        self._default_params = self.params_for_layout(layout)

    def _init_static(
        self,
        layout: Layout,
        obs: str,
        view_size: int,
        action_deltas: tuple[tuple[int, int], ...],
        slippery: bool,
        param_defaults: dict[str, Any] | None,
        env_id: str,
        debug: bool,
    ) -> None:
        """The static configuration shared by fixed and procedural grids, checked."""
        super().__init__()
        if not isinstance(layout, Layout):
            raise ValueError(f"layout must be a jaxgrid Layout, got {type(layout).__name__}")
        observations.check_encoding(obs, view_size)
        if isinstance(view_size, bool) or not isinstance(view_size, (int, np.integer)) or view_size < 1 \
                or view_size % 2 == 0:
            raise ValueError(f"view_size must be a positive odd int (the agent is the centre), got {view_size!r}")
        for name, flag in (("slippery", slippery), ("debug", debug)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.layout = layout
        self.height = layout.height
        self.width = layout.width
        self.obs_encoding = str(obs)
        self.view_size = int(view_size)
        self.action_deltas = tuple((int(dr), int(dc)) for dr, dc in action_deltas)
        self.slippery = bool(slippery)
        self.debug = bool(debug)
        self.env_id = str(env_id)
        # Python scalars (checked, stored with the param's dtype and read back): hashable.
        self._param_defaults = {
            name: self._check_value(name, value, to_device=False).item()
            for name, value in dict(param_defaults or {}).items()
        }

    # ----------------------------------------------------------------------------------------
    # equality: the static configuration
    def _static_key(self) -> tuple:
        """Everything the compiled ``step``/``reset`` depend on: the class and every attribute
        (the layout's cells, options, default params as values, generators)."""
        key = self.__dict__.get("_static_key_cache")
        if key is None:
            items = tuple(sorted((k, _freeze(v, self)) for k, v in vars(self).items() if k != "_static_key_cache"))
            key = (type(self), items)
            self.__dict__["_static_key_cache"] = key
        return key

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not type(self):
            return NotImplemented
        return self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    def __setattr__(self, name: str, value: Any) -> None:
        # Any change after construction (e.g. gymnax's copy-and-set helpers) invalidates the key.
        object.__setattr__(self, name, value)
        self.__dict__.pop("_static_key_cache", None)

    # ----------------------------------------------------------------------------------------
    # params
    @property
    def default_params(self) -> GridParams:
        return self._default_params

    def params_for_layout(self, layout: Layout, **values: Any) -> GridParams:
        """Params that run this env on ``layout`` (same height and width): the env's own param
        defaults (e.g. FrozenLake's rewards, time limit and slip) with ``values`` on top.

        Raises:
            ValueError: a layout of another size, an unknown param name or a bad value.
        """
        self._check_layout_size(layout)
        start_cells = layout.start.reshape(-1)
        fields = {
            "next_cell": to_device(layout.next_cell_table(self.action_deltas)),
            "cell_kind": to_device(layout.kind.reshape(-1)),
            "start_logits": to_device(np.where(start_cells, 0.0, -np.inf).astype(np.float32)),
            "start_cell": to_device(np.int32(start_cells.argmax())),
        }
        return self._make_params(fields, {**self._param_defaults, **values})

    def _check_layout_size(self, layout: Layout) -> None:
        if not isinstance(layout, Layout):
            raise ValueError(f"layout must be a jaxgrid Layout, got {type(layout).__name__}")
        if (layout.height, layout.width) != (self.height, self.width):
            raise ValueError(
                f"layout is {layout.height}x{layout.width} but this env was built for "
                f"{self.height}x{self.width}; pad it with Layout.pad_to"
            )

    def _check_value(self, name: str, value: Any, to_device: bool = True) -> jax.Array:
        """One param value checked (``check_param``, scalar) after its name is checked."""
        if name not in self.param_names:
            hint = " (slip_prob needs a slippery env: make(..., slip_prob=p))" if name == "slip_prob" else ""
            raise ValueError(f"unknown env param {name!r}{hint}; valid: {', '.join(self.param_names)}")
        return check_param(name, value, scalar=True, to_device=to_device)

    def _make_params(self, fields: dict[str, Any], values: dict[str, Any]) -> GridParams:
        """``GridParams`` (``SlipperyGridParams`` if slippery) from layout ``fields`` and checked
        ``values`` (every knob set here, from ``PARAM_SPECS`` defaults where not given)."""
        cls = SlipperyGridParams if self.slippery else GridParams
        fields = dict(fields)
        values = {**{n: PARAM_SPECS[n].default for n in self.param_names}, **values}
        for name, value in values.items():
            fields[name] = to_device(self._check_value(name, value, to_device=False))
        return cls(**fields)

    PARAM_NAMES = tuple(PARAM_SPECS)

    @property
    def param_names(self) -> tuple[str, ...]:
        """The traced knobs this env's params have (``slip_prob`` only when slippery)."""
        return self.PARAM_NAMES if self.slippery else tuple(n for n in self.PARAM_NAMES if n != "slip_prob")

    def validate_params(self, params: GridParams) -> GridParams:
        """Checks ``params`` on the host for this env: their class (slippery or not), every knob's
        type, scalar shape, finiteness and range (``jaxgrid.types.PARAM_SPECS``), and the layout
        arrays' shapes against this env's grid. ``make`` and env construction run these checks;
        call this on params built by hand before compiling a long program.

        Returns:
            ``params`` unchanged.

        Raises:
            ValueError: naming the param (or layout array), what is wrong and the valid values.
        """
        self.check_param_shapes(params)
        for name in self.param_names:
            check_param(name, getattr(params, name), scalar=True, to_device=False)
        return params

    def check_param_shapes(self, params: GridParams) -> None:
        """Static checks of ``params`` (class and array shapes); run when ``step``/``reset`` is
        traced, so they cost nothing at run time.

        Raises:
            ValueError: params of another env kind, or of another layout size, or a non-scalar knob.
        """
        want = SlipperyGridParams if self.slippery else GridParams
        if not isinstance(params, GridParams):
            raise ValueError(
                f"{self.env_id} needs {want.__name__} params (env.default_params), got {type(params).__name__}"
            )
        if self.slippery and not isinstance(params, SlipperyGridParams):
            raise ValueError(
                f"{self.env_id} is slippery and needs SlipperyGridParams (with slip_prob), got GridParams; "
                "use env.default_params.replace(...)"
            )
        if not self.slippery and isinstance(params, SlipperyGridParams):
            raise ValueError(
                f"{self.env_id} is not slippery, but these params carry slip_prob, which it would ignore; "
                "make the env with slip_prob=... (or is_slippery=True) to step with slip"
            )
        for name in self.param_names:
            value = getattr(params, name)
            if value is None:
                raise ValueError(f"env param {name} must be {PARAM_SPECS[name].valid}, got None (params.{name})")
            shape = jnp.shape(value)
            if shape != ():
                raise ValueError(
                    f"params.{name} has shape {shape}, but one env's params hold scalars (shape ()); "
                    "to step a batch of params, vmap over them"
                )
        self.check_layout_shapes(params)

    def check_layout_shapes(self, params: GridParams) -> None:
        """Static check that the layout arrays in ``params`` fit this env's grid (trace time)."""
        n, a = self.height * self.width, self.num_actions
        wants = {"next_cell": (n, a), "cell_kind": (n,), "start_logits": (n,), "start_cell": ()}
        for name, want in wants.items():
            value = getattr(params, name)
            if value is None or jnp.shape(value) == want:
                continue
            raise ValueError(
                f"params.{name} has shape {jnp.shape(value)} but {self.env_id} ({self.height}x{self.width}, "
                f"{n} cells, {a} actions) needs {want}: these params belong to another layout size; use "
                "env.default_params or env.params_for_layout(layout)"
            )

    def check_state_action(self, state: GridState, action: Any) -> None:
        """Static check that ``state`` and ``action`` are one env's (shape ``()``), at trace time.

        Raises:
            ValueError: a batched state or action without ``vmap``.
        """
        for name, value in (("state.time", state.time), ("state.pos", state.pos), ("action", action)):
            shape = jnp.shape(value)
            if shape != ():
                raise ValueError(
                    f"{name} has shape {shape} but env.step takes one env's state and a scalar action "
                    "(shape ()); to step a batch, use jax.vmap(env.step) or jaxgrid's VecEnv"
                )
        if not (jnp.issubdtype(jnp.result_type(action), jnp.integer)
                or jnp.issubdtype(jnp.result_type(action), jnp.floating)
                or jnp.issubdtype(jnp.result_type(action), jnp.bool_)):
            raise ValueError(f"action must be an int (0..{self.num_actions - 1}), got dtype {jnp.result_type(action)}")

    # ----------------------------------------------------------------------------------------
    # dynamics
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
        is the observation the episode ended on; ``info["final_state"]`` is the state it ended in
        (the state this step reached, before any reset; ``jaxgrid.replay_episode`` draws it).

        Args:
            key: a PRNG key (slip and the auto-reset's start cell / layout).
            state: one env's state (``time``/``pos`` of shape ``()``); ``vmap`` for a batch.
            action: () int (or float) in ``0..num_actions-1``. Out-of-range actions are **clipped**,
                not refused: below 0 -> 0, above ``num_actions - 1`` -> ``num_actions - 1``; a float
                is truncated toward zero after NaN -> 0 (so -1 -> 0, 4 -> 3, NaN -> 0, 2.7 -> 2).
                An env made with ``debug=True`` raises instead (``jax.experimental.checkify``): a
                ``JaxRuntimeError`` naming the action when called outside ``jit``; inside your own
                ``jit``/``vmap``/``scan``, wrap the program in ``checkify.checkify`` to get the error.
            params: this env's params (``None``: ``default_params``).

        Returns:
            obs (see ``observation_space``), state, reward () float32, terminated () bool,
            truncated () bool, info (``terminated``, ``truncated``, ``final_observation``).

        Raises:
            ValueError: when traced (before compiling), for a batched state or action without
                ``vmap``, params of another layout size or env kind, or a non-scalar knob.
        """
        if self.debug:
            err, out = self._checked_step(key, state, action, params)
            checkify.check_error(err)
            return out
        return self._step(key, state, action, params)

    def _step_body(self, key, state, action, params):
        if params is None:
            params = self.default_params
        # NOTE: jaxgrid.VecEnv rebuilds this auto-reset from the two pieces (``step_without_reset``
        # with the step's own key, ``reset_env`` with key_reset) for only the envs that ended, bitwise.
        # The step draws from ``key`` itself (the slip: ``draw_slip``, no Threefry hash); the reset
        # key is the second half of its split (results version 3; version 2 stepped on the first half).
        key_reset = jax.random.split(key)[1]
        obs_st, state_st, reward, terminated, truncated, info = self.step_without_reset(
            key, state, action, params
        )
        done = terminated | truncated
        obs_re, state_re = self.reset_env(key_reset, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        obs = jax.tree.map(lambda r, s: jnp.where(done, r, s), obs_re, obs_st)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st,
                "final_state": state_st}
        return obs, state, reward, terminated, truncated, info

    _step = jax.jit(_step_body, static_argnames=("self",))

    @partial(jax.jit, static_argnames=("self",))
    def _checked_step(self, key, state, action, params):
        return checkify.checkify(self._step_body)(key, state, action, params)

    def step_without_reset(
        self, key: jax.Array, state: GridState, action: int | jax.Array, params: GridParams
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """``step`` before its auto-reset: ``(obs, state, reward, terminated, truncated, info)`` of
        the true next state (``key`` is ``step``'s own key; only a slippery env reads it, in
        ``draw_slip``)."""
        obs, state, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = (state.time >= params.max_steps_in_episode) & ~terminated
        return obs, state, reward, terminated, truncated, info

    def step_env(
        self, key: jax.Array, state: GridState, action: int | jax.Array, params: GridParams
    ) -> tuple[jax.Array, GridState, jax.Array, jax.Array, dict[str, Any]]:
        self.check_state_action(state, action)
        self.check_param_shapes(params)
        if self.debug:
            self.check_values_at_run_time(action, params)
        # NOTE: an out-of-range action is clipped to a valid one (the Gymnasium adapter raises on
        # it instead); with action and cell in range, the table gathers skip bounds handling.
        action = self.action_index(action)
        if self.slippery:
            slip, turn = self.draw_slip(key, params)
            # (action + turn) % 4 for action, turn >= 0, without the signed remainder's fix-ups
            action = jnp.where(slip, (action + turn) & 3, action)
        pos, kind = self.move(state, action, params)
        at_goal, in_lava = kind == GOAL, kind == LAVA
        reward = jnp.where(
            at_goal, params.goal_reward, jnp.where(in_lava, params.lava_reward, params.step_reward)
        ).astype(jnp.float32)
        terminated = at_goal | (in_lava & params.lava_terminates)
        pos = jnp.where(in_lava & ~params.lava_terminates, self.start_of(state, params), pos)
        state = state.replace(time=state.time + 1, pos=pos)
        return self.get_obs(state, params), state, reward, terminated, {}

    def draw_slip(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        """The slip of a step taken with ``key`` (``step_env``'s key): ``(slip () bool, turn () int32)``;
        a slipped step turns the action by ``turn`` (+1 clockwise, +3 counter-clockwise, mod 4).
        Always ``(False, 1)`` for an env made without slip.

        One 32-bit word per step, hashed from the key's own two words (results version 3:
        ``generators.key_word_bits``, two MurmurHash3 finalisers, no Threefry hash): its top 23 bits
        are the slip uniform (jax.random.uniform's resolution), compared with ``params.slip_prob``
        (so ``P(slip) = ceil(slip_prob * 2**23) / 2**23``, within ``2**-23`` of it); its lowest bit
        the side. Version 2 drew the word with ``jax.random.bits`` of the step key (one Threefry
        hash, plus one to split the step key off ``step``'s key); version 1 split the key and drew
        uniform + bernoulli (four hashes).
        """
        if not self.slippery:
            return jnp.bool_(False), jnp.int32(1)
        bits = generators.key_word_bits(key)
        uniform = (bits >> 9).astype(jnp.float32) * jnp.float32(2.0**-23)
        slip = uniform < params.slip_prob
        turn = jnp.where((bits & 1) == 1, jnp.int32(1), jnp.int32(3))
        return slip, turn

    def action_index(self, action: int | jax.Array) -> jax.Array:
        """The () int32 action ``step`` takes: clipped into ``0..num_actions-1``; a float action
        has NaN -> 0 and is truncated toward zero (explicit here: XLA leaves a NaN/inf float to
        int conversion to the backend)."""
        last = self.num_actions - 1
        action = jnp.asarray(action)
        if jnp.issubdtype(action.dtype, jnp.floating):
            action = jnp.where(jnp.isnan(action), 0.0, jnp.clip(action, 0.0, float(last)))
        return jnp.clip(action.astype(jnp.int32), 0, last)

    def check_values_at_run_time(self, action: int | jax.Array, params: GridParams) -> None:
        """``debug=True`` only: ``checkify.check`` that the action is an integer in range and
        every knob value is valid (traced params may come from anywhere)."""
        last = self.num_actions - 1
        action = jnp.asarray(action)
        ok = (action >= 0) & (action <= last)
        if jnp.issubdtype(action.dtype, jnp.floating):
            ok = ok & (action == jnp.floor(action))  # NaN fails every comparison
        names = ", ".join(f"{i} {n}" for i, n in enumerate(self.action_names))
        checkify.check(
            ok, f"{self.env_id}: action {{action}} is invalid; valid actions are the integers 0..{last} "
            f"({names}) (without debug=True it would be clipped)", action=action,
        )
        for name in self.param_names:
            spec, value = PARAM_SPECS[name], jnp.asarray(getattr(params, name))
            if spec.kind == "bool":
                continue
            ok = jnp.isfinite(value.astype(jnp.float32))
            if spec.low is not None:
                ok = ok & (value >= spec.low)
            if spec.high is not None:
                ok = ok & (value <= spec.high)
            checkify.check(ok, f"{self.env_id}: param {name}={{value}} is invalid; valid: {spec.valid}", value=value)

    # Layout access: fixed layouts keep their tables in params; procedural envs override these
    # to read the layout from the state.
    def move(self, state: GridState, action: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        """``(cell, kind)``: the () int32 cell ``action`` leads to from ``state.pos`` and its kind.

        NOTE: one gather per env step. A ``[cells * actions]`` table packing each move's target
        cell and that cell's kind is built from the (unbatched) params: under ``vmap`` over envs
        it is built once per step for the whole batch (XLA hoists it out of a scan), then every
        env reads one entry, where ``next_pos`` then ``cell_kinds`` would be two dependent
        gathers per env (~1.4x the step's cost at 65,536 envs on CPU). A slippery step reads the
        entry of its slipped action the same way (version 2's read of the cell's whole action row,
        which kept its three slip hashes out of the gather, measured no faster with one hash).
        """
        num_actions = params.next_cell.shape[-1]
        target = params.next_cell.astype(jnp.int32)  # [cells, actions]
        kind = params.cell_kind.astype(jnp.int32).at[target].get(mode="promise_in_bounds")
        packed = target * 256 + kind  # cell kinds are small non-negative codes
        entry = packed.reshape(-1).at[state.pos * num_actions + action].get(mode="promise_in_bounds")
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
        self.check_param_shapes(params)
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
                # time runs 0..max_steps_in_episode (step autoresets at the limit, so states it
                # returns stay below it); capped so that gymnax's int32 sample/contains work.
                "time": spaces.Discrete(min(int(params.max_steps_in_episode) + 1, 2**31 - 1)),
                "pos": spaces.Discrete(self.height * self.width),
            }
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r}, {self.height}x{self.width}, obs={self.obs_encoding!r})"


def validate_params(env: GridWorld, params: GridParams) -> GridParams:
    """``env.validate_params(params)``: host-side checks of params for ``env`` before compiling
    (see ``GridWorld.validate_params``). ``make`` runs it on the params it returns.

    Raises:
        ValueError: naming the param, what is wrong and its valid values.
    """
    if not isinstance(env, GridWorld):
        raise ValueError(f"validate_params checks jaxgrid envs' params, got env {type(env).__name__}")
    return env.validate_params(params)


def _freeze(value: Any, owner: Any = None) -> Any:
    """A hashable, comparable stand-in for an env attribute (arrays by dtype, shape and bytes; a
    method bound to the env itself by its function, since the env's other attributes are in the key)."""
    if inspect.ismethod(value) and owner is not None and value.__self__ is owner:
        return ("own method", value.__func__)
    if isinstance(value, Layout):
        return ("Layout", value.name, _freeze(value.kind), _freeze(value.start))
    if isinstance(value, (np.ndarray, jax.Array)):
        arr = np.asarray(value)
        return ("array", arr.dtype.str, arr.shape, arr.tobytes())
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return value
    leaves, treedef = jax.tree.flatten(value)
    if treedef.num_nodes > 1 or (leaves and leaves[0] is not value):  # a pytree (e.g. params)
        return ("pytree", str(treedef), tuple(_freeze(v) for v in leaves))
    return value  # functions, generators: their own equality (identity unless they define it)
