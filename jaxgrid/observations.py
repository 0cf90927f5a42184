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
cell and cells beyond the grid read as walls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxgrid.gymnax_base import spaces

from jaxgrid.types import GOAL, LAVA, WALL

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


def grid_channels(pos: jax.Array, cell_kind: jax.Array, height: int, width: int) -> jax.Array:
    """[H, W, 4] float32 (wall, goal, lava, agent) image of the whole grid."""
    kinds = cell_kind.reshape(height, width)
    agent = jnp.arange(height * width, dtype=jnp.int32).reshape(height, width) == pos
    return jnp.stack([kinds == WALL, kinds == GOAL, kinds == LAVA, agent], axis=-1).astype(jnp.float32)


def encode(
    obs: str, pos: jax.Array, cell_kind: jax.Array, height: int, width: int, view_size: int
) -> jax.Array:
    """Encodes the agent cell ``pos`` (() int32) in the layout ``cell_kind`` ([H*W] int8)."""
    if obs == "index":
        return pos.astype(jnp.int32)
    if obs == "onehot":
        return jax.nn.one_hot(pos, height * width, dtype=jnp.float32)
    if obs == "coords":
        return jnp.stack([pos // width, pos % width]).astype(jnp.int32)
    if obs == "grid":
        return grid_channels(pos, cell_kind, height, width)
    if obs == "view":
        half = view_size // 2
        kinds = jnp.pad(cell_kind.reshape(height, width), half, constant_values=WALL)
        row, col = pos // width, pos % width
        patch = jax.lax.dynamic_slice(kinds, (row, col), (view_size, view_size))
        centre = (jnp.arange(view_size)[:, None] == half) & (jnp.arange(view_size)[None, :] == half)
        return jnp.stack([patch == WALL, patch == GOAL, patch == LAVA, centre], axis=-1).astype(
            jnp.float32
        )
    raise ValueError(f"unknown observation encoding {obs!r}; valid choices: {', '.join(ENCODINGS)}")
