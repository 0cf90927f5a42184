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


def small_int_dtype(count: int) -> jnp.dtype:
    """The narrowest signed int dtype that holds ``0 .. count - 1`` (int8, int16 or int32)."""
    for dtype in (jnp.int8, jnp.int16):
        if count - 1 <= jnp.iinfo(dtype).max:
            return jnp.dtype(dtype)
    return jnp.dtype(jnp.int32)


def mix_bits(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a cheap elementwise bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_draw(seed: jax.Array, counter: jax.Array) -> jax.Array:
    """() uint32 pseudo-random word number ``counter`` of the stream that ``seed`` ([2] uint32) names.

    A counter-based hash, not a ``jax.random`` call: one draw is a dozen integer ops, where a
    threefry draw under ``vmap`` costs a loop of its own (the maze loop makes one draw per edge).
    """
    counter = jnp.asarray(counter).astype(jnp.uint32)
    return mix_bits(mix_bits(counter * jnp.uint32(0x9E3779B9) + seed[0]) ^ seed[1])


# Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011;
# the Random123 constants): rotation distances of the eight rounds that repeat, and the key-schedule parity.
THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
THREEFRY_PARITY = 0x1BD11BDA


def threefry2x32(
    key1: jax.Array, key2: jax.Array, count1: jax.Array, count2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 of the counters ``(count1, count2)`` under the key ``(key1, key2)`` (uint32,
    broadcast together): bitwise ``jax``'s ``threefry2x32`` primitive, the hash behind
    ``jax.random`` (tested against it).

    NOTE: written out round by round, so XLA fuses it into the surrounding elementwise code. JAX
    lowers its primitive on CPU as a 5-step loop over whole arrays (each step a kernel that reads
    and writes them), which made the per-env key derivation the largest cost of a slippery step.
    """
    u32 = lambda x: jnp.asarray(x, jnp.uint32)  # noqa: E731
    keys = (u32(key1), u32(key2), u32(key1) ^ u32(key2) ^ jnp.uint32(THREEFRY_PARITY))
    x0, x1 = u32(count1) + keys[0], u32(count2) + keys[1]
    for block in range(5):
        for r in THREEFRY_ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = ((x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))) ^ x0
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3] + jnp.uint32(block + 1)
    return x0, x1


def key_bits(key: jax.Array) -> jax.Array:
    """``jax.random.bits(key, (), jnp.uint32)`` of a raw or typed threefry key, through the fused
    ``threefry2x32`` (bitwise the same with ``jax_threefry_partitionable``, jax's default; otherwise,
    or for another PRNG, ``jax.random.bits`` itself)."""
    if jax.config.jax_threefry_partitionable:
        words = key
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            words = jax.random.key_data(key) if str(jax.random.key_impl(key)) == "threefry2x32" else None
        if words is not None and words.dtype == jnp.uint32 and words.shape == (2,):
            bits1, bits2 = threefry2x32(words[0], words[1], jnp.uint32(0), jnp.uint32(0))
            return bits1 ^ bits2
    return jax.random.bits(key, (), jnp.uint32)


def key_word_bits(key: jax.Array) -> jax.Array:
    """() uint32 hashed from a threefry key's own two words: ``hash_draw(words, 1)`` (two MurmurHash3
    finalisers, a dozen integer ops), for a raw ``[2] uint32`` or typed threefry key; for another
    PRNG, ``jax.random.bits(key, (), jnp.uint32)``. Counter 1, not 0: the finaliser maps 0 to 0, so
    counter 0 hashed the all-zero key ``PRNGKey(0)``, the first key a user types, to the word 0
    (a slip on every step, always to the same side).

    NOTE: not a ``jax.random`` draw. The words of a key that ``jax.random.split``/``fold_in`` made are
    already Threefry outputs (uniform bits), and the finalisers spread even a hand-made key such as
    ``PRNGKey(seed) = (0, seed)`` over all 32 bits; a Threefry hash of the key (``key_bits``) would
    cost ~10x more per draw. Use it only where the key serves no other draw of the same kind (the
    slip: ``GridWorld.draw_slip``; the step's reset key is ``split(key)[1]``, a Threefry hash).
    """
    words = key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        words = jax.random.key_data(key) if str(jax.random.key_impl(key)) == "threefry2x32" else None
    if words is not None and words.dtype == jnp.uint32 and words.shape == (2,):
        return hash_draw(words, jnp.uint32(1))
    return jax.random.bits(key, (), jnp.uint32)


def uniform_below(bits: jax.Array, n: jax.Array) -> jax.Array:
    """``floor(bits * n / 2**32)``: uint32 words mapped to ``0 .. n - 1``, for ``1 <= n <= 2**16``.

    Lemire's multiply-shift, exact in 32-bit arithmetic (16-bit halves): no integer division,
    which XLA's CPU backend runs as a scalar loop. Each value's probability is within ``1 / 2**32``
    of ``1 / n``, as with a modulo.
    """
    bits, n = jnp.asarray(bits, jnp.uint32), jnp.asarray(n, jnp.uint32)
    return ((bits >> 16) * n + (((bits & jnp.uint32(0xFFFF)) * n) >> 16)) >> 16


# Length: 74 lines, 21 of them the docstring (the algorithm, its source and the key layout); the
# body is one Kruskal pass (a scan over the shuffled passages) and the start/goal draw.
def generate_maze(key: jax.Array, height: int, width: int) -> tuple[jax.Array, jax.Array]:
    """A randomized-Kruskal perfect maze with a random start and goal.

    Randomized Kruskal: take the candidate passages in a uniformly random order and open each one
    that joins two rooms not yet connected. Every room then connects to every other by exactly
    one path (a spanning tree of the rooms), so the goal is always reachable. Start and goal are
    two distinct rooms drawn uniformly.

    The random order is built inside the Kruskal loop by Fisher-Yates (step ``i`` swaps a uniform
    pick from the not-yet-taken edges into place ``i``), so there is no sort: under ``vmap`` a
    sort of the edge keys cost more than all the rest. The picks come from a counter-based hash
    of one threefry draw, computed before the loop; each step is then a few per-env scalar
    look-ups and one compare-and-select over the room labels (the narrowest int dtype that fits).

    Args:
        key: PRNG key; the same key gives the same maze.
        height, width: odd grid sides (static).

    Returns:
        cell_kind: [H*W] int8, FLOOR / WALL with one GOAL.
        start: () int32 start cell.
    """
    room_u, room_v, wall = maze_edges(height, width)
    rooms = room_cells(height, width)
    num_edges, num_rooms = int(wall.shape[0]), int(rooms.shape[0])
    if num_edges > 2**16:
        raise ValueError(f"a {height}x{width} maze has {num_edges} candidate passages; at most 2**16 are supported")
    room_dtype, edge_dtype = small_int_dtype(num_rooms), small_int_dtype(num_edges)
    room_index = np.zeros(height * width, np.int64)
    room_index[rooms] = np.arange(num_rooms)
    edge_u = jnp.asarray(room_index[room_u], room_dtype)  # [E] room (0..R-1) at each end of an edge
    edge_v = jnp.asarray(room_index[room_v], room_dtype)
    # One threefry draw per maze: [seed0, seed1] for the shuffle's hash stream, then goal and start.
    words = jax.random.bits(key, (4,), jnp.uint32)
    seed, goal_word, start_word = words[:2], words[2], words[3]
    # Fisher-Yates picks, all drawn before the loop in one vectorised pass: step i swaps place
    # pick[i], uniform in i .. E-1, into place i. [E] int32.
    steps = jnp.arange(num_edges, dtype=jnp.uint32)
    pick = (steps + uniform_below(hash_draw(seed, steps), num_edges - steps)).astype(jnp.int32)

    def add_edge(i: jax.Array, carry: tuple[jax.Array, jax.Array, jax.Array]):
        # label: [R] component id of each room (union-find by relabelling);
        # order: [E] edges, order[:i] already taken (Fisher-Yates); joined: [E] bool by step.
        label, order, joined = carry
        j = pick[i]
        edge = order[j]
        order = order.at[j].set(order[i]).at[i].set(edge)
        lu, lv = label[edge_u[edge]], label[edge_v[edge]]
        label = jnp.where(label == lv, lu, label)
        return label, order, joined.at[i].set(lu != lv)

    # NOTE: the initial carry is made to depend on the draw (a zero derived from it), so it varies
    # over a mesh axis wherever the key does: inside shard_map a loop whose carry starts invariant
    # but comes back varying does not type-check.
    zero = seed[0] & jnp.uint32(0)
    init = (
        jnp.arange(num_rooms, dtype=room_dtype) + zero.astype(room_dtype),
        jnp.arange(num_edges, dtype=edge_dtype) + zero.astype(edge_dtype),
        jnp.zeros((num_edges,), jnp.bool_) | (zero > 0),
    )
    _, order, joined = jax.lax.fori_loop(0, num_edges, add_edge, init)
    opened = jnp.zeros((num_edges,), jnp.bool_).at[order].set(joined)  # [E] by edge
    # Cell kinds by one constant-index gather: a wall cell between two rooms takes its edge's
    # kind; rooms are floor, the other cells (odd, odd) are walls.
    source = np.full(height * width, num_edges + 1, np.int32)
    source[rooms] = num_edges
    source[wall] = np.arange(num_edges)
    edge_kind = jnp.where(opened, jnp.int8(FLOOR), jnp.int8(WALL))
    kind = jnp.concatenate([edge_kind, jnp.array([FLOOR, WALL], jnp.int8)])[jnp.asarray(source)]
    goal_room = uniform_below(goal_word, num_rooms).astype(jnp.int32)
    start_room = (goal_room + 1 + uniform_below(start_word, num_rooms - 1).astype(jnp.int32)) % num_rooms
    rooms = jnp.asarray(rooms)
    kind = jnp.where(jnp.arange(height * width) == rooms[goal_room], jnp.int8(GOAL), kind)
    return kind, rooms[start_room].astype(jnp.int32)


def place_start_and_goal_cells(key: jax.Array, base_kind: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A fixed wall layout with a goal and a start drawn uniformly from distinct floor cells.

    One threefry draw of two words (results version 2): the goal is floor cell number
    ``uniform_below(word0, F)`` of the ``F`` floor cells in row-major order, the start floor cell
    number ``uniform_below(word1, F - 1)`` of the others. Version 1 drew two ``categorical``s (a
    Gumbel draw with two logs for every cell), ~20x the cost per reset.

    Args:
        key: PRNG key.
        base_kind: [H*W] int8 walls and floor (any GOAL cells in it count as floor); at least
            two floor cells.

    Returns:
        cell_kind: [H*W] int8 with exactly one GOAL; start: () int32, a floor cell != goal; goal:
        () int32, the GOAL cell.
    """
    base = jnp.where(base_kind == GOAL, jnp.int8(FLOOR), base_kind).astype(jnp.int8)
    floor = base == FLOOR
    rank = jnp.cumsum(floor, dtype=jnp.int32) - 1  # [H*W] place of each floor cell among the floor
    num_floor = rank[-1] + 1
    words = jax.random.bits(key, (2,), jnp.uint32)
    goal_rank = uniform_below(words[0], num_floor).astype(jnp.int32)
    start_rank = uniform_below(words[1], num_floor - 1).astype(jnp.int32)
    start_rank = start_rank + (start_rank >= goal_rank)  # skip the goal
    goal = jnp.argmax(floor & (rank == goal_rank)).astype(jnp.int32)
    start = jnp.argmax(floor & (rank == start_rank)).astype(jnp.int32)
    return base.at[goal].set(jnp.int8(GOAL)), start, goal


def place_start_and_goal(key: jax.Array, base_kind: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(cell_kind, start)`` of ``place_start_and_goal_cells`` (the same draw)."""
    cell_kind, start, _ = place_start_and_goal_cells(key, base_kind)
    return cell_kind, start
