"""jaxgrid.optimal_return: hand-computed optima, Gymnasium's own transition tables solved by an
independent value iteration written here, plain BFS on procedural layouts, and the slip rule the
tabulation assumes checked against the env's empirical transition frequencies."""

from __future__ import annotations

import collections

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from jaxgrid.optimal import tabulate
from jaxgrid.types import GOAL, WALL

pytestmark = pytest.mark.timeout(300)


def gymnasium_value_iteration(env_id: str, horizon: int, **kwargs) -> tuple[float, float]:
    """Finite-horizon, undiscounted value iteration on Gymnasium's own ``P`` table (independent of
    jaxgrid): ``(optimal expected return, success probability of that policy)`` from the start.
    Success: a transition that is terminal with ``reward > 0`` for FrozenLake, into the goal
    state for CliffWalking (the only terminal transition there)."""
    env = gymnasium.make(env_id, **kwargs).unwrapped
    n, a = env.observation_space.n, env.action_space.n
    v, s = np.zeros(n), np.zeros(n)
    for _ in range(horizon):
        new_v, new_s = np.zeros(n), np.zeros(n)
        for state in range(n):
            q = np.zeros(a)
            qs = np.zeros(a)
            for action in range(a):
                for prob, nxt, reward, done in env.P[state][action]:
                    success = done and (reward > 0 or env_id.startswith("CliffWalking"))
                    q[action] += prob * (reward + (0.0 if done else v[nxt]))
                    qs[action] += prob * (float(success) + (0.0 if done else s[nxt]))
            best = q.max()
            new_v[state] = best
            new_s[state] = qs[q >= best - 1e-6 * (1 + abs(best))].max()
        v, s = new_v, new_s
    start = int(np.flatnonzero(np.asarray(env.initial_state_distrib))[0])
    return float(v[start]), float(s[start])


def test_optimal__4x4_grid_hand_computed():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    opt = jaxgrid.optimal_return(env, params)
    # 6 steps: 5 x (-0.04) + 1.0 = 0.8 (float32 rewards: within 1e-6)
    assert opt.expected_return == pytest.approx(0.8, abs=1e-6)
    assert opt.success_prob == 1.0
    # 5 steps are not enough to reach the goal: 5 x (-0.04), no success
    short = jaxgrid.optimal_return(env, params.replace(max_steps_in_episode=jnp.int32(5)))
    assert short.expected_return == pytest.approx(-0.2, abs=1e-6) and short.success_prob == 0.0


def test_optimal__cliff_walking_without_time_limit_is_minus_13():
    env, params = jaxgrid.make("CliffWalking-v1")
    assert int(params.max_steps_in_episode) == 2**31 - 1
    opt = jaxgrid.optimal_return(env, params)
    # 13 moves along the cliff edge (up, 11 x right, down), -1 each, the goal's included
    assert opt.expected_return == -13.0 and opt.success_prob == 1.0
    assert opt.iterations < 100  # converged, not 2**31 sweeps
    # 12 steps cannot reach the goal: -12, and stepping into the cliff (-100) never pays
    short = jaxgrid.optimal_return(env, params.replace(max_steps_in_episode=jnp.int32(12)))
    assert short.expected_return == -12.0 and short.success_prob == 0.0


def test_optimal__empty_room_hand_computed():
    env, params = jaxgrid.make("EmptyRoom-v0")
    # 8x8 room, corner to corner: 14 moves, 13 x (-0.01) + 1
    opt = jaxgrid.optimal_return(env, params)
    assert opt.expected_return == pytest.approx(0.87, abs=1e-6) and opt.success_prob == 1.0
    env, params = jaxgrid.make("EmptyRoom-v0", size=(3, 5))
    # 6 moves: 5 x (-0.01) + 1
    assert jaxgrid.optimal_return(env, params).expected_return == pytest.approx(0.95, abs=1e-6)


@pytest.mark.parametrize(
    "env_id, gym_id, gym_kwargs, horizon, known",
    [
        ("FrozenLake-v1", "FrozenLake-v1", {}, 100, 0.744),
        ("FrozenLake8x8-v1", "FrozenLake-v1", {"map_name": "8x8"}, 200, 0.913),
    ],
)
def test_optimal__slippery_frozen_lake_matches_gymnasium_table(env_id, gym_id, gym_kwargs, horizon, known):
    env, params = jaxgrid.make(env_id)
    opt = jaxgrid.optimal_return(env, params)
    ref_return, ref_success = gymnasium_value_iteration(gym_id, horizon, **gym_kwargs)
    # Gymnasium's P has exact 1/3 odds; jaxgrid's slip_prob is float32(2/3): 1e-6 apart
    assert opt.expected_return == pytest.approx(ref_return, abs=1e-6)
    assert opt.success_prob == pytest.approx(ref_success, abs=1e-6)
    assert opt.expected_return == pytest.approx(known, abs=5e-4)  # the known optimum
    assert opt.success_prob == pytest.approx(opt.expected_return, abs=1e-12)  # reward 1 = success


def test_optimal__deterministic_frozen_lake_is_solved():
    env, params = jaxgrid.make("FrozenLake-v1", is_slippery=False)
    opt = jaxgrid.optimal_return(env, params)
    assert opt.expected_return == 1.0 and opt.success_prob == 1.0


def test_optimal__slippery_cliff_matches_gymnasium_table():
    env, params = jaxgrid.make("CliffWalkingSlippery-v1", max_steps_in_episode=60)
    opt = jaxgrid.optimal_return(env, params)
    ref_return, ref_success = gymnasium_value_iteration("CliffWalking-v1", 60, is_slippery=True)
    assert opt.expected_return == pytest.approx(ref_return, rel=1e-5)
    assert opt.success_prob == pytest.approx(ref_success, abs=1e-5)


def test_tabulate__slip_rule_matches_env_frequencies():
    env, params = jaxgrid.make("FrozenLake-v1")
    mdp = tabulate(env, params)
    n = 40_000
    cell, action = 6, 1  # FrozenLake 4x4, cell (1, 2), action down: three distinct outcomes
    state = jaxgrid.GridState(time=jnp.int32(0), pos=jnp.int32(cell))

    @jax.jit
    def sample(keys):
        return jax.vmap(lambda k: env.step_env(k, state, action, params)[1].pos)(keys)

    landed = np.asarray(sample(jax.random.split(jax.random.PRNGKey(3), n)))
    want = collections.Counter()
    for nxt, p in zip(mdp.next_cell[0, cell, action], mdp.prob[0, cell, action]):
        want[int(nxt)] += p
    got = collections.Counter(landed.tolist())
    assert set(got) == set(want) and len(want) == 3
    for nxt, p in want.items():
        # binomial s.d. at n = 40,000 is <= 0.0025: 4 s.d.
        assert got[nxt] / n == pytest.approx(p, abs=0.01)


def bfs_distance(kind: np.ndarray, start: int) -> int:
    """Moves from ``start`` to the goal through non-wall cells (plain BFS)."""
    h, w = kind.shape
    dist = {start: 0}
    queue = collections.deque([start])
    while queue:
        cell = queue.popleft()
        if kind.reshape(-1)[cell] == GOAL:
            return dist[cell]
        r, c = divmod(cell, w)
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nr, nc = r + dr, c + dc
            nxt = nr * w + nc
            if 0 <= nr < h and 0 <= nc < w and kind[nr, nc] != WALL and nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    raise AssertionError("goal unreachable")


@pytest.mark.parametrize("env_id", ["Maze-9x9-v0", "FourRoomsRandom-v0"])
def test_optimal__procedural_layouts_match_bfs(env_id):
    env, params = jaxgrid.make(env_id)
    keys = jax.random.split(jax.random.PRNGKey(7), 24)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    opt = jaxgrid.optimal_return(env, params, state=states)
    step, goal = float(params.step_reward), float(params.goal_reward)
    for i in range(24):
        kind = np.asarray(states.cell_kind[i]).reshape(env.height, env.width)
        d = bfs_distance(kind, int(states.pos[i]))
        assert 1 <= d <= int(params.max_steps_in_episode)
        assert opt.returns[i] == pytest.approx((d - 1) * step + goal, abs=1e-6)
        assert opt.successes[i] == 1.0
    # one state alone gives its own optimum; the mean over layouts is the mean of the per-layout ones
    one = jaxgrid.optimal_return(env, params, state=jax.tree.map(lambda x: x[3], states))
    assert one.expected_return == pytest.approx(opt.returns[3])
    mean = jaxgrid.optimal_return(env, params, num_layouts=24, key=jax.random.PRNGKey(7))
    assert mean.expected_return == pytest.approx(opt.expected_return) and mean.stderr >= 0.0


def test_optimal__time_used_shortens_the_horizon():
    env, params = jaxgrid.make("GridWorld-4x4-v0")
    state = jaxgrid.GridState(time=jnp.int32(45), pos=jnp.int32(0))
    # 5 steps left, 6 needed: 5 x (-0.04)
    assert jaxgrid.optimal_return(env, params, state=state).expected_return == pytest.approx(-0.2, abs=1e-6)


def test_optimal__errors_name_the_problem():
    import gymnax

    cartpole, cp_params = gymnax.make("CartPole-v1")
    with pytest.raises(ValueError, match="jaxgrid grid env"):
        jaxgrid.optimal_return(cartpole, cp_params)
    maze, maze_params = jaxgrid.make("Maze-9x9-v0")
    with pytest.raises(ValueError, match="num_layouts"):
        jaxgrid.optimal_return(maze, maze_params, num_layouts=0)
    with pytest.raises(ValueError, match="states="):
        tabulate(maze, maze_params)


def test_is_deterministic():
    assert jaxgrid.is_deterministic(*jaxgrid.make("GridWorld-4x4-v0"))
    assert jaxgrid.is_deterministic(*jaxgrid.make("CliffWalking-v1"))
    assert not jaxgrid.is_deterministic(*jaxgrid.make("FrozenLake-v1"))
    assert jaxgrid.is_deterministic(*jaxgrid.make("FrozenLake-v1", is_slippery=False))
    assert not jaxgrid.is_deterministic(*jaxgrid.make("Maze-9x9-v0"))


@pytest.mark.parametrize(
    "env_id, want_return, want_success",
    [("CliffWalkingSlippery-v1", -64.71, 1.0), ("FourRooms-v0", 1.0, 1.0)],
)
def test_optimal__docs_table_values(env_id, want_return, want_success):
    """The docs/envs.md optimum table's values not checked above (to its printed precision)."""
    opt = jaxgrid.optimal_return(*jaxgrid.make(env_id))
    assert opt.expected_return == pytest.approx(want_return, abs=0.005)
    assert opt.success_prob == pytest.approx(want_success, abs=1e-6)
