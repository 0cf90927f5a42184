"""Rendering: grids to ANSI text and to RGB arrays, and episodes to GIFs or PNG strips.

``render_rgb`` is a pure jax function (jit it, vmap it over a batch of states to draw a batch of
frames on device). ``render_ansi`` is host-side text. ``save_frames`` writes frames with Pillow.

Colours: floor light grey, wall dark grey, goal green, lava red, cue amber, agent a blue disc. In
text the map alphabet of ``jaxgrid.layouts`` is used, with ``A`` for the agent and ``C`` for a cue.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrid.types import CUE, FLOOR, GOAL, LAVA, WALL

# RGB of each cell kind, indexed by FLOOR, WALL, GOAL, LAVA, CUE.
PALETTE = np.array(
    [
        [230, 230, 230],  # FLOOR
        [60, 60, 60],  # WALL
        [60, 180, 75],  # GOAL
        [220, 50, 47],  # LAVA
        [240, 170, 20],  # CUE
    ],
    np.uint8,
)
AGENT_RGB = np.array([38, 110, 230], np.uint8)
GRID_LINE_RGB = np.array([170, 170, 170], np.uint8)
KIND_CHARS = {FLOOR: ".", WALL: "#", GOAL: "G", LAVA: "L", CUE: "C"}
AGENT_CHAR = "A"


def render_rgb(
    cell_kind: jax.Array, pos: jax.Array, height: int, width: int, cell_px: int = 16
) -> jax.Array:
    """Draws the grid with the agent as a disc.

    Args:
        cell_kind: [H*W] int8 cell kinds.
        pos: () int32 agent cell, row-major.
        height, width: grid shape (static).
        cell_px: pixels per cell side (static, >= 3).

    Returns:
        [H*cell_px, W*cell_px, 3] uint8.
    """
    if cell_px < 3:
        raise ValueError(f"cell_px must be >= 3, got {cell_px}")
    kinds = cell_kind.reshape(height, width).astype(jnp.int32)
    img = jnp.asarray(PALETTE)[kinds]  # [H, W, 3]
    img = jnp.repeat(jnp.repeat(img, cell_px, axis=0), cell_px, axis=1)
    ys = jnp.arange(height * cell_px)[:, None]
    xs = jnp.arange(width * cell_px)[None, :]
    oy, ox = ys % cell_px, xs % cell_px
    line = (oy == 0) | (ox == 0)
    img = jnp.where(line[..., None], jnp.asarray(GRID_LINE_RGB), img)
    row, col = pos // width, pos % width
    centre = (cell_px - 1) / 2.0
    radius = cell_px * 0.35
    disc = ((oy - centre) ** 2 + (ox - centre) ** 2) <= radius**2
    agent = (ys // cell_px == row) & (xs // cell_px == col) & disc
    return jnp.where(agent[..., None], jnp.asarray(AGENT_RGB), img).astype(jnp.uint8)


def render_ansi(cell_kind, pos, height: int, width: int, color: bool = False) -> str:
    """The grid as text, one line per row, the agent as ``A`` (bold blue with ``color=True``)."""
    kinds = np.asarray(cell_kind).reshape(height, width)
    pos = int(pos)
    lines = []
    for r in range(height):
        chars = []
        for c in range(width):
            if r * width + c == pos:
                chars.append(f"\x1b[1;34m{AGENT_CHAR}\x1b[0m" if color else AGENT_CHAR)
            else:
                chars.append(KIND_CHARS[int(kinds[r, c])])
        lines.append("".join(chars))
    return "\n".join(lines) + "\n"


def save_frames(frames: Sequence[np.ndarray] | np.ndarray, path: str | Path, fps: float = 4.0,
                columns: int | None = None) -> Path:
    """Writes frames ([T, h, w, 3] uint8) as an animated GIF (``.gif``) or a PNG strip (``.png``).

    A PNG strip lays the frames out left to right, ``columns`` per row (all in one row by default),
    with a 2-pixel white gap. The file is written to a temporary name and renamed (atomic).
    """
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty [T, h, w, 3] array, got shape {frames.shape}")
    frames = frames.astype(np.uint8)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".png"):
        raise ValueError(f"write frames to a .gif or .png path, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    else:
        t, h, w, _ = frames.shape
        cols = t if columns is None else max(1, min(columns, t))
        rows = -(-t // cols)
        gap = 2
        strip = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
        for i, frame in enumerate(frames):
            r, c = divmod(i, cols)
            strip[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = frame
        Image.fromarray(strip).save(tmp)
    tmp.replace(path)
    return path


def rollout_frames(env, params, key: jax.Array, actions: Sequence[int] | jax.Array,
                   cell_px: int = 16) -> np.ndarray:
    """Frames of one episode under a fixed action sequence: the reset frame, then one per step.

    Stops after the step that ends the episode (the final frame shows the state it ended in,
    before the auto-reset, slips included: ``jaxgrid.replay_episode``). Returns [T+1, h, w, 3] uint8.
    """
    from jaxgrid.replay import episode_frames, replay_episode

    actions = [int(a) for a in np.asarray(actions).reshape(-1)]
    remaining = iter(actions)
    episode = replay_episode(env, params, lambda obs, state: next(remaining), key, max_steps=len(actions))
    return episode_frames(env, params, episode, cell_px)


def agent_cell(env, obs) -> int | None:
    """The agent's cell decoded from an index/onehot/coords/grid observation; None for a view."""
    obs = np.asarray(obs)
    enc = env.obs_encoding
    if enc == "index":
        return int(obs)
    if enc == "onehot":
        return int(obs.argmax())
    if enc == "coords":
        return int(obs[0]) * env.width + int(obs[1])
    if enc == "grid":
        return int(obs[..., 3].reshape(-1).argmax())
    return None
