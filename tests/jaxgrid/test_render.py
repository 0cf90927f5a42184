"""Rendering: RGB frames have the right shape and show the agent where the state says, batches of
frames come from one jit(vmap), ANSI text marks the agent, episodes are written as PNG/GIF."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxgrid
from jaxgrid import render
from jaxgrid.types import GOAL, LAVA, WALL

pytestmark = pytest.mark.timeout(120)


def _agent_cells(frame: np.ndarray, height: int, width: int, px: int) -> set[int]:
    """Cells whose centre pixel has the agent colour."""
    centres = frame[px // 2::px, px // 2::px][:height, :width]
    hit = np.all(centres == render.AGENT_RGB, axis=-1)
    return {int(i) for i in np.flatnonzero(hit)}


def test_rgb__shape_colours_and_agent_position():
    env, params = jaxgrid.make("GridWorld-v0", layout="S.#\nL.G")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    frame = np.asarray(env.render(state, params, cell_px=8))
    assert frame.shape == (16, 24, 3) and frame.dtype == np.uint8
    assert _agent_cells(frame, 2, 3, 8) == {0}
    centre = lambda r, c: frame[r * 8 + 4, c * 8 + 2]  # off the agent disc's centre line
    np.testing.assert_array_equal(centre(0, 2), render.PALETTE[WALL])
    np.testing.assert_array_equal(centre(1, 0), render.PALETTE[LAVA])
    np.testing.assert_array_equal(centre(1, 2), render.PALETTE[GOAL])
    moved = state.replace(pos=jnp.int32(3))
    assert _agent_cells(np.asarray(env.render(moved, params, cell_px=8)), 2, 3, 8) == {3}


def test_rgb__a_batch_of_frames_from_one_jit_vmap():
    env, params = jaxgrid.make("Maze-9x9-v0")
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    frames = jax.jit(jax.vmap(lambda s: env.render(s, params, cell_px=6)))(states)
    assert frames.shape == (6, 54, 54, 3) and frames.dtype == jnp.uint8
    frames = np.asarray(frames)
    for i in range(6):
        assert _agent_cells(frames[i], 9, 9, 6) == {int(states.pos[i])}
        goal = int(np.flatnonzero(np.asarray(states.cell_kind[i]) == GOAL)[0])
        r, c = divmod(goal, 9)
        np.testing.assert_array_equal(frames[i][r * 6 + 1, c * 6 + 1], render.PALETTE[GOAL])


def test_ansi__marks_the_agent_in_the_map_alphabet():
    env, params = jaxgrid.make("FrozenLake-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    text = env.render(state.replace(pos=jnp.int32(6)), params, mode="ansi")
    assert text == "....\n.LAL\n...L\nL..G\n"  # the start cell is floor; the agent is at (1, 2)
    colored = render.render_ansi(params.cell_kind, 0, 4, 4, color=True)
    assert colored.startswith("\x1b[1;34mA\x1b[0m...")
    with pytest.raises(ValueError, match="unknown render mode 'human'"):
        env.render(state, params, mode="human")


def test_save_frames__png_strip_layout_and_gif(tmp_path):
    frames = np.zeros((5, 4, 6, 3), np.uint8)
    for i in range(5):
        frames[i] = 40 * i
    path = render.save_frames(frames, tmp_path / "strip.png", columns=2)
    strip = np.asarray(Image.open(path))
    assert strip.shape == (3 * 4 + 2 * 2, 2 * 6 + 2, 3)  # 3 rows of 2, 2-px gaps
    assert np.all(strip[6:10, 8:14] == 120)  # frame 3: row 1, column 1
    assert np.all(strip[12:16, 8:14] == 255)  # the empty sixth slot stays white
    gif = Image.open(render.save_frames(frames, tmp_path / "ep.gif"))
    assert gif.n_frames == 5
    with pytest.raises(ValueError, match=r"\.gif or \.png"):
        render.save_frames(frames, tmp_path / "ep.mp4")
    with pytest.raises(ValueError, match=r"\[T, h, w, 3\]"):
        render.save_frames(frames[0], tmp_path / "x.png")
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no temp files left


def test_rollout_frames__ends_on_the_goal_frame():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    frames = render.rollout_frames(env, params, jax.random.PRNGKey(0), [1, 1, 1, 2, 2, 2, 2, 2], cell_px=8)
    assert frames.shape == (7, 32, 32, 3)  # reset + 6 steps; the episode ends at the goal
    assert _agent_cells(frames[-1], 4, 4, 8) == {15}
    assert _agent_cells(frames[3], 4, 4, 8) == {3}
