"""Episode replay: the frames show exactly the states that happened, slips and the final state
included (``info["final_state"]``), for GIFs, ``jaxgrid play`` and ``render.rollout_frames``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from jaxgrid import play, render
from jaxgrid.types import GOAL, LAVA


def agent_cell_of(frame: np.ndarray, width: int, px: int) -> int:
    """The one cell whose centre pixel has the agent's colour."""
    centres = frame[px // 2::px, px // 2::px]
    cells = np.flatnonzero(np.all(centres == render.AGENT_RGB, axis=-1))
    assert len(cells) == 1, cells
    return int(cells[0])


def lived_trajectory(env, params, key, actions):
    """The trajectory stepped by hand, independent of replay: the cells the agent was in (read off
    the 'index' observations, the final one from info["final_observation"]) and the actions."""
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)
    cells = [int(obs)]
    for t, action in enumerate(actions):
        obs, state, _, terminated, truncated, info = env.step(
            jax.random.fold_in(key_steps, t), state, jnp.int32(action), params
        )
        if bool(terminated | truncated):
            cells.append(int(info["final_observation"]))
            break
        cells.append(int(obs))
    return cells


def test_replay__slippery_frozen_lake_frames_match_the_trajectory_that_happened():
    env, params = jaxgrid.make("FrozenLake-v1")  # slippery: 2/3 of moves go sideways
    assert env.slippery and env.obs_encoding == "index"
    px, slipped, ended = 8, 0, 0
    for seed in range(8):
        key = jax.random.PRNGKey(seed)
        actions = [2, 1, 2, 1, 2, 1, 2, 1] * 12  # down, right, ...
        episode = jaxgrid.replay_episode(env, params, lambda obs, state, it=iter(actions): next(it), key)
        cells = lived_trajectory(env, params, key, episode.actions)
        assert [int(s.pos) for s in episode.states] == cells
        frames = jaxgrid.episode_frames(env, params, episode, cell_px=px)
        assert frames.shape[0] == episode.length + 1
        assert [agent_cell_of(f, env.width, px) for f in frames] == cells
        # slips: the agent went where the action did not lead
        intended = np.asarray(env.layout.next_cell_table(env.action_deltas))
        slipped += sum(intended[a, b] != c for a, b, c in zip(cells, episode.actions, cells[1:]))
        if episode.terminated:  # the last frame shows the hole or goal it ended in, not the reset
            ended += 1
            kind = int(np.asarray(params.cell_kind)[cells[-1]])
            assert kind in (GOAL, LAVA) and cells[-1] != 0
    assert slipped > 0 and ended > 0  # the check was exercised


def test_replay__procedural_final_frame_keeps_the_episodes_own_layout():
    env, params = jaxgrid.make("Maze-9x9-v0")
    episode = jaxgrid.replay_episode(env, params, lambda obs, state: _bfs_action(env, state, params),
                                     jax.random.PRNGKey(3))
    assert episode.terminated
    first, last = episode.states[0], episode.states[-1]
    # the auto-reset drew a new maze; the final state is still in the episode's own maze, at its goal
    np.testing.assert_array_equal(env.cell_kinds(last, params), env.cell_kinds(first, params))
    assert int(env.cell_kinds(last, params)[int(last.pos)]) == GOAL


def _bfs_action(env, state, params) -> int:
    """A move along a shortest path to the goal of the state's own maze."""
    from jaxgrid.layouts import Layout

    kind = np.asarray(env.cell_kinds(state, params)).reshape(env.height, env.width)
    layout = Layout(kind=kind, start=np.zeros_like(kind, bool), name="maze")
    dist = layout.distance_to_goal(env.action_deltas).reshape(-1)
    table = layout.next_cell_table(env.action_deltas)
    pos = int(state.pos)
    return next(a for a in range(env.num_actions) if dist[table[pos, a]] == dist[pos] - 1)


def test_replay__max_steps_and_start_state():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    episode = jaxgrid.replay_episode(env, params, lambda obs, state: 0, jax.random.PRNGKey(0), max_steps=3)
    assert episode.length == 3 and not (episode.terminated or episode.truncated)
    _, start = env.reset(jax.random.PRNGKey(0), params)
    start = start.replace(pos=jnp.int32(14))
    episode = jaxgrid.replay_episode(env, params, lambda obs, state: 1, jax.random.PRNGKey(0),
                                     start=(env.get_obs(start, params), start))
    assert episode.terminated and [int(s.pos) for s in episode.states] == [14, 15]
    assert episode.episode_return == pytest.approx(1.0)


def test_replay__time_limit_truncates_with_the_last_state_drawn():
    env, params = jaxgrid.make("GridWorld-4x4-v0", max_steps_in_episode=4)
    episode = jaxgrid.replay_episode(env, params, lambda obs, state: 3, jax.random.PRNGKey(0))  # left: stuck
    assert episode.truncated and episode.length == 4
    assert [int(s.time) for s in episode.states] == [0, 1, 2, 3, 4]


def test_rollout_frames__view_observations_work_and_slips_show():
    # A 'view' observation does not say where the agent is; the frames come from the states.
    env, params = jaxgrid.make("FrozenLake-v1", obs="view")
    key = jax.random.PRNGKey(5)
    actions = [1, 2] * 20
    frames = render.rollout_frames(env, params, key, actions, cell_px=8)
    index_env, index_params = jaxgrid.make("FrozenLake-v1")
    cells = lived_trajectory(index_env, index_params, key, actions)
    assert [agent_cell_of(f, env.width, 8) for f in frames] == cells


def test_play_record_episode__final_frame_is_the_state_the_episode_ended_in():
    session = play.PlaySession("FrozenLake-v1", seed=1)
    frames = play.record_episode(session, "random", max_steps=200, cell_px=8)
    last = agent_cell_of(frames[-1], 4, 8)
    kinds = np.asarray(session.params.cell_kind)
    assert int(kinds[last]) in (GOAL, LAVA)  # a hole or the goal, where it ended (not the reset cell)
    # PlaySession.step keeps the exact final state too
    session = play.PlaySession("FrozenLake-v1", seed=1)
    while not session.done:
        session.step(session.random_action())
    assert int(session.final_state.pos) == int(session.final_obs)
