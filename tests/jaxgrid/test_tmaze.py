"""TMaze-v0: the map, scripted episodes (goal +1, lava -1, walls, one-way arms, time limit), a fair
coin for the goal side, the cue in view at the start and out of view at the junction, the exact
success of memoryless policies (at most 1/2), the cue channel, rendering, and the partially observed
four-rooms id."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from jaxgrid import observations, render
from jaxgrid.procedural import ProceduralState
from jaxgrid.tmaze import TMaze, tmaze_kinds, tmaze_moves
from jaxgrid.types import CUE, GOAL, LAVA, WALL

pytestmark = pytest.mark.timeout(300)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
L = 8


def state_for(env: TMaze, goal_up: bool, pos: int | None = None) -> ProceduralState:
    """An episode's first state with the goal up or down (the agent at ``pos``, default the start)."""
    return ProceduralState(
        time=jnp.int32(0),
        pos=jnp.int32(env.start_cell if pos is None else pos),
        cell_kind=jnp.asarray(tmaze_kinds(env.length, goal_up).reshape(-1)),
        start_cell=jnp.int32(env.start_cell),
    )


def run(env, params, state, actions):
    """Steps ``actions``; returns [(pos_after, reward, terminated, truncated)] (pos before autoreset)."""
    out = []
    step_env = jax.jit(env.step_env)
    for i, a in enumerate(actions):
        key = jax.random.PRNGKey(i)
        _, st_env, reward, terminated, _ = step_env(key, state, jnp.int32(a), params)
        _, state, reward2, term2, truncated, _ = env.step(key, state, jnp.int32(a), params)
        assert float(reward) == float(reward2) and bool(terminated) == bool(term2)
        out.append((int(st_env.pos), float(reward), bool(terminated), bool(truncated)))
    return out


@pytest.fixture(scope="module")
def tmaze():
    return jaxgrid.make("TMaze-v0")


def test_map__both_goal_sides_as_text(tmaze):
    env, params = tmaze
    assert (env.height, env.width, env.obs_encoding, env.view_size) == (5, 8, "view", 3)
    up = env.render(state_for(env, True), params, mode="ansi")
    down = env.render(state_for(env, False), params, mode="ansi")
    assert up == "#######G\nC######.\nA.......\n#######.\n#######L\n"
    assert down == "#######L\n#######.\nA.......\nC######.\n#######G\n"
    assert int(params.max_steps_in_episode) == 2 * L * L
    assert float(params.step_reward) == 0.0 and float(params.goal_reward) == 1.0
    assert float(params.lava_reward) == -1.0 and bool(params.lava_terminates)


@pytest.mark.parametrize("goal_up", [True, False])
@pytest.mark.parametrize("turn", [UP, DOWN])
def test_step__goal_gives_plus_one_lava_minus_one_both_terminate(tmaze, goal_up, turn):
    env, params = tmaze
    steps = run(env, params, state_for(env, goal_up), [RIGHT] * (L - 1) + [turn, turn])
    # L - 1 moves along the corridor and one into the arm: reward 0, nothing ends.
    for i, (pos, reward, terminated, truncated) in enumerate(steps[:-1]):
        assert reward == 0.0 and not terminated and not truncated
        if i < L - 1:
            assert pos == env.start_cell + i + 1
    pos, reward, terminated, truncated = steps[-1]
    assert pos == ((L - 1) if turn == UP else 4 * L + L - 1)  # the end of the chosen arm
    assert terminated and not truncated
    assert reward == (1.0 if goal_up == (turn == UP) else -1.0)  # 2 * success - 1


@pytest.mark.parametrize("goal_up", [True, False])
def test_step__corridor_walls_and_cue_block_moves(tmaze, goal_up):
    env, params = tmaze
    for col in range(L - 1):  # every corridor cell but the junction: up and down are blocked
        for action in (UP, DOWN):
            state = state_for(env, goal_up, pos=2 * L + col)
            [(pos, reward, terminated, truncated)] = run(env, params, state, [action])
            assert pos == 2 * L + col and reward == 0.0 and not terminated
    [(pos, *_)] = run(env, params, state_for(env, goal_up), [LEFT])  # the grid edge
    assert pos == env.start_cell
    [(pos, *_)] = run(env, params, state_for(env, goal_up, pos=env.junction_cell), [RIGHT])
    assert pos == env.junction_cell


@pytest.mark.parametrize("goal_up", [True, False])
def test_step__arm_cells_are_one_way_into_their_end(tmaze, goal_up):
    env, params = tmaze
    for arm, end in ((1 * L + L - 1, L - 1), (3 * L + L - 1, 4 * L + L - 1)):
        for action in (UP, RIGHT, DOWN, LEFT):
            [(pos, reward, terminated, _)] = run(env, params, state_for(env, goal_up, pos=arm), [action])
            assert pos == end and terminated
            assert reward == (1.0 if (end == L - 1) == goal_up else -1.0)
    # Of the cells the agent can stand on (the corridor), only the junction leads into an arm cell.
    moves = tmaze_moves(L)
    arms = {1 * L + L - 1, 3 * L + L - 1}
    corridor = range(2 * L, 3 * L)
    into_arms = {(c, a) for c in corridor for a in range(4) if moves[c, a] in arms}
    assert into_arms == {(env.junction_cell, UP), (env.junction_cell, DOWN)}


def test_step__time_limit_truncates_with_reward_zero(tmaze):
    env, params = tmaze
    steps = run(env, params, state_for(env, True), [UP] * (2 * L * L))
    assert all(s[1] == 0.0 and not s[2] for s in steps)
    assert [s[3] for s in steps] == [False] * (2 * L * L - 1) + [True]


def test_reset__goal_side_is_a_fair_coin(tmaze):
    env, params = tmaze
    n = 4000
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    up = np.asarray(jax.vmap(env.goal_is_up)(states))
    kinds = np.asarray(states.cell_kind).reshape(n, 5, L)
    np.testing.assert_array_equal(kinds[:, 0, L - 1] == GOAL, up)
    np.testing.assert_array_equal(kinds[:, 4, L - 1] == LAVA, up)
    np.testing.assert_array_equal(kinds[:, 1, 0] == CUE, up)  # the cue is on the goal's side
    np.testing.assert_array_equal(kinds[:, 3, 0] == CUE, ~up)
    assert abs(up.mean() - 0.5) <= 6 * np.sqrt(0.25 / n), up.mean()
    np.testing.assert_array_equal(np.asarray(states.pos), env.start_cell)


def test_view3__cue_in_view_at_the_start_and_out_of_view_from_column_2_on(tmaze):
    env, params = tmaze

    def view(up, pos):
        return np.asarray(env.get_obs(state_for(env, up, pos=pos), params))

    start_up, start_down = view(True, env.start_cell), view(False, env.start_cell)
    assert start_up.shape == (3, 3, 5)
    np.testing.assert_array_equal(start_up[..., 4], [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(start_down[..., 4], [[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    for col in range(2, L):  # the junction's view (and every cell's on the way) is side-blind
        pos = 2 * L + col
        np.testing.assert_array_equal(view(True, pos), view(False, pos))
        assert view(True, pos)[..., 4].sum() == 0 and view(True, pos)[..., 1:3].sum() == 0
    # A 5x5 view sees the ends from the junction: there the task needs no memory.
    env5, params5 = jaxgrid.make("TMaze-v0", view_size=5)
    at_junction = [state_for(env5, up, pos=env5.junction_cell) for up in (True, False)]
    assert not np.array_equal(*[np.asarray(env5.get_obs(s, params5)) for s in at_junction])


def memoryless_success(env, params, policy_of_obs, length: int) -> tuple[float, float]:
    """Exact success probability for each goal side (up, down) of the memoryless policy
    ``policy_of_obs(obs bytes) -> [4] action probabilities``, within the time limit: the cell
    distribution propagated step by step (ends absorb)."""
    moves = tmaze_moves(length)
    n = 5 * length
    ends = (length - 1, 4 * length + length - 1)
    out = []
    for up in (True, False):
        transition = np.zeros((n, n))
        kinds = tmaze_kinds(length, up).reshape(-1)
        for cell in range(n):
            if cell in ends or kinds[cell] in (WALL, CUE):
                transition[cell, cell] = 1.0
                continue
            obs = np.asarray(env.get_obs(state_for(env, up, pos=cell), params)).tobytes()
            for a, p in enumerate(policy_of_obs(obs)):
                transition[cell, moves[cell, a]] += p
        dist = np.zeros(n)
        dist[env.start_cell] = 1.0
        for _ in range(int(params.max_steps_in_episode)):
            dist = dist @ transition
        goal = ends[0] if up else ends[1]
        out.append(float(dist[goal]))
    return out[0], out[1]


def test_memoryless__success_is_at_most_one_half_exactly(tmaze):
    """Random stochastic memoryless policies (a table from the view to action probabilities,
    peeking ones included) succeed with probability p_up + p_down <= 1 over the two sides, so at
    most 1/2 on average; 'right, then up at the junction' attains 1/2; a policy that knows the
    side (memory) attains 1 (so the computation can tell them apart)."""
    env, params = tmaze
    rng = np.random.default_rng(0)
    table: dict[bytes, np.ndarray] = {}

    def random_policy(obs: bytes) -> np.ndarray:
        if obs not in table:
            table[obs] = rng.dirichlet(np.full(4, 0.5))
        return table[obs]

    best = 0.0
    for _ in range(40):
        table.clear()
        up, down = memoryless_success(env, params, random_policy, L)
        assert up + down <= 1.0 + 1e-9, (up, down)
        best = max(best, (up + down) / 2)
    assert best > 0.05  # some random policies do reach the ends
    junction = np.asarray(env.get_obs(state_for(env, True, pos=env.junction_cell), params)).tobytes()

    def go_up(obs):
        return np.eye(4)[UP] if obs == junction else np.eye(4)[RIGHT]

    assert memoryless_success(env, params, go_up, L) == pytest.approx((1.0, 0.0))
    # With memory of the cue: up when the goal is up, else down (the side read from the state).
    for up in (True, False):
        steps = run(env, params, state_for(env, up), [RIGHT] * (L - 1) + [UP if up else DOWN] * 2)
        assert steps[-1][1] == 1.0 and steps[-1][2]


@pytest.mark.parametrize("length", [3, 8, 20])
def test_time_limit__a_random_policy_reaches_an_end_in_62_to_63_percent(length):
    """The documented exploration claim: uniform random actions end at the goal or the lava within
    2 * L**2 steps with probability 0.62-0.63 (exact)."""
    env, params = jaxgrid.make("TMaze-v0", length=length)
    assert int(params.max_steps_in_episode) == 2 * length**2
    up, down = memoryless_success(env, params, lambda obs: np.full(4, 0.25), length)
    # By symmetry a random policy's success equals its failure, so reaching an end is 2 * success.
    assert up == pytest.approx(down, abs=1e-12)
    assert 0.615 <= up + down <= 0.63, up + down


def test_obs__grid_and_view_have_a_fifth_cue_channel_other_envs_keep_four(tmaze):
    env, params = jaxgrid.make("TMaze-v0", obs="grid", length=5)
    state = state_for(env, False)
    obs = np.asarray(env.get_obs(state, params))
    assert obs.shape == (5, 5, 5) and env.observation_space(params).shape == (5, 5, 5)
    kinds = np.asarray(state.cell_kind).reshape(5, 5)
    np.testing.assert_array_equal(obs[..., 4], kinds == CUE)
    base = observations.encode("grid", state.pos, state.cell_kind, 5, 5, 3)
    np.testing.assert_array_equal(obs[..., :4], base)
    for enc in ("index", "onehot", "coords"):  # no image, no cue channel
        env_e, params_e = jaxgrid.make("TMaze-v0", obs=enc)
        space = observations.observation_space(enc, 5, L, 3)
        assert env_e.observation_space(params_e).shape == space.shape
        assert np.asarray(env_e.get_obs(state_for(env_e, True), params_e)).shape == space.shape
    other, other_params = jaxgrid.make("FourRoomsRandom-v0")
    assert other.observation_space(other_params).shape == (13, 13, 4)


def test_jit_vmap__batched_steps_equal_one_env_at_a_time(tmaze):
    env, params = tmaze
    n, steps = 6, 20
    keys = jax.random.split(jax.random.PRNGKey(5), n)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    batched = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    singles = [jax.tree.map(lambda x: x[i], state) for i in range(n)]
    ended = 0
    for t in range(steps):
        ks = jax.random.split(jax.random.PRNGKey(100 + t), n)
        scripted = RIGHT if t % 9 < L - 1 else UP  # even envs: to the junction and up, twice
        actions = jnp.where(jnp.arange(n) % 2 == 0, scripted, jax.random.randint(ks[0], (n,), 0, 4))
        obs, state, reward, terminated, truncated, _ = batched(ks, state, actions, params)
        for i in range(n):
            o, singles[i], r, te, tr, _ = env.step(ks[i], singles[i], actions[i], params)
            np.testing.assert_array_equal(np.asarray(o), np.asarray(obs[i]))
            assert float(r) == float(reward[i]) and bool(te) == bool(terminated[i])
        ended += int(jnp.sum(terminated))
    assert ended >= 6  # each scripted env ended two episodes


def test_render__cue_in_amber_and_a_batch_of_frames(tmaze):
    env, params = tmaze
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]), state_for(env, True), state_for(env, False))
    frames = np.asarray(jax.jit(jax.vmap(lambda s: env.render(s, params, cell_px=8)))(states))
    assert frames.shape == (2, 40, 64, 3) and frames.dtype == np.uint8

    def pixel(f, r, c):
        return frames[f, r * 8 + 2, c * 8 + 2]

    np.testing.assert_array_equal(pixel(0, 1, 0), render.PALETTE[CUE])
    np.testing.assert_array_equal(pixel(0, 3, 0), render.PALETTE[WALL])
    np.testing.assert_array_equal(pixel(1, 3, 0), render.PALETTE[CUE])
    np.testing.assert_array_equal(pixel(0, 0, L - 1), render.PALETTE[GOAL])
    np.testing.assert_array_equal(pixel(1, 0, L - 1), render.PALETTE[LAVA])
    assert not np.array_equal(render.PALETTE[CUE], render.PALETTE[WALL])


@pytest.mark.parametrize("bad", [2, 0, 2.5, True, "8"])
def test_length__bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="TMaze length must be an int >= 3"):
        jaxgrid.make("TMaze-v0", length=bad)


def test_overrides__unknown_ones_are_refused_and_params_apply():
    with pytest.raises(ValueError, match="unknown override"):
        jaxgrid.make("TMaze-v0", lenght=8)
    env, params = jaxgrid.make("TMaze-v0", length=12, max_steps_in_episode=40, lava_reward=-2.0)
    assert env.width == 12 and int(params.max_steps_in_episode) == 40
    steps = run(env, params, state_for(env, True), [RIGHT] * 11 + [DOWN, DOWN])
    assert steps[-1][1] == -2.0 and steps[-1][2]


def test_four_rooms_view5__the_partially_observed_variant():
    env, params = jaxgrid.make("FourRoomsRandom-View5-v0")
    ref, ref_params = jaxgrid.make("FourRoomsRandom-v0", obs="view", view_size=5)
    assert (env.obs_encoding, env.view_size) == ("view", 5)
    assert env.observation_space(params).shape == (5, 5, 4)
    assert int(params.max_steps_in_episode) == 100 and float(params.step_reward) == 0.0
    assert "5x5" in jaxgrid.registry.describe("FourRoomsRandom-View5-v0")
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    obs_ref, state_ref = jax.vmap(ref.reset, in_axes=(0, None))(keys, ref_params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs_ref))
    actions = jnp.arange(16) % 4
    out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
    out_ref = jax.vmap(ref.step, in_axes=(0, 0, 0, None))(keys, state_ref, actions, ref_params)
    np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(out_ref[0]))
