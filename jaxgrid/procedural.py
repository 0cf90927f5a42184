"""Grid envs whose layout is drawn at every reset: procedural mazes and random start/goal rooms.

The layout lives in the state (``ProceduralState.cell_kind``), not in the params, so every episode
of every env in a ``vmap`` batch can have its own map. The step computes moves from the static
open-grid move table and the state's walls: two look-ups more than a fixed-layout ``GridWorld``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxgrid.gymnax_base import environment

from jaxgrid import generators, observations
from jaxgrid.env import GridWorld
from jaxgrid.layouts import UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.types import GOAL, WALL, GridParams, GridState

# key, params -> (cell_kind [H*W] int8, start () int32)
Generator = Callable[[jax.Array, GridParams], tuple[jax.Array, jax.Array]]


@struct.dataclass
class ProceduralState(GridState):
    """A grid episode that carries its own layout.

    Attributes:
        time: () int32, steps taken in this episode.
        pos: () int32, the agent's cell, row-major.
        cell_kind: [H*W] int8, this episode's FLOOR / WALL / GOAL / LAVA cells.
        start_cell: () int32, where this episode started.
    """

    cell_kind: jax.Array
    start_cell: jax.Array


class ProceduralGridWorld(GridWorld):
    """A ``GridWorld`` whose reset draws the layout with ``generator(key, params)``.

    Args:
        template: a layout of the right shape; its cells are the ``params.cell_kind`` a generator may
            build on (the four-rooms walls), and what a static picture of the env shows.
        generator: pure ``(key, params) -> (cell_kind, start)``.
        obs, view_size, action_deltas, slippery, param_defaults, env_id: as for ``GridWorld``.
    """

    def __init__(
        self,
        template: Layout,
        generator: Generator,
        obs: str = "grid",
        view_size: int = 5,
        action_deltas: tuple[tuple[int, int], ...] = UP_RIGHT_DOWN_LEFT,
        slippery: bool = False,
        param_defaults: dict[str, Any] | None = None,
        env_id: str = "Procedural-v0",
    ):
        environment.Environment.__init__(self)
        observations.check_encoding(obs, view_size)
        self.layout = template
        self.height, self.width = template.height, template.width
        self.obs_encoding = obs
        self.view_size = view_size
        self.action_deltas = tuple(tuple(d) for d in action_deltas)
        self.slippery = bool(slippery)
        self.random_start = True
        self.env_id = env_id
        self.generator = generator
        # Moves on the open grid (edges applied, no walls): [H*W, A] int32, a compile-time constant.
        open_grid = Layout(kind=np.zeros_like(template.kind), start=template.start)
        self._open_moves = jnp.asarray(open_grid.next_cell_table(self.action_deltas))
        self._param_defaults = dict(param_defaults or {})
        fields = {
            "next_cell": None,
            "cell_kind": jnp.asarray(template.kind.reshape(-1)),
            "start_logits": None,
            "start_cell": jnp.int32(int(template.start.reshape(-1).argmax())),
        }
        self._default_params = self._make_params(fields, self._param_defaults)

    def params_for_layout(self, layout: Layout, **values: Any) -> GridParams:
        """Params whose ``cell_kind`` is ``layout`` (the base a generator builds on)."""
        if (layout.height, layout.width) != (self.height, self.width):
            raise ValueError(
                f"layout is {layout.height}x{layout.width} but this env was built for {self.height}x{self.width}"
            )
        fields = {
            "next_cell": None,
            "cell_kind": jnp.asarray(layout.kind.reshape(-1)),
            "start_logits": None,
            "start_cell": jnp.int32(int(layout.start.reshape(-1).argmax())),
        }
        return self._make_params(fields, {**self._param_defaults, **values})

    def reset_env(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, ProceduralState]:
        # NOTE: ``step`` auto-resets with ``jnp.where``, so every step of every env runs the
        # generator (a branch would be a select under ``vmap`` too): its cost sets the step rate.
        cell_kind, start = self.generator(key, params)
        state = ProceduralState(
            time=jnp.int32(0),
            pos=start.astype(jnp.int32),
            cell_kind=cell_kind.astype(jnp.int8),
            start_cell=start.astype(jnp.int32),
        )
        return self.get_obs(state, params), state

    def move(self, state: ProceduralState, action: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        # The layout is per env (in the state): two gathers from it, no table per step.
        pos = self.next_pos(state, action, params)
        return pos, self.cell_kinds(state, params).at[pos].get(mode="promise_in_bounds")

    def next_pos(self, state: ProceduralState, action: jax.Array, params: GridParams) -> jax.Array:
        target = self._open_moves[state.pos, action]
        return jnp.where(state.cell_kind[target] == WALL, state.pos, target)

    def cell_kinds(self, state: ProceduralState, params: GridParams) -> jax.Array:
        return state.cell_kind

    def start_of(self, state: ProceduralState, params: GridParams) -> jax.Array:
        return state.start_cell


def maze_generator(height: int, width: int) -> Generator:
    """A ``Generator`` of randomized-Kruskal perfect mazes (see ``generators.generate_maze``)."""
    generators.check_maze_shape(height, width)

    def generate(key: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        return generators.generate_maze(key, height, width)

    return generate


def random_start_goal_generator(key: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
    """The params' walls with a fresh uniformly drawn goal and distinct start."""
    return generators.place_start_and_goal(key, params.cell_kind)


def maze_template(height: int, width: int) -> Layout:
    """The static stand-in layout of a ``Maze`` env: its shape, with the pillars (odd, odd cells)
    that are walls in every maze. Built in NumPy, so ``make`` compiles nothing."""
    generators.check_maze_shape(height, width)
    kind = np.zeros((height, width), np.int8)
    kind[1::2, 1::2] = WALL
    kind[-1, -1] = GOAL
    start = np.zeros((height, width), bool)
    start[0, 0] = True
    return Layout(kind=kind, start=start, name=f"maze-{height}x{width}")
