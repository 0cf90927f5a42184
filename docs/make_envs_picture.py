"""Draws docs/envs.png: the reset frame of several jaxgrid envs side by side, with their ids, and
docs/maze_greedy.gif: the greedy shortest-path policy solving a 15x15 maze.

    python docs/make_envs_picture.py
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageDraw

import jaxgrid
from jaxgrid import play

IDS = ["GridWorld-4x4-v0", "FrozenLake8x8-v1", "CliffWalking-v1", "FourRooms-v0", "Maze-15x15-v0"]
HEIGHT = 180  # pixels of every panel's grid
OUT = Path(__file__).parent


def panel(env_id: str) -> Image.Image:
    env, params = jaxgrid.make(env_id)
    _, state = env.reset(jax.random.PRNGKey(1), params)
    cell_px = max(3, HEIGHT // env.height)
    frame = np.asarray(env.render(state, params, cell_px=cell_px))
    label_h = 18
    img = Image.new("RGB", (frame.shape[1], frame.shape[0] + label_h), "white")
    img.paste(Image.fromarray(frame), (0, label_h))
    ImageDraw.Draw(img).text((2, 3), env_id, fill=(0, 0, 0))
    return img


def main() -> None:
    panels = [panel(i) for i in IDS]
    gap = 12
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    height = max(p.height for p in panels)
    canvas = Image.new("RGB", (width, height), "white")
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + gap
    canvas.save(OUT / "envs.png")
    session = play.PlaySession("Maze-15x15-v0", seed=0)
    play.save_episode(session, "greedy", str(OUT / "maze_greedy.gif"), max_steps=200, cell_px=12)
    print(f"wrote {OUT / 'envs.png'} ({width}x{height}) and {OUT / 'maze_greedy.gif'}")


if __name__ == "__main__":
    main()
