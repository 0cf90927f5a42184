"""Observation encoders: pure functions from (agent cell, layout arrays) to an observation.

Each encoding declares the gymnax space its observations live in.

=========  ==============================  ==========================================
name       observation                     space
=========  ==============================  ==========================================
index      () int32 cell index             Discrete(H*W)
onehot     [H*W] float32 one-hot           Box(0, 1, (H*W,), float32)
coords     [2] int32 (row, col)            Box(0, (H - 1, W - 1), (2,), int32)
grid       [H, W, 4] float32 channels      Box(0, 1, (H, W, 4), float32)
view       [k, k, 4] float32 channels      Box(0, 1, (k, k, 4), float32)
=========  ==============================  ==========================================

Image channels are (wall, goal, lava, agent); in the egocentric ``view`` the agent is the centre
cell and cells beyond the grid read as walls. An env with extra cell kinds (``TMaze-v0``'s cue)
appends one channel per extra kind after these four (``encode_with_kinds``), so the other envs'
observations keep their four channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrid.gymnax_base import spaces

from jaxgrid.types import FLOOR, GOAL, LAVA, WALL

ENCODINGS = ("index", "onehot", "coords", "grid", "view")
NUM_CHANNELS = 4


def check_encoding(obs: str, view_size: int) -> None:
    """Raises ValueError for an unknown encoding or a bad view size (before any compilation)."""
    if obs not in ENCODINGS:
        raise ValueError(f"unknown observation encoding {obs!r}; valid choices: {', '.join(ENCODINGS)}")
    if obs == "view" and (not isinstance(view_size, int) or view_size < 1 or view_size % 2 == 0):
        raise ValueError(f"view_size must be a positive odd int (the agent is the centre), got {view_size!r}")


def observation_space(obs: str, height: int, width: int, view_size: int) -> spaces.Space:
    n = height * width
    if obs == "index":
        return spaces.Discrete(n)
    if obs == "onehot":
        return spaces.Box(0.0, 1.0, (n,), jnp.float32)
    if obs == "coords":
        return spaces.Box(0, jnp.array([height - 1, width - 1], jnp.int32), (2,), jnp.int32)
    if obs == "grid":
        return spaces.Box(0.0, 1.0, (height, width, NUM_CHANNELS), jnp.float32)
    if obs == "view":
        return spaces.Box(0.0, 1.0, (view_size, view_size, NUM_CHANNELS), jnp.float32)
    raise ValueError(f"unknown observation encoding {obs!r}; valid choices: {', '.join(ENCODINGS)}")


# kind_codes maps the kinds to their channel bits arithmetically; it relies on these codes.
if (FLOOR, WALL, GOAL, LAVA) != (0, 1, 2, 3):
    raise ImportError("observations.kind_codes assumes FLOOR, WALL, GOAL, LAVA == 0, 1, 2, 3")


def kind_codes(cell_kind: jax.Array) -> jax.Array:
    """[...] int8 channel bits of cell kinds: WALL -> 1 (bit 0), GOAL -> 2, LAVA -> 4, any other
    kind (FLOOR, a ``TMaze`` cue) -> 0; bit 3 (8) is left for the agent."""
    kinds = cell_kind.astype(jnp.int8)
    # FLOOR 0, WALL 1, GOAL 2, LAVA 3: (1 << kind) >> 1 is 0, 1, 2, 4; & 7 clears larger kinds.
    return ((jnp.int8(1) << kinds) >> 1) & jnp.int8(7)


AGENT_BIT = 8


def code_channels(codes: jax.Array) -> jax.Array:
    """[..., 4] float32 (wall, goal, lava, agent) channels of [...] int8 channel bits.

    NOTE: the image encoders build one int8 code per cell, then expand its bits once. Stacking
    four compares on a minor axis of 4 (as ``view_channels``) costs XLA:CPU 3-5x more per
    observation (measured at 4,096 and 65,536 envs, 9x9 grids), the same values.
    """
    shifts = jnp.arange(NUM_CHANNELS, dtype=jnp.int8)
    return ((codes[..., None] >> shifts) & jnp.int8(1)).astype(jnp.float32)


def grid_channels(pos: jax.Array, cell_kind: jax.Array, height: int, width: int) -> jax.Array:
    """[H, W, 4] float32 (wall, goal, lava, agent) image of the whole grid."""
    agent = jnp.where(jnp.arange(height * width, dtype=jnp.int32) == pos, jnp.int8(AGENT_BIT), jnp.int8(0))
    return code_channels(kind_codes(cell_kind) | agent).reshape(height, width, NUM_CHANNELS)


def view_cells(height: int, width: int, view_size: int) -> np.ndarray:
    """[H*W, k, k] int32: for each agent cell, the cell under each view position, or ``H*W``
    where the view reaches past the grid (read as a wall)."""
    half = view_size // 2
    offsets = np.arange(view_size) - half
    rows = np.arange(height)[:, None, None, None] + offsets[None, None, :, None]
    cols = np.arange(width)[None, :, None, None] + offsets[None, None, None, :]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    cells = np.where(inside, rows * width + cols, height * width)
    return cells.reshape(height * width, view_size, view_size).astype(np.int32)


def _centre_bit(view_size: int) -> np.ndarray:
    """[k, k] int8: the agent bit at the centre of a view window."""
    centre = np.zeros((view_size, view_size), np.int8)
    centre[view_size // 2, view_size // 2] = AGENT_BIT
    return centre


def view_channels(patch: jax.Array) -> jax.Array:
    """[..., k, k, 4] float32 (wall, goal, lava, agent at the centre) of [..., k, k] cell kinds."""
    return code_channels(kind_codes(patch) | jnp.asarray(_centre_bit(patch.shape[-1])))


def view_table(cell_kind: jax.Array, height: int, width: int, view_size: int) -> jax.Array:
    """[H*W, k, k] int8: the ``view`` observation's channel bits (``code_channels``) from every agent
    cell of one layout.

    NOTE: for a layout shared by a batch (fixed-layout envs: the layout is in the unbatched params)
    the table is built once per step (XLA hoists it out of a scan) and each env's observation is
    one row gather (49 bytes for a 7x7 view), expanded to channels after it.
    """
    codes = jnp.concatenate([kind_codes(cell_kind), jnp.full((1,), kind_codes(jnp.int8(WALL)), jnp.int8)])
    return codes[jnp.asarray(view_cells(height, width, view_size))] | jnp.asarray(_centre_bit(view_size))


def view_with_goal(
    wall_kind: jax.Array, pos: jax.Array, goal: jax.Array, height: int, width: int, view_size: int
) -> jax.Array:
    """[k, k, 4] float32 ``view`` of the layout ``wall_kind`` ([H*W] int8, its GOAL cells read as
    FLOOR) with one GOAL at cell ``goal`` (() int32, a FLOOR cell of ``wall_kind``), from ``pos``.

    The same values as ``encode("view", pos, layout, ...)`` of that layout. NOTE: ``wall_kind`` is
    shared by a batch (unbatched params), so its ``view_table`` is built once per step and each env
    reads one row, adding the goal bit where the goal falls in its window (49 compares), where a
    per-env layout costs a window gather per env (about half the step at 65,536 envs on CPU).
    """
    half = view_size // 2
    base = jnp.where(wall_kind == GOAL, jnp.int8(FLOOR), wall_kind).astype(jnp.int8)
    row = view_table(base, height, width, view_size).at[pos].get(mode="promise_in_bounds")  # [k, k] int8
    d_row = goal // width - pos // width + half
    d_col = goal % width - pos % width + half
    inside = (d_row >= 0) & (d_row < view_size) & (d_col >= 0) & (d_col < view_size)
    at = jnp.where(inside, d_row * view_size + d_col, -1)
    window = jnp.arange(view_size * view_size, dtype=jnp.int32).reshape(view_size, view_size)
    goal_bit = jnp.where(window == at, kind_codes(jnp.int8(GOAL)), jnp.int8(0))
    return code_channels(row | goal_bit)


def encode(
    obs: str, pos: jax.Array, cell_kind: jax.Array, height: int, width: int, view_size: int,
    shared_layout: bool = False,
) -> jax.Array:
    """Encodes the agent cell ``pos`` (() int32) in the layout ``cell_kind`` ([H*W] int8).

    ``shared_layout``: ``cell_kind`` is the same for every env of a batch (it is not batched under
    ``vmap``), so the ``view`` can be read from a table of every cell's view; the same values.
    """
    if obs == "view" and shared_layout:
        return code_channels(view_table(cell_kind, height, width, view_size).at[pos].get(mode="promise_in_bounds"))
    if obs == "index":
        return pos.astype(jnp.int32)
    if obs == "onehot":
        return jax.nn.one_hot(pos, height * width, dtype=jnp.float32)
    if obs == "coords":
        return jnp.stack([pos // width, pos % width]).astype(jnp.int32)
    if obs == "grid":
        return grid_channels(pos, cell_kind, height, width)
    if obs == "view":
        # The window of int8 codes (one dynamic slice per env), then its channels.
        half = view_size // 2
        codes = jnp.pad(kind_codes(cell_kind).reshape(height, width), half, constant_values=kind_codes(jnp.int8(WALL)))
        window = jax.lax.dynamic_slice(codes, (pos // width, pos % width), (view_size, view_size))
        return code_channels(window | jnp.asarray(_centre_bit(view_size)))
    raise ValueError(f"unknown observation encoding {obs!r}; valid choices: {', '.join(ENCODINGS)}")


def kind_planes(
    obs: str, pos: jax.Array, cell_kind: jax.Array, height: int, width: int, view_size: int,
    kinds: tuple[int, ...],
) -> jax.Array:
    """One float32 plane per cell kind in ``kinds``, over the grid or the agent's view window.

    Args:
        obs: ``"grid"`` or ``"view"``.
        pos: () int32 agent cell, row-major.
        cell_kind: [H*W] int8 cell kinds.
        height, width, view_size: static shape (``view_size`` odd, for ``"view"``).
        kinds: static cell kinds, one plane each (beyond the grid edge reads as WALL).

    Returns:
        [H, W, len(kinds)] (grid) or [k, k, len(kinds)] (view) float32 in {0, 1}.

    Raises:
        ValueError: ``obs`` is not an image encoding.
    """
    kinds_2d = cell_kind.reshape(height, width)
    if obs == "view":
        half = view_size // 2
        padded = jnp.pad(kinds_2d, half, constant_values=WALL)
        kinds_2d = jax.lax.dynamic_slice(padded, (pos // width, pos % width), (view_size, view_size))
    elif obs != "grid":
        raise ValueError(f"kind planes exist for the image encodings 'grid' and 'view', got {obs!r}")
    return jnp.stack([kinds_2d == k for k in kinds], axis=-1).astype(jnp.float32)


def encode_with_kinds(
    obs: str, pos: jax.Array, cell_kind: jax.Array, height: int, width: int, view_size: int,
    extra_kinds: tuple[int, ...],
) -> jax.Array:
    """``encode``, with one channel per kind in ``extra_kinds`` appended to ``grid``/``view`` images
    (channels: wall, goal, lava, agent, then the extra kinds); other encodings are ``encode``'s."""
    base = encode(obs, pos, cell_kind, height, width, view_size)
    if obs not in ("grid", "view") or not extra_kinds:
        return base
    extra = kind_planes(obs, pos, cell_kind, height, width, view_size, extra_kinds)
    return jnp.concatenate([base, extra], axis=-1)


def observation_space_with_kinds(
    obs: str, height: int, width: int, view_size: int, extra_kinds: tuple[int, ...]
) -> spaces.Space:
    """The space of ``encode_with_kinds``: images have ``NUM_CHANNELS + len(extra_kinds)`` channels."""
    if obs not in ("grid", "view") or not extra_kinds:
        return observation_space(obs, height, width, view_size)
    side = (height, width) if obs == "grid" else (view_size, view_size)
    return spaces.Box(0.0, 1.0, (*side, NUM_CHANNELS + len(extra_kinds)), jnp.float32)
