"""Grid envs whose layout is drawn at every reset: procedural mazes and random start/goal rooms,
and their ids (``FourRoomsRandom-v0``, ``FourRoomsRandom-View5-v0``, ``Maze-9x9-v0``,
``Maze-15x15-v0``, ``Maze-v0``), registered here beside their factories.

The layout lives in the state (``ProceduralState.cell_kind``), not in the params, so every episode
of every env in a ``vmap`` batch can have its own map. The step computes moves from the static
open-grid move table and the state's walls: two look-ups more than a fixed-layout ``GridWorld``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxgrid import generators, observations
from jaxgrid.env import GridWorld, to_device
from jaxgrid.layouts import BUILTIN_LAYOUTS, UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.registry import check_size, register, split_overrides
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
        debug: bool = False,
    ):
        self._init_static(template, obs, view_size, action_deltas, slippery, param_defaults, env_id, debug)
        self.random_start = True
        # NOTE: part of the env's equality (hence of jit's cache key): give a generator that
        # compares equal when it draws the same layouts (a module-level function, ``MazeGenerator``).
        self.generator = generator
        # Moves on the open grid (edges applied, no walls): [H*W, A] int32, a compile-time constant.
        open_grid = Layout(kind=np.zeros_like(template.kind), start=template.start)
        self._open_moves = to_device(open_grid.next_cell_table(self.action_deltas))
        self._default_params = self.params_for_layout(template)

    def params_for_layout(self, layout: Layout, **values: Any) -> GridParams:
        """Params whose ``cell_kind`` is ``layout`` (the base a generator builds on), with the env's
        param defaults and ``values`` on top.

        Raises:
            ValueError: a layout of another size, an unknown param name or a bad value.
        """
        self._check_layout_size(layout)
        fields = {
            "next_cell": None,
            "cell_kind": to_device(layout.kind.reshape(-1)),
            "start_logits": None,
            "start_cell": to_device(np.int32(layout.start.reshape(-1).argmax())),
        }
        return self._make_params(fields, {**self._param_defaults, **values})

    def check_state_action(self, state: ProceduralState, action: Any) -> None:
        super().check_state_action(state, action)
        n = self.height * self.width
        if jnp.shape(state.cell_kind) != (n,) or jnp.shape(state.start_cell) != ():
            raise ValueError(
                f"state.cell_kind has shape {jnp.shape(state.cell_kind)} but {self.env_id} needs ({n},) "
                "(one env's state); to step a batch, use jax.vmap(env.step) or jaxgrid's VecEnv"
            )

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


@struct.dataclass
class RandomGoalState(ProceduralState):
    """A ``ProceduralState`` whose layout is the params' walls with one goal (``RandomGoalGridWorld``).

    Attributes:
        time, pos, cell_kind, start_cell: as ``ProceduralState``.
        goal_cell: () int32, the GOAL cell of ``cell_kind``.
    """

    goal_cell: jax.Array


class RandomGoalGridWorld(ProceduralGridWorld):
    """A ``ProceduralGridWorld`` whose reset keeps the params' walls and draws a goal and a distinct
    start on the floor (``generators.place_start_and_goal_cells``): ``FourRoomsRandom-v0``.

    The same layouts, steps and observations as ``ProceduralGridWorld`` with
    ``random_start_goal_generator`` (tested bitwise); the state also holds the goal cell, so the
    ``view`` is read from a table of the params' walls built once per step for the whole batch,
    plus the goal bit (``observations.view_with_goal``), instead of a window gather per env.
    NOTE: the view takes the walls from ``params``, as the reset did: step with the params you reset with.

    Args:
        template, obs, view_size, action_deltas, slippery, param_defaults, env_id, debug: as for
            ``ProceduralGridWorld`` (the generator is fixed).
    """

    def __init__(self, template: Layout, **kwargs: Any):
        super().__init__(template, random_start_goal_generator, **kwargs)

    def reset_env(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, RandomGoalState]:
        cell_kind, start, goal = generators.place_start_and_goal_cells(key, params.cell_kind)
        state = RandomGoalState(
            time=jnp.int32(0),
            pos=start.astype(jnp.int32),
            cell_kind=cell_kind.astype(jnp.int8),
            start_cell=start.astype(jnp.int32),
            goal_cell=goal.astype(jnp.int32),
        )
        return self.get_obs(state, params), state

    def get_obs(self, state: ProceduralState, params: GridParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        if self.obs_encoding == "view" and isinstance(state, RandomGoalState):
            return observations.view_with_goal(
                params.cell_kind, state.pos, state.goal_cell, self.height, self.width, self.view_size
            )
        return super().get_obs(state, params)


@dataclasses.dataclass(frozen=True)
class MazeGenerator:
    """A ``Generator`` of randomized-Kruskal perfect mazes (see ``generators.generate_maze``);
    two of the same size compare equal, so their envs share compiled programs."""

    height: int
    width: int

    def __call__(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        return generators.generate_maze(key, self.height, self.width)


def maze_generator(height: int, width: int) -> Generator:
    """A ``MazeGenerator`` of ``height x width`` mazes (both odd, >= 3).

    Raises:
        ValueError: a bad size, naming the valid ones.
    """
    generators.check_maze_shape(height, width)
    return MazeGenerator(int(height), int(width))


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


# ------------------------------------------------------------------------------------------------
# Registered ids


def make_procedural(
    env_id: str,
    template: Layout,
    generator: Generator,
    overrides: dict[str, Any],
    param_defaults: dict[str, Any] | None = None,
    slippery: bool = False,
    env_class: type[ProceduralGridWorld] | None = None,
) -> tuple[ProceduralGridWorld, Any]:
    """The shared factory of the ids whose layout is drawn at reset: ``(env, env.default_params)``;
    their default obs is ``"grid"``.

    Raises:
        ValueError: a bad override, naming it and the valid values (``registry.split_overrides``).
    """
    env_kwargs, values, slippery = split_overrides(
        env_id, overrides, param_defaults, slippery, env_defaults={"obs": "grid"}
    )
    if env_class is not None:  # a class with its own generator (RandomGoalGridWorld)
        env = env_class(template, slippery=slippery, param_defaults=values, env_id=env_id, **env_kwargs)
    else:
        env = ProceduralGridWorld(
            template, generator, slippery=slippery, param_defaults=values, env_id=env_id, **env_kwargs
        )
    return env, env.default_params


FOUR_ROOMS_DEFAULTS = {"step_reward": 0.0, "goal_reward": 1.0, "max_steps_in_episode": 100}


def _four_rooms_random(**overrides: Any):
    template = Layout.from_text(BUILTIN_LAYOUTS["four-rooms"], name="FourRoomsRandom-v0")
    return make_procedural(
        "FourRoomsRandom-v0", template, random_start_goal_generator, overrides, param_defaults=FOUR_ROOMS_DEFAULTS,
        env_class=RandomGoalGridWorld,
    )


def _four_rooms_random_view5(**overrides: Any):
    # The partially observed variant: an egocentric 5x5 window (obs/view_size may still be overridden).
    template = Layout.from_text(BUILTIN_LAYOUTS["four-rooms"], name="FourRoomsRandom-View5-v0")
    return make_procedural(
        "FourRoomsRandom-View5-v0", template, random_start_goal_generator,
        {"obs": "view", "view_size": 5, **overrides}, param_defaults=FOUR_ROOMS_DEFAULTS, env_class=RandomGoalGridWorld,
    )


def _maze(env_id: str, height: int, width: int, overrides: dict[str, Any]):
    return make_procedural(
        env_id, maze_template(height, width), maze_generator(height, width), overrides,
        param_defaults={"step_reward": -0.01, "goal_reward": 1.0, "max_steps_in_episode": 2 * height * width},
    )


def _maze_factory(env_id: str, size: int):
    def factory(**overrides: Any):
        return _maze(env_id, size, size, overrides)

    return factory


def _maze_any(size: int | tuple[int, int] = 9, **overrides: Any):
    height, width = check_size("Maze-v0", size)
    return _maze("Maze-v0", height, width, overrides)


register(
    "FourRoomsRandom-v0",
    _four_rooms_random,
    "Four rooms with a start and goal drawn uniformly (distinct open cells) at every reset; "
    "obs='grid' by default; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "FourRoomsRandom-View5-v0",
    _four_rooms_random_view5,
    "FourRoomsRandom-v0 seen through an egocentric 5x5 window (obs='view', view_size=5): "
    "partially observed; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "Maze-9x9-v0",
    _maze_factory("Maze-9x9-v0", 9),
    "A new perfect maze (randomized Kruskal, 5x5 rooms) with a random start and goal at every reset, "
    "generated on device; obs='grid' by default; -0.01 per step, +1 at the goal; 162 steps.",
)
register(
    "Maze-v0",
    _maze_any,
    "A procedural maze of any odd size: make('Maze-v0', size=21) or size=(H, W); rules as Maze-9x9-v0, "
    "2*H*W steps.",
)
register(
    "Maze-15x15-v0",
    _maze_factory("Maze-15x15-v0", 15),
    "As Maze-9x9-v0 on a 15x15 grid (8x8 rooms); 450 steps.",
)
