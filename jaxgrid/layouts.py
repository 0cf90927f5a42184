"""Grid layouts as text maps: parsing, validation, built-in maps, and the tables the env steps on.

The alphabet of a text map (one character per cell, one line per row)::

    #  wall        the agent cannot enter it; a move into it leaves the agent in place
    .  floor       step_reward on entry
    S  start       floor where an episode may start (several S: a uniformly random one)
    G  goal        goal_reward on entry; the episode terminates
    L  lava        lava_reward on entry; terminates (FrozenLake's hole) or, with
                   lava_terminates=False, sends the agent back to the start (CliffWalking's cliff)

A move off the grid leaves the agent in place. Blank lines around the map and spaces around each row
are ignored. A layout is plain NumPy data here; ``Layout.tables`` turns it into the arrays that live
in the env params, so layouts of one padded size can be batched with ``jax.vmap``.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from jaxgrid.types import FLOOR, GOAL, LAVA, WALL

ALPHABET = {"#": "wall", ".": "floor", "S": "start", "G": "goal", "L": "lava"}

# Row/col deltas of the canonical action order: 0 up, 1 right, 2 down, 3 left.
UP_RIGHT_DOWN_LEFT = ((-1, 0), (0, 1), (1, 0), (0, -1))
# Gymnasium's toy-text FrozenLake order: 0 left, 1 down, 2 right, 3 up.
LEFT_DOWN_RIGHT_UP = ((0, -1), (1, 0), (0, 1), (-1, 0))


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A rectangular grid map.

    Attributes:
        kind: [H, W] int8 cell kinds (FLOOR, WALL, GOAL, LAVA from ``jaxgrid.types``).
        start: [H, W] bool, cells where an episode may start.
        name: a label for messages and renders.
    """

    kind: np.ndarray
    start: np.ndarray
    name: str = "custom"

    @property
    def height(self) -> int:
        return int(self.kind.shape[0])

    @property
    def width(self) -> int:
        return int(self.kind.shape[1])

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    @classmethod
    def from_text(cls, text: str, name: str = "custom", check_reachable: bool = True) -> Layout:
        """Parses a text map (see the module docstring for the alphabet).

        Raises:
            ValueError: naming the row and column of the problem: ragged rows, an unknown
                character, no start, no goal, or no goal reachable from a start.
        """
        if not isinstance(text, str):
            raise ValueError(f"a layout must be a str text map, got {type(text).__name__}")
        rows = [line.strip() for line in text.strip("\n").splitlines()]
        while rows and not rows[0]:
            rows.pop(0)
        while rows and not rows[-1]:
            rows.pop()
        if not rows:
            raise ValueError("empty layout: write one line per row, e.g. 'S.\\n.G'")
        width = len(rows[0])
        for r, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(
                    f"layout row {r} has {len(row)} cells but row 0 has {width}: "
                    "rows must all have the same length (ragged map)"
                )
            for c, ch in enumerate(row):
                if ch not in ALPHABET:
                    valid = ", ".join(f"{k!r} {v}" for k, v in ALPHABET.items())
                    raise ValueError(
                        f"unknown character {ch!r} at row {r}, column {c}; valid characters: {valid}"
                    )
        grid = np.array([list(row) for row in rows])
        kind = np.full(grid.shape, FLOOR, np.int8)
        kind[grid == "#"] = WALL
        kind[grid == "G"] = GOAL
        kind[grid == "L"] = LAVA
        start = grid == "S"
        if not start.any():
            raise ValueError(f"layout {name!r} has no start cell 'S' (rows 0..{len(rows) - 1})")
        if not (kind == GOAL).any():
            raise ValueError(f"layout {name!r} has no goal cell 'G' (rows 0..{len(rows) - 1})")
        layout = cls(kind=kind, start=start, name=name)
        if check_reachable:
            layout.check_reachable()
        return layout

    def to_text(self) -> str:
        chars = np.full(self.kind.shape, ".")
        chars[self.kind == WALL] = "#"
        chars[self.kind == GOAL] = "G"
        chars[self.kind == LAVA] = "L"
        chars[self.start] = "S"
        return "\n".join("".join(row) for row in chars)

    def check_reachable(self) -> None:
        """Raises ValueError if some start cell cannot reach any goal (lava is not crossed)."""
        dist = self.distance_to_goal()
        for r, c in zip(*np.nonzero(self.start)):
            if dist[r, c] < 0:
                raise ValueError(
                    f"layout {self.name!r}: no goal is reachable from the start at row {r}, column {c}"
                )

    def distance_to_goal(self, deltas=UP_RIGHT_DOWN_LEFT) -> np.ndarray:
        """[H, W] int32 BFS distance (in steps) to the nearest goal; -1 where unreachable.

        Walls and lava cells are not passed through (lava cells get -1 unless they are goals).
        """
        dist = np.full(self.kind.shape, -1, np.int32)
        queue = collections.deque()
        for r, c in zip(*np.nonzero(self.kind == GOAL)):
            dist[r, c] = 0
            queue.append((r, c))
        while queue:
            r, c = queue.popleft()
            for dr, dc in deltas:
                pr, pc = r - dr, c - dc  # the predecessor that moves (dr, dc) into (r, c)
                if 0 <= pr < self.height and 0 <= pc < self.width and dist[pr, pc] < 0:
                    if self.kind[pr, pc] in (FLOOR,):
                        dist[pr, pc] = dist[r, c] + 1
                        queue.append((pr, pc))
        return dist

    def next_cell_table(self, deltas=UP_RIGHT_DOWN_LEFT) -> np.ndarray:
        """[n, len(deltas)] int32: the cell each action leads to from each cell.

        A move off the grid or into a wall leaves the agent where it is.
        """
        h, w = self.kind.shape
        rows, cols = np.divmod(np.arange(h * w), w)
        table = np.empty((h * w, len(deltas)), np.int32)
        for a, (dr, dc) in enumerate(deltas):
            nr, nc = rows + dr, cols + dc
            inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
            nr, nc = np.where(inside, nr, rows), np.where(inside, nc, cols)
            blocked = self.kind[nr, nc] == WALL
            table[:, a] = np.where(blocked, rows * w + cols, nr * w + nc)
        return table

    def pad_to(self, height: int, width: int) -> Layout:
        """The same map in the top-left corner of a larger grid; padding cells are walls."""
        if height < self.height or width < self.width:
            raise ValueError(
                f"cannot pad a {self.height}x{self.width} layout to a smaller {height}x{width}"
            )
        kind = np.full((height, width), WALL, np.int8)
        kind[: self.height, : self.width] = self.kind
        start = np.zeros((height, width), bool)
        start[: self.height, : self.width] = self.start
        return Layout(kind=kind, start=start, name=self.name)


# The 4x4 gridworld of the reset/step/done lesson: start 0, wall 5, goal 15.
GRIDWORLD_4X4 = """
S...
.#..
....
...G
"""

# Gymnasium's FrozenLake maps (toy_text/frozen_lake.py MAPS), F -> '.', H -> 'L'.
FROZEN_LAKE_4X4 = """
S...
.L.L
...L
L..G
"""

FROZEN_LAKE_8X8 = """
S.......
........
...L....
.....L..
...L....
.LL...L.
.L..L.L.
...L...G
"""

# Gymnasium's CliffWalking (Sutton & Barto, Example 6.6): 4x12, start bottom-left, goal
# bottom-right, the cliff between them.
CLIFF_WALKING = """
............
............
............
SLLLLLLLLLLG
"""

# The four-rooms layout of Sutton, Precup & Singh (1999), with its outer wall: 13x13, 104 open
# cells, four hallways. Fixed variant: start in the top-left corner, goal in the bottom-right corner.
FOUR_ROOMS = """
#############
#S    #     #
#     #     #
#           #
#     #     #
#     #     #
## ####     #
#     ### ###
#     #     #
#     #     #
#           #
#     #    G#
#############
""".replace(" ", ".")


def empty_room(height: int, width: int | None = None) -> Layout:
    """An open ``height x width`` room (no inner walls): start top-left, goal bottom-right."""
    width = height if width is None else width
    for label, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"empty room {label} must be a positive int, got {value!r}")
    if height * width < 2:
        raise ValueError(f"an empty room needs at least 2 cells for a start and a goal, got {height}x{width}")
    kind = np.full((height, width), FLOOR, np.int8)
    kind[-1, -1] = GOAL
    start = np.zeros((height, width), bool)
    start[0, 0] = True
    return Layout(kind=kind, start=start, name=f"empty-{height}x{width}")


BUILTIN_LAYOUTS: dict[str, str] = {
    "4x4": GRIDWORLD_4X4,
    "frozen-lake-4x4": FROZEN_LAKE_4X4,
    "frozen-lake-8x8": FROZEN_LAKE_8X8,
    "cliff-walking": CLIFF_WALKING,
    "four-rooms": FOUR_ROOMS,
}
