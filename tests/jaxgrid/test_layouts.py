"""Text layouts: parsing, each error message, custom maps through make, built-in maps, and
layouts of one padded size batched side by side in one vmap."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxgrid
from jaxgrid import layouts
from jaxgrid.layouts import LEFT_DOWN_RIGHT_UP, Layout
from jaxgrid.types import FLOOR, GOAL, LAVA, WALL

pytestmark = pytest.mark.timeout(120)


def test_from_text__parses_the_alphabet():
    layout = Layout.from_text("S.#\nL.G\n")
    assert (layout.height, layout.width) == (2, 3)
    np.testing.assert_array_equal(layout.kind, [[FLOOR, FLOOR, WALL], [LAVA, FLOOR, GOAL]])
    np.testing.assert_array_equal(layout.start, [[True, False, False], [False, False, False]])
    assert layout.to_text() == "S.#\nL.G"


def test_from_text__ignores_blank_lines_and_indentation():
    layout = Layout.from_text("\n\n   S.\n   .G   \n\n")
    assert layout.to_text() == "S.\n.G"


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("S..\n.G\n...", r"row 1 has 2 cells but row 0 has 3.*ragged"),
        ("S..\n.xG", r"unknown character 'x' at row 1, column 1; valid characters: '#' wall"),
        ("S.\n.X", r"unknown character 'X' at row 1, column 1"),
        ("...\n..G", r"no start cell 'S'"),
        ("S..\n...", r"no goal cell 'G'"),
        ("S#.\n##G", r"no goal is reachable from the start at row 0, column 0"),
        ("S.L.G", r"no goal is reachable from the start at row 0, column 0"),  # lava is not crossed
        ("..G\n###\nS..", r"no goal is reachable from the start at row 2, column 0"),
        ("S.G\n###\nS..", r"no goal is reachable from the start at row 2, column 0"),  # every start
        ("\n\n", r"empty layout"),
    ],
)
def test_from_text__malformed_maps_name_the_problem(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        Layout.from_text(text)


def test_from_text__rejects_non_text():
    with pytest.raises(ValueError, match="must be a str text map"):
        Layout.from_text(["S.", ".G"])


def test_make__custom_layout_errors_before_compiling():
    with pytest.raises(ValueError, match=r"unknown character '\?' at row 0, column 1"):
        jaxgrid.make("GridWorld-v0", layout="S?G")
    with pytest.raises(ValueError, match="needs a layout"):
        jaxgrid.make("GridWorld-v0")
    with pytest.raises(ValueError, match="layout must be a text map"):
        jaxgrid.make("GridWorld-v0", layout=42)


def test_make__custom_layout_runs():
    env, params = jaxgrid.make("GridWorld-v0", layout="S.#\n..G", step_reward=-1.0)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert int(obs) == 0
    rewards = []
    for action in (2, 1, 1):  # down, right, right -> goal at (1, 2)
        obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(1), state, action, params)
        rewards.append(float(reward))
    assert rewards == [-1.0, -1.0, 1.0] and bool(terminated) and int(info["final_observation"]) == 5
    # A Layout object works too, and several S cells give a random start among them.
    layout = Layout.from_text("S.S\n.G.")
    env, params = jaxgrid.make("GridWorld-v0", layout=layout)
    starts = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 200), params)[0]
    assert set(np.unique(np.asarray(starts)).tolist()) == {0, 2}


def test_builtin_layouts__shapes_and_counts():
    four = Layout.from_text(layouts.FOUR_ROOMS)
    assert (four.height, four.width) == (13, 13)
    assert int((four.kind != WALL).sum()) == 104  # Sutton, Precup & Singh's 104 states
    assert four.distance_to_goal()[1, 1] == 20
    gw = Layout.from_text(layouts.GRIDWORLD_4X4)
    assert gw.distance_to_goal()[0, 0] == 6
    lake = Layout.from_text(layouts.FROZEN_LAKE_8X8)
    assert int((lake.kind == LAVA).sum()) == 10 and lake.kind[7, 7] == GOAL
    cliff = Layout.from_text(layouts.CLIFF_WALKING)
    assert cliff.start[3, 0] and cliff.kind[3, 11] == GOAL and np.all(cliff.kind[3, 1:11] == LAVA)


def test_empty_room__sizes_and_errors():
    room = layouts.empty_room(3, 5)
    assert room.to_text() == "S....\n.....\n....G"
    env, params = jaxgrid.make("EmptyRoom-v0", size=(3, 5))
    assert (env.height, env.width) == (3, 5) and int(params.max_steps_in_episode) == 60
    env, _ = jaxgrid.make("EmptyRoom-v0", size=6)
    assert (env.height, env.width) == (6, 6)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            layouts.empty_room(bad)
    with pytest.raises(ValueError, match="at least 2 cells"):
        layouts.empty_room(1, 1)


def test_next_cell_table__gymnasium_action_order():
    table = Layout.from_text(layouts.FROZEN_LAKE_4X4).next_cell_table(LEFT_DOWN_RIGHT_UP)
    np.testing.assert_array_equal(table[5], [4, 9, 6, 1])  # from (1, 1): left, down, right, up
    np.testing.assert_array_equal(table[0], [0, 4, 1, 0])  # edges keep the agent in place


def test_pad_to__pads_with_walls_and_refuses_shrinking():
    padded = Layout.from_text("SG").pad_to(2, 3)
    assert padded.to_text() == "SG#\n###"
    with pytest.raises(ValueError, match="smaller"):
        Layout.from_text("S.G").pad_to(1, 2)


def test_params_for_layout__wrong_size_is_refused():
    env, _ = jaxgrid.make("GridWorld-4x4-v0")
    with pytest.raises(ValueError, match="pad it with Layout.pad_to"):
        env.params_for_layout(Layout.from_text("S.G"))


MAPS = ["S...\n.#..\n....\n...G", "S#G\n.#.\n...", "SL\n.G", "S.\n.G"]


def test_vmap__layouts_of_one_padded_size_step_side_by_side():
    """Four maps of different sizes, padded to 4x4, run in one vmap and agree with running each alone."""
    env, _ = jaxgrid.make("GridWorld-v0", layout=Layout.from_text(MAPS[0]))
    layouts_ = [Layout.from_text(m).pad_to(4, 4) for m in MAPS]
    params_list = [env.params_for_layout(lay, step_reward=-0.1 * (i + 1)) for i, lay in enumerate(layouts_)]
    params = jax.tree.map(lambda *x: jnp.stack(x), *params_list)
    actions = jnp.array([[1, 1, 1, 2, 2, 2], [2, 2, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 2, 3, 0, 1, 2]])
    key = jax.random.PRNGKey(0)

    def run(params, actions):
        obs, state = env.reset(key, params)

        def body(state, a):
            obs, state, reward, terminated, truncated, info = env.step(key, state, a, params)
            return state, (info["final_observation"], reward, terminated)

        return jax.lax.scan(body, state, actions)[1]

    batched = jax.jit(jax.vmap(run))(params, actions)
    for i, p in enumerate(params_list):
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], batched), run(p, actions[i]))
    final_obs, rewards, terminated = (np.asarray(x) for x in batched)
    # Map 1 ("S#G" / ".#." / "..."): down, down, right, right, up, up reaches the goal at cell 2.
    assert final_obs[1].tolist() == [4, 8, 9, 10, 6, 2] and terminated[1].tolist() == [0] * 5 + [1]
    # Map 2 ("SL" / ".G"): right enters lava at once (terminates, lava_reward -1).
    assert terminated[2][0] and rewards[2][0] == -1.0
    assert rewards[0][0] == np.float32(-0.1) and rewards[3][0] == np.float32(-0.4)


@st.composite
def random_maps(draw):
    """5x6 maps of walls/floor/lava with one start and one goal (not always solvable)."""
    cells = draw(st.lists(st.sampled_from("....#L"), min_size=30, max_size=30))
    s, g = draw(st.lists(st.integers(0, 29), min_size=2, max_size=2, unique=True))
    cells[s], cells[g] = "S", "G"
    return "\n".join("".join(cells[r * 6:(r + 1) * 6]) for r in range(5))


_ENV_5X6, _ = jaxgrid.make("GridWorld-v0", layout="S.....\n" + "......\n" * 3 + ".....G")
_STEP = jax.jit(_ENV_5X6.step)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_maps())
def test_property__solvable_maps_are_solved_in_bfs_steps_and_others_rejected(text):
    """Either the parser rejects the map as unsolvable, or following the BFS distance down-hill in
    the env reaches the goal in exactly that many steps without touching lava."""
    layout = Layout.from_text(text, check_reachable=False)
    dist = layout.distance_to_goal()
    sr, sc = (int(x[0]) for x in np.nonzero(layout.start))
    if dist[sr, sc] < 0:
        with pytest.raises(ValueError, match=f"row {sr}, column {sc}"):
            Layout.from_text(text)
        return
    layout = Layout.from_text(text)
    params = _ENV_5X6.params_for_layout(layout)
    table = layout.next_cell_table()
    flat = dist.reshape(-1)
    obs, state = _ENV_5X6.reset(jax.random.PRNGKey(0), params)
    for t in range(int(dist[sr, sc])):
        pos = int(state.pos)
        action = next(a for a in range(4) if flat[table[pos, a]] == flat[pos] - 1)
        obs, state, reward, terminated, truncated, info = _STEP(jax.random.PRNGKey(t), state, action, params)
        assert bool(terminated) == (t == int(dist[sr, sc]) - 1)
        assert float(reward) in (-0.04, 1.0) or np.isclose(float(reward), -0.04)
    assert float(reward) == 1.0
