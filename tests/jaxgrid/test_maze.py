"""Procedural layouts: mazes generated on device are perfect (so solvable), varied, and
reproducible from their key; random start/goal four-rooms keeps its walls."""

from __future__ import annotations

import collections

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from jaxgrid import generators
from jaxgrid.types import FLOOR, GOAL, WALL

pytestmark = pytest.mark.timeout(120)


def bfs_reachable(kind: np.ndarray, start: int) -> np.ndarray:
    """[H, W] bool cells reachable from ``start`` through non-wall cells (4-neighbour moves)."""
    h, w = kind.shape
    seen = np.zeros((h, w), bool)
    r0, c0 = divmod(start, w)
    seen[r0, c0] = True
    queue = collections.deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < h and 0 <= nc < w and not seen[nr, nc] and kind[nr, nc] != WALL:
                seen[nr, nc] = True
                queue.append((nr, nc))
    return seen


def open_adjacencies(kind: np.ndarray) -> int:
    """Number of pairs of 4-neighbouring open cells."""
    open_ = kind != WALL
    return int((open_[1:] & open_[:-1]).sum() + (open_[:, 1:] & open_[:, :-1]).sum())


@pytest.mark.parametrize("size, count", [(9, 3000), (15, 1000)])
def test_mazes__perfect_solvable_and_varied_over_many_keys(size, count):
    keys = jax.random.split(jax.random.PRNGKey(42), count)
    kinds, starts = jax.jit(jax.vmap(lambda k: generators.generate_maze(k, size, size)))(keys)
    kinds = np.asarray(kinds).reshape(count, size, size)
    starts = np.asarray(starts)
    rooms = generators.room_cells(size, size)
    goals = []
    for kind, start in zip(kinds, starts):
        open_cells = int((kind != WALL).sum())
        goal = np.flatnonzero(kind.reshape(-1) == GOAL)
        assert len(goal) == 1 and goal[0] != start and start in rooms and goal[0] in rooms
        assert kind.reshape(-1)[start] == FLOOR
        reach = bfs_reachable(kind, int(start))
        # Every open cell, the goal included, is reachable, and the open cells form a tree
        # (open cells - 1 adjacencies): a perfect maze, one path between any two cells.
        assert reach.sum() == open_cells and reach.reshape(-1)[goal[0]]
        assert open_adjacencies(kind) == open_cells - 1
        assert open_cells == 2 * len(rooms) - 1  # rooms plus the rooms-1 opened walls
        goals.append(goal[0])
    distinct = len({k.tobytes() for k in kinds})
    assert distinct >= 0.99 * count, distinct
    # Start and goal cover every room, with no room hugely over-represented.
    for cells in (np.asarray(goals), starts):
        freq = np.bincount(cells, minlength=size * size)[rooms]
        assert freq.min() > 0 and freq.max() < 3 * count / len(rooms)
    # Passages are not degenerate either: every candidate wall is opened in some mazes, not all.
    _, _, walls = generators.maze_edges(size, size)
    opened = (kinds.reshape(count, -1)[:, walls] != WALL).mean(axis=0)
    assert opened.min() > 0.2 and opened.max() < 0.95


@pytest.mark.parametrize("env_id", ["Maze-9x9-v0", "Maze-15x15-v0", "FourRoomsRandom-v0"])
def test_procedural__same_key_same_layout_different_keys_differ(env_id):
    env, params = jaxgrid.make(env_id)
    reset = jax.jit(env.reset)
    obs_a, state_a = reset(jax.random.PRNGKey(7), params)
    obs_b, state_b = reset(jax.random.PRNGKey(7), params)
    chex.assert_trees_all_equal((obs_a, state_a), (obs_b, state_b))
    obs_c, state_c = reset(jax.random.PRNGKey(8), params)
    assert not np.array_equal(np.asarray(state_a.cell_kind), np.asarray(state_c.cell_kind)) or int(
        state_a.pos
    ) != int(state_c.pos)
    assert state_a.cell_kind.dtype == jnp.int8 and state_a.cell_kind.shape == (env.height * env.width,)


def test_maze__batched_generation_compiles_once_under_jit():
    env, params = jaxgrid.make("Maze-9x9-v0")

    def reset_batch(keys):
        return jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)

    reset_batch = jax.jit(chex.assert_max_traces(reset_batch, n=1))

    for seed in range(3):
        obs, state = reset_batch(jax.random.split(jax.random.PRNGKey(seed), 16))
    assert obs.shape == (16, 9, 9, 4) and state.cell_kind.shape == (16, 81)


def test_maze__walls_block_and_the_goal_terminates():
    env, params = jaxgrid.make("Maze-9x9-v0", obs="index")
    _, state = env.reset(jax.random.PRNGKey(3), params)
    kind = np.asarray(state.cell_kind).reshape(9, 9)
    step = jax.jit(env.step)
    # Walk the BFS shortest path to the goal; try the blocked moves on the way (they stay put).
    goal = int(np.flatnonzero(kind.reshape(-1) == GOAL)[0])
    dist = _distance_to(kind, goal)
    start_dist = int(dist.reshape(-1)[int(state.pos)])
    deltas = ((-1, 0), (0, 1), (1, 0), (0, -1))
    blocked_tried = 0
    for t in range(200):
        r, c = divmod(int(state.pos), 9)
        for a, (dr, dc) in enumerate(deltas):
            nr, nc = r + dr, c + dc
            if not (0 <= nr < 9 and 0 <= nc < 9) or kind[nr, nc] == WALL:
                obs, s2, reward, terminated, truncated, _ = step(jax.random.PRNGKey(t), state, a, params)
                assert int(s2.pos) == int(state.pos) and not bool(terminated)
                blocked_tried += 1
        a = next(a for a, (dr, dc) in enumerate(deltas)
                 if 0 <= r + dr < 9 and 0 <= c + dc < 9 and dist[r + dr, c + dc] == dist[r, c] - 1)
        obs, state, reward, terminated, truncated, info = step(jax.random.PRNGKey(t), state, a, params)
        if bool(terminated):
            assert int(info["final_observation"]) == goal and float(reward) == 1.0
            break
    else:
        pytest.fail("the shortest path did not reach the goal")
    assert t + 1 == start_dist
    assert blocked_tried > 0


def _distance_to(kind: np.ndarray, goal: int) -> np.ndarray:
    h, w = kind.shape
    dist = np.full((h, w), -1)
    r0, c0 = divmod(goal, w)
    dist[r0, c0] = 0
    queue = collections.deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < h and 0 <= nc < w and dist[nr, nc] < 0 and kind[nr, nc] != WALL:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def test_four_rooms_random__walls_fixed_start_and_goal_drawn():
    env, params = jaxgrid.make("FourRoomsRandom-v0")
    _, fixed = jaxgrid.make("FourRooms-v0")
    walls = np.asarray(fixed.cell_kind) == WALL
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    kinds, pos = np.asarray(states.cell_kind), np.asarray(states.pos)
    assert np.all((kinds == WALL) == walls[None])
    goals = (kinds == GOAL).argmax(axis=1)
    assert np.all((kinds == GOAL).sum(axis=1) == 1) and np.all(goals != pos)
    assert np.all(~walls[pos]) and np.all(~walls[goals])
    assert len(np.unique(goals)) == 104 and len(np.unique(pos)) == 104


def test_maze__any_odd_size_and_shape_errors():
    env, params = jaxgrid.make("Maze-v0", size=(5, 11))
    assert (env.height, env.width) == (5, 11) and int(params.max_steps_in_episode) == 110
    kind, start = jax.jit(lambda k: generators.generate_maze(k, 5, 11))(jax.random.PRNGKey(0))
    kind = np.asarray(kind).reshape(5, 11)
    assert bfs_reachable(kind, int(start)).sum() == (kind != WALL).sum() == 2 * 18 - 1
    with pytest.raises(ValueError, match="maze height must be an odd int >= 3"):
        jaxgrid.make("Maze-v0", size=8)
    with pytest.raises(ValueError, match=r"maze width must be an odd int >= 3 \(rooms on even rows/.*got 1"):
        generators.maze_edges(9, 1)


def _mix_bits_np(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def _kruskal_reference(key: jax.Array, height: int, width: int) -> tuple[np.ndarray, int]:
    """Plain-Python randomized Kruskal fed with the generator's random draws: the same threefry
    words, a NumPy copy of the hash stream, Fisher-Yates on a list, union-find with path halving."""
    words = np.asarray(jax.random.bits(key, (4,), jnp.uint32))
    room_u, room_v, wall = (a.tolist() for a in generators.maze_edges(height, width))
    rooms = generators.room_cells(height, width).tolist()
    num_edges, num_rooms = len(wall), len(rooms)
    order = list(range(num_edges))
    parent = {cell: cell for cell in rooms}

    def find(cell):
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    kind = np.full(height * width, WALL, np.int8)
    kind[rooms] = FLOOR
    with np.errstate(over="ignore"):
        for i in range(num_edges):
            draw = _mix_bits_np(_mix_bits_np(np.uint32(i) * np.uint32(0x9E3779B9) + words[0]) ^ words[1])
            j = i + (int(draw) * (num_edges - i) >> 32)  # Lemire: floor(draw * n / 2**32)
            order[i], order[j] = order[j], order[i]
            edge = order[i]
            a, b = find(room_u[edge]), find(room_v[edge])
            if a != b:
                parent[b] = a
                kind[wall[edge]] = FLOOR
    goal_room = int(words[2]) * num_rooms >> 32
    start_room = (goal_room + 1 + (int(words[3]) * (num_rooms - 1) >> 32)) % num_rooms
    kind[rooms[goal_room]] = GOAL
    return kind, rooms[start_room]


@pytest.mark.parametrize("height, width", [(9, 9), (5, 11), (15, 15)])
def test_generate_maze__matches_a_plain_python_kruskal_on_the_same_draws(height, width):
    generate = jax.jit(jax.vmap(lambda k: generators.generate_maze(k, height, width)))
    keys = jax.random.split(jax.random.PRNGKey(11), 20)
    kinds, starts = generate(keys)
    for key, kind, start in zip(keys, np.asarray(kinds), np.asarray(starts)):
        ref_kind, ref_start = _kruskal_reference(key, height, width)
        np.testing.assert_array_equal(kind, ref_kind)
        assert int(start) == ref_start


def test_generate_maze__same_key_alone_or_in_a_batch_gives_the_same_maze():
    keys = jax.random.split(jax.random.PRNGKey(5), 8)
    batch = jax.jit(jax.vmap(lambda k: generators.generate_maze(k, 9, 9)))(keys)
    for index in (0, 5):
        alone = jax.jit(lambda k: generators.generate_maze(k, 9, 9))(keys[index])
        eager = generators.generate_maze(keys[index], 9, 9)
        chex.assert_trees_all_equal(alone, eager, jax.tree.map(lambda x: x[index], batch))


def test_generate_maze__large_maze_with_int16_labels_is_perfect():
    # 25x25: 169 rooms and 312 edges, too many for int8 room labels and edge indices.
    assert generators.small_int_dtype(169) == jnp.int16 and generators.small_int_dtype(312) == jnp.int16
    kinds, starts = jax.jit(jax.vmap(lambda k: generators.generate_maze(k, 25, 25)))(
        jax.random.split(jax.random.PRNGKey(2), 4)
    )
    for kind, start in zip(np.asarray(kinds).reshape(4, 25, 25), np.asarray(starts)):
        open_cells = int((kind != WALL).sum())
        assert open_cells == 2 * 169 - 1 and open_adjacencies(kind) == open_cells - 1
        assert bfs_reachable(kind, int(start)).sum() == open_cells


def test_uniform_below__is_floor_of_bits_times_n_over_two_to_the_32():
    bits = np.concatenate([[0, 1, 0xFFFF, 0x10000, 0xFFFFFFFF], np.random.default_rng(0).integers(0, 2**32, 2000)])
    for n in (1, 2, 3, 25, 112, 2**16 - 1, 2**16):
        got = np.asarray(generators.uniform_below(jnp.asarray(bits, jnp.uint32), n))
        np.testing.assert_array_equal(got, (bits.astype(object) * n) >> 32)
        assert got.max() < n


def test_small_int_dtype__narrowest_that_holds_every_index():
    assert generators.small_int_dtype(128) == jnp.int8  # indices 0..127
    assert generators.small_int_dtype(129) == jnp.int16
    assert generators.small_int_dtype(32768) == jnp.int16
    assert generators.small_int_dtype(32769) == jnp.int32
