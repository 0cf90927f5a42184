"""A plain-Python reference of the lesson's 4x4 gridworld, written from DESIGN.md's rules alone.

The JAX env is compared with it step by step. It auto-resets like the JAX env: at an episode end
``step`` returns the first observation of the next episode and the final one separately.
"""

from __future__ import annotations

START, GOAL, WALL = 0, 15, 5
SIZE = 4
MAX_STEPS = 50
STEP_REWARD, GOAL_REWARD = -0.04, 1.0
MOVES = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  # up, right, down, left


class Reference4x4:
    def __init__(self) -> None:
        self.pos = START
        self.t = 0

    def reset(self) -> int:
        self.pos, self.t = START, 0
        return self.pos

    def step(self, action: int) -> tuple[int, float, bool, bool, int]:
        """Returns (obs, reward, terminated, truncated, final_obs)."""
        row, col = divmod(self.pos, SIZE)
        dr, dc = MOVES[action]
        r, c = row + dr, col + dc
        if 0 <= r < SIZE and 0 <= c < SIZE and r * SIZE + c != WALL:
            self.pos = r * SIZE + c
        self.t += 1
        terminated = self.pos == GOAL
        reward = GOAL_REWARD if terminated else STEP_REWARD
        truncated = (not terminated) and self.t >= MAX_STEPS
        final_obs = self.pos
        obs = self.reset() if (terminated or truncated) else self.pos
        return obs, reward, terminated, truncated, final_obs
