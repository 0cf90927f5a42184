"""``TMaze-v0``: a T-maze memory task (after Bakker, "Reinforcement learning with long short-term
memory", NIPS 2002), where an agent that sees a 3x3 window must remember a cue to succeed.

The map for ``length=L`` (``L >= 3``) is 5 rows by L columns; here the goal is up (``length=8``)::

    #######G      G / L: goal and lava, drawn at every reset (goal up or down, each 1/2)
    C######.      C: the cue, in the wall above the start when the goal is up, below when down
    S.......      the corridor: start S at column 0, the junction at column L - 1
    #######.      the bar's two arm cells, above and below the junction
    #######L

Rules:
- Actions 0 up, 1 right, 2 down, 3 left. Walls, the cue and the grid edge block moves.
- The arm cells are one-way: the agent enters one only from the junction, and its next step,
  whatever the action, enters that arm's end. So the side is chosen at the junction.
- +1 for entering the goal, -1 for the lava, both terminate; 0 otherwise. An episode that ends
  at the goal or the lava returns ``2 * success - 1``; one cut by the time limit returns 0.
- Time limit ``2 * L**2`` steps (128 for ``L=8``); the shortest episode takes ``L + 1`` steps.
  The corridor is a random walk for an untrained policy, so the limit grows with ``L**2``: a
  uniformly random policy then reaches an end in 62-63% of its episodes at every length from 3
  to 20 (exact, ``tests/jaxgrid/test_tmaze.py``), and PPO sees both rewards from the start.
- Observation: ``view`` 3x3 by default, with five channels (wall, goal, lava, agent, cue).

Why a memoryless policy succeeds at most half the time (under ``view`` 3x3): the cue is in view
only from columns 0 and 1, and the goal and lava only from the arm cells. The junction's view is
the same for both goal sides, an arm cell is entered only from the junction, and once in an arm
the agent cannot turn back. A policy that sees only the current view draws the same action
distribution at every visit of the junction whatever the side, so the arm it commits to is
independent of the side: success(up) + success(down) <= 1. Going up (or down) at the junction
attains 1/2; remembering the cue attains 1. ``tests/jaxgrid/test_tmaze.py`` checks the three
facts and computes the exact success of random memoryless policies. Under ``grid`` or a wider
``view`` (5x5 sees the ends from the junction) the task needs no memory.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxgrid.gymnax_base import spaces

from jaxgrid import observations
from jaxgrid.layouts import UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.procedural import ProceduralGridWorld, ProceduralState
from jaxgrid.registry import register, split_overrides
from jaxgrid.types import CUE, FLOOR, GOAL, LAVA, WALL, GridParams

DEFAULT_LENGTH = 8
HEIGHT = 5
CORRIDOR_ROW = 2


def check_length(length: Any) -> int:
    """Raises ValueError unless ``length`` is an int >= 3 (below 3 the junction's view sees the cue)."""
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 3:
        raise ValueError(
            f"TMaze length must be an int >= 3 (corridor cells from the start to the junction; "
            f"below 3 the cue is in view at the junction), got {length!r}"
        )
    return int(length)


def tmaze_kinds(length: int, goal_up: bool) -> np.ndarray:
    """[5, length] int8 cell kinds of the T-maze with the goal up (``goal_up``) or down."""
    kind = np.full((HEIGHT, length), WALL, np.int8)
    junction = length - 1
    kind[CORRIDOR_ROW, :] = FLOOR
    kind[1, junction] = kind[3, junction] = FLOOR  # the arm cells
    kind[0, junction] = GOAL if goal_up else LAVA
    kind[4, junction] = LAVA if goal_up else GOAL
    kind[1 if goal_up else 3, 0] = CUE
    return kind


def tmaze_moves(length: int) -> np.ndarray:
    """[5 * length, 4] int32: the cell each action (up, right, down, left) leads to from each cell.

    The same for both goal sides (the cue and the other cell beside the start both block); the
    arm cells lead to their end whatever the action.
    """
    kind = tmaze_kinds(length, goal_up=True)
    kind[kind == CUE] = WALL
    moves = Layout(kind=kind, start=np.zeros_like(kind, bool)).next_cell_table(UP_RIGHT_DOWN_LEFT)
    junction = length - 1
    moves[1 * length + junction, :] = 0 * length + junction  # up arm -> up end
    moves[3 * length + junction, :] = 4 * length + junction  # down arm -> down end
    return moves


class TMaze(ProceduralGridWorld):
    """The T-maze memory task (rules in the module docstring).

    Args:
        length: corridor cells from the start to the junction, >= 3 (static: it fixes the shape).
        obs: observation encoding; ``grid`` and ``view`` images get a fifth channel, the cue.
        view_size: side of the ``view`` window (odd); 3 by default, where memory is needed.
        slippery, param_defaults, env_id: as for ``GridWorld``.

    Raises:
        ValueError: a bad ``length``, encoding or view size.
    """

    extra_kinds = (CUE,)

    def __init__(
        self,
        length: int = DEFAULT_LENGTH,
        obs: str = "view",
        view_size: int = 3,
        slippery: bool = False,
        param_defaults: dict[str, Any] | None = None,
        env_id: str = "TMaze-v0",
    ):
        length = check_length(length)
        self.length = length
        kinds_up = tmaze_kinds(length, goal_up=True)
        self._kinds = jnp.asarray(np.stack([kinds_up.reshape(-1), tmaze_kinds(length, False).reshape(-1)]))
        self._moves = jnp.asarray(tmaze_moves(length))
        start = np.zeros((HEIGHT, length), bool)
        start[CORRIDOR_ROW, 0] = True
        template = Layout(kind=kinds_up, start=start, name=f"tmaze-{length}")
        super().__init__(
            template, self.generate, obs=obs, view_size=view_size, slippery=slippery,
            param_defaults=param_defaults, env_id=env_id,
        )

    @property
    def start_cell(self) -> int:
        """The start cell, row-major (row 2, column 0)."""
        return CORRIDOR_ROW * self.length

    @property
    def junction_cell(self) -> int:
        """The junction cell, row-major (row 2, column L - 1)."""
        return CORRIDOR_ROW * self.length + self.length - 1

    def generate(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, jax.Array]:
        """``(cell_kind [5*L] int8, start () int32)``: the goal up or down with probability 1/2 each."""
        goal_down = jax.random.bernoulli(key).astype(jnp.int32)
        return self._kinds[goal_down], jnp.int32(self.start_cell)

    def next_pos(self, state: ProceduralState, action: jax.Array, params: GridParams) -> jax.Array:
        # One static table serves both goal sides (see ``tmaze_moves``).
        return self._moves[state.pos, action]

    def get_obs(self, state: ProceduralState, params: GridParams | None = None, key=None) -> jax.Array:
        if params is None:
            params = self.default_params
        return observations.encode_with_kinds(
            self.obs_encoding, state.pos, self.cell_kinds(state, params), self.height, self.width,
            self.view_size, self.extra_kinds,
        )

    def observation_space(self, params: GridParams | None = None) -> spaces.Space:
        return observations.observation_space_with_kinds(
            self.obs_encoding, self.height, self.width, self.view_size, self.extra_kinds
        )

    def goal_is_up(self, state: ProceduralState) -> jax.Array:
        """() bool: this episode's goal is at the top end of the bar."""
        return state.cell_kind[self.length - 1] == GOAL


def make_tmaze(length: int = DEFAULT_LENGTH, **overrides: Any) -> tuple[TMaze, GridParams]:
    """``TMaze-v0``'s factory: ``length=`` and the usual env options and traced params."""
    length = check_length(length)
    env_id = "TMaze-v0"
    defaults = {"step_reward": 0.0, "goal_reward": 1.0, "lava_reward": -1.0, "lava_terminates": True,
                "max_steps_in_episode": 2 * length * length}
    env_kwargs, values, slippery = split_overrides(
        env_id, overrides, defaults, False, env_defaults={"obs": "view", "view_size": 3}
    )
    env = TMaze(length, slippery=slippery, param_defaults=values, env_id=env_id, **env_kwargs)
    return env, env.default_params


register(
    "TMaze-v0",
    make_tmaze,
    "Bakker's T-maze memory task: a corridor of length=8 cells to a junction whose arms end in the "
    "goal (+1) and lava (-1), sides drawn at every reset; a cue beside the start shows the goal side "
    "and is out of a 3x3 view at the junction; arms are one-way; 0 otherwise; obs='view' 3x3 "
    "(channels wall, goal, lava, agent, cue); 2*length**2 steps (128).",
)
