"""Procedural layouts, pure jax: each generator maps a key to one episode's layout, inside ``jit``.

A generator returns ``(cell_kind, start)``: [H*W] int8 cell kinds (FLOOR / WALL / GOAL / LAVA)
and the () int32 start cell. Loops have a fixed iteration bound, so a generator compiles to one
straight-line program and vmaps over keys. No linear algebra (no LAPACK kernels under vmap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrid.types import FLOOR, GOAL, WALL


def check_maze_shape(height: int, width: int) -> None:
    """Raises ValueError unless both sides are odd and >= 3 (rooms sit on even rows/cols)."""
    for label, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 3 or value % 2 == 0:
            raise ValueError(
                f"maze {label} must be an odd int >= 3 (rooms on even rows/columns, walls between), "
                f"got {value!r}"
            )


def maze_edges(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate passages of a ``height x width`` maze (both odd).

    Rooms are the cells at even (row, col); two neighbouring rooms are separated by one wall cell.

    Returns:
        room_u, room_v: [E] int32 room cells (row-major cell indices) that an edge joins.
        wall: [E] int32 cell between them, opened when the edge is taken.
    """
    check_maze_shape(height, width)
    u, v, w = [], [], []
    for r in range(0, height, 2):
        for c in range(0, width, 2):
            if c + 2 < width:
                u.append(r * width + c), v.append(r * width + c + 2), w.append(r * width + c + 1)
            if r + 2 < height:
                u.append(r * width + c), v.append((r + 2) * width + c), w.append((r + 1) * width + c)
    return np.array(u, np.int32), np.array(v, np.int32), np.array(w, np.int32)


def room_cells(height: int, width: int) -> np.ndarray:
    """[R] int32 row-major cells at even (row, col): the rooms of a maze."""
    rows, cols = np.meshgrid(np.arange(0, height, 2), np.arange(0, width, 2), indexing="ij")
    return (rows * width + cols).reshape(-1).astype(np.int32)


def generate_maze(key: jax.Array, height: int, width: int) -> tuple[jax.Array, jax.Array]:
    """A uniformly shuffled randomized-Kruskal perfect maze with a random start and goal.

    Every room connects to every other by exactly one path (a spanning tree of the rooms), so the
    goal is always reachable. Start and goal are two distinct rooms drawn uniformly.

    Args:
        key: PRNG key; the same key gives the same maze.
        height, width: odd grid sides (static).

    Returns:
        cell_kind: [H*W] int8, FLOOR / WALL with one GOAL.
        start: () int32 start cell.
    """
    room_u, room_v, wall = (jnp.asarray(a) for a in maze_edges(height, width))
    rooms = room_cells(height, width)
    num_edges, num_rooms = int(wall.shape[0]), int(rooms.shape[0])
    key_order, key_goal, key_start = jax.random.split(key, 3)

    kind = jnp.full((height * width,), WALL, jnp.int8).at[jnp.asarray(rooms)].set(FLOOR)
    # Union-find by relabelling: label[cell] is the component id of a room cell (its own index
    # at first). With E candidate edges the loop has a fixed bound of E iterations.
    label = jnp.arange(height * width, dtype=jnp.int32)
    order = jax.random.permutation(key_order, num_edges)

    def add_edge(i, carry):
        label, kind = carry
        e = order[i]
        lu, lv = label[room_u[e]], label[room_v[e]]
        join = lu != lv
        label = jnp.where(join & (label == lv), lu, label)
        kind = kind.at[wall[e]].set(jnp.where(join, jnp.int8(FLOOR), kind[wall[e]]))
        return label, kind

    _, kind = jax.lax.fori_loop(0, num_edges, add_edge, (label, kind))
    goal_room = jax.random.randint(key_goal, (), 0, num_rooms)
    start_room = (goal_room + jax.random.randint(key_start, (), 1, num_rooms)) % num_rooms
    rooms = jnp.asarray(rooms)
    kind = kind.at[rooms[goal_room]].set(jnp.int8(GOAL))
    return kind, rooms[start_room].astype(jnp.int32)


def place_start_and_goal(key: jax.Array, base_kind: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A fixed wall layout with a goal and a start drawn uniformly from distinct floor cells.

    Args:
        key: PRNG key.
        base_kind: [H*W] int8 walls and floor (any GOAL cells in it count as floor).

    Returns:
        cell_kind: [H*W] int8 with exactly one GOAL; start: () int32, a floor cell != goal.
    """
    key_goal, key_start = jax.random.split(key)
    base = jnp.where(base_kind == GOAL, jnp.int8(FLOOR), base_kind).astype(jnp.int8)
    floor = base == FLOOR
    goal = jax.random.categorical(key_goal, jnp.where(floor, 0.0, -jnp.inf)).astype(jnp.int32)
    cells = jnp.arange(base.shape[0], dtype=jnp.int32)
    start = jax.random.categorical(key_start, jnp.where(floor & (cells != goal), 0.0, -jnp.inf))
    return base.at[goal].set(jnp.int8(GOAL)), start.astype(jnp.int32)
