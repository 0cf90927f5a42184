"""State and params pytrees of the grid environments.

Everything that fixes an array shape (grid height/width, observation encoding) is a static
attribute of the env object; everything a user may want to vary per env or per sweep
(rewards, time limit, slip probability, the layout itself) is a traced leaf here, so
``params.replace(...)`` and ``jax.vmap`` over params just work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

# Cell kinds, stored as int8 in ``GridParams.cell_kind``.
FLOOR = 0
WALL = 1
GOAL = 2
LAVA = 3
# A marked wall: it blocks moves like WALL and has its own observation channel (TMaze-v0's cue,
# ``jaxgrid.tmaze``). Fixed text maps have no character for it.
CUE = 4


@struct.dataclass
class GridState(environment.EnvState):
    """The state of one grid episode.

    Attributes:
        time: () int32, steps taken in this episode.
        pos: () int32, the agent's cell, row-major (``row * width + col``).
    """

    time: jax.Array
    pos: jax.Array


@struct.dataclass
class GridParams(environment.EnvParams):
    """Traced knobs of a grid env. Layout arrays have the (padded) number of cells ``n``.

    Attributes:
        max_steps_in_episode: () int32, the step that reaches this count without the goal truncates.
        step_reward: () float32, reward of a step that enters a floor cell.
        goal_reward: () float32, reward of the step that enters a goal cell (terminates).
        lava_reward: () float32, reward of the step that enters a lava cell.
        lava_terminates: () bool, entering lava terminates (FrozenLake hole) or, if False,
            sends the agent back to ``start_cell`` (CliffWalking cliff).
        next_cell: [n, 4] int32, the cell each action leads to (walls and edges already applied).
        cell_kind: [n] int8, FLOOR / WALL / GOAL / LAVA.
        start_logits: [n] float32, 0 where an episode may start, -inf elsewhere.
        start_cell: () int32, the first start cell (used by single-start layouts and cliffs).
    """

    max_steps_in_episode: jax.Array = struct.field(default_factory=lambda: jnp.int32(50))
    step_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(-0.04))
    goal_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(1.0))
    lava_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(-1.0))
    lava_terminates: jax.Array = struct.field(default_factory=lambda: jnp.bool_(True))
    next_cell: jax.Array | None = None
    cell_kind: jax.Array | None = None
    start_logits: jax.Array | None = None
    start_cell: jax.Array = struct.field(default_factory=lambda: jnp.int32(0))


@struct.dataclass
class SlipperyGridParams(GridParams):
    """Params of a stochastic grid: with probability ``slip_prob`` the move is turned 90°
    left or right (each half of the time). ``slip_prob=2/3`` is FrozenLake's 1/3-1/3-1/3 rule.

    Attributes:
        slip_prob: () float32 in [0, 1].
    """

    slip_prob: jax.Array = struct.field(default_factory=lambda: jnp.float32(0.0))
