"""The rules of ``GridWorld-4x4-v0`` written as the CPU envs people would otherwise use.

- ``PyGridWorldEnv``: a plain-Python ``gymnasium.Env`` (one env, Python ints), registered as
  ``bench/PyGridWorld-4x4-v0`` with Gymnasium's ``TimeLimit`` doing the 50-step truncation, as a
  Gymnasium user would write it; it is what ``gymnasium.make``, ``SyncVectorEnv`` and
  ``AsyncVectorEnv`` step in the benchmark.
- ``NumpyGridWorld``: the same rules hand-vectorised over a batch in NumPy, written to be the
  strongest CPU baseline: the layout becomes flat transition/reward tables (as jaxgrid's step is
  table-driven), the state is int8, every step is a few ``np.take`` calls into preallocated
  buffers, and auto-reset happens in the same step (as jaxgrid's does).

Rules (``/work/shared/DESIGN.md``): cells 0..15 row-major, start 0, goal 15, wall 5; actions
0 up, 1 right, 2 down, 3 left; a move off the grid or into the wall stays put; -0.04 per step,
+1.0 on the step that reaches the goal (terminates); the 50th step without the goal truncates.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

SIZE = 4
START, GOAL, WALL = 0, 15, 5
STEP_REWARD, GOAL_REWARD = -0.04, 1.0
MAX_STEPS = 50
DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # 0 up, 1 right, 2 down, 3 left

PY_ENV_ID = "bench/PyGridWorld-4x4-v0"


class PyGridWorldEnv(gymnasium.Env):
    """One 4x4 gridworld in plain Python. Truncation comes from ``TimeLimit`` (see ``register``)."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = spaces.Discrete(SIZE * SIZE)
        self.action_space = spaces.Discrete(4)
        self.pos = START

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = START
        return self.pos, {}

    def step(self, action):
        row, col = divmod(self.pos, SIZE)
        d_row, d_col = DELTAS[int(action)]
        row, col = row + d_row, col + d_col
        if 0 <= row < SIZE and 0 <= col < SIZE and row * SIZE + col != WALL:
            self.pos = row * SIZE + col
        if self.pos == GOAL:
            return self.pos, GOAL_REWARD, True, False, {}
        return self.pos, STEP_REWARD, False, False, {}


def register() -> str:
    """Registers ``PY_ENV_ID`` (idempotent) and returns it."""
    if PY_ENV_ID not in gymnasium.registry:
        gymnasium.register(PY_ENV_ID, entry_point=PyGridWorldEnv, max_episode_steps=MAX_STEPS)
    return PY_ENV_ID


def transition_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat tables indexed by ``cell * 4 + action``: next cell (int8), reached goal (bool), reward (f32)."""
    next_cell = np.empty((SIZE * SIZE, 4), np.int8)
    for cell in range(SIZE * SIZE):
        row, col = divmod(cell, SIZE)
        for action, (d_row, d_col) in enumerate(DELTAS):
            r, c = row + d_row, col + d_col
            ok = 0 <= r < SIZE and 0 <= c < SIZE and r * SIZE + c != WALL
            next_cell[cell, action] = r * SIZE + c if ok else cell
    goal = next_cell == GOAL
    reward = np.where(goal, GOAL_REWARD, STEP_REWARD).astype(np.float32)
    return next_cell.reshape(-1), goal.reshape(-1), reward.reshape(-1)


class NumpyGridWorld:
    """``num_envs`` gridworlds stepped together in NumPy, auto-resetting in the same step.

    ``step(actions)`` returns ``(obs, reward, terminated, truncated, final_obs)``, each ``[num_envs]``;
    ``obs`` already starts the next episode where an episode ended, ``final_obs`` is the cell the
    episode ended on. The returned arrays are internal buffers, overwritten by the next step.
    """

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self._next, self._goal, self._reward = transition_tables()
        self.pos = np.zeros(num_envs, np.int8)
        self.time = np.zeros(num_envs, np.int8)
        self._index = np.empty(num_envs, np.intp)
        self._final = np.empty(num_envs, np.int8)
        self._reward_out = np.empty(num_envs, np.float32)
        self._terminated = np.empty(num_envs, bool)
        self._truncated = np.empty(num_envs, bool)
        self._done = np.empty(num_envs, bool)

    def reset(self) -> np.ndarray:
        self.pos.fill(START)
        self.time.fill(0)
        return self.pos

    def step(self, actions: np.ndarray):
        np.multiply(self.pos, 4, out=self._index)
        self._index += actions
        np.take(self._next, self._index, out=self._final)
        np.take(self._goal, self._index, out=self._terminated)
        np.take(self._reward, self._index, out=self._reward_out)
        self.time += 1
        np.greater_equal(self.time, MAX_STEPS, out=self._truncated)
        self._truncated &= ~self._terminated
        np.logical_or(self._terminated, self._truncated, out=self._done)
        np.copyto(self.pos, self._final)
        np.copyto(self.pos, START, where=self._done)
        np.copyto(self.time, 0, where=self._done)
        return self.pos, self._reward_out, self._terminated, self._truncated, self._final
