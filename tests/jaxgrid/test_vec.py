"""VecEnv: bitwise the vmapped reference, for every registered id, under jit / scan / vmap / shard_map."""

import os

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from jaxgrid import generators, vec
from tests.conftest import run_python

TEXT_MAP = "S..#\n.#..\n...G"


def make(env_id: str, **kwargs):
    if env_id == "GridWorld-v0":
        kwargs.setdefault("layout", TEXT_MAP)
    return jaxgrid.make(env_id, **kwargs)


def reference_step(env, num_envs: int):
    def step(key, state, action, params):
        keys = jax.random.split(key, num_envs)
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)

    return step


def rollout(step, state, keys, actions, params):
    """Every output of ``len(keys)`` steps: (obs, reward, terminated, truncated, final obs) per step
    and the final state."""

    def body(state, xs):
        key, action = xs
        obs, state, reward, terminated, truncated, info = step(key, state, action, params)
        return state, (obs, reward, terminated, truncated, info["final_observation"])

    return jax.jit(lambda s: jax.lax.scan(body, s, (keys, actions)))(state)


def assert_bitwise(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def random_inputs(env, params, num_envs: int, num_steps: int, seed: int = 0):
    key_actions, key_steps = jax.random.split(jax.random.PRNGKey(seed))
    num_actions = env.action_space(params).n
    actions = jax.random.randint(key_actions, (num_steps, num_envs), 0, num_actions, dtype=jnp.int32)
    return jax.random.split(key_steps, num_steps), actions


@pytest.mark.parametrize("env_id", jaxgrid.registered_ids())
def test_step__bitwise_vmap_reference_every_registered_id(env_id):
    # A short time limit makes every env end together at steps 7, 14, ...: 32 ends in one step,
    # past the capacity of 4 (several reset rounds), beside the scattered ends at the goal.
    num_envs, capacity, num_steps = 32, 4, 60
    env, params = make(env_id)
    params = params.replace(max_steps_in_episode=jnp.int32(7))
    venv = jaxgrid.VecEnv(env, num_envs, reset_capacity=capacity)
    assert venv.compacted
    key_reset = jax.random.PRNGKey(11)
    obs, state = venv.reset(key_reset, params)
    assert_bitwise((obs, state), jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_envs), params))
    keys, actions = random_inputs(env, params, num_envs, num_steps)
    expected = rollout(reference_step(env, num_envs), state, keys, actions, params)
    got = rollout(venv.step, state, keys, actions, params)
    assert_bitwise(got, expected)
    done = np.asarray(expected[1][2] | expected[1][3])
    assert done.sum(axis=1).max() > capacity and done.sum() >= 8 * num_envs


@pytest.mark.parametrize("env_id", ["Maze-9x9-v0", "FourRoomsRandom-v0", "FrozenLake-v1"])
@pytest.mark.parametrize("obs", ["grid", "view", "index"])
def test_step__bitwise_over_a_long_scan_with_default_limits(env_id, obs):
    # Default time limits: ends at the goal (or hole) scattered over 400 steps, and the default
    # capacity for procedural envs.
    num_envs, num_steps = 64, 400
    env, params = make(env_id, obs=obs, view_size=7)
    venv = jaxgrid.VecEnv(env, num_envs, reset_capacity=None if env_id != "FrozenLake-v1" else 8)
    assert venv.compacted
    _, state = venv.reset(jax.random.PRNGKey(2), params)
    keys, actions = random_inputs(env, params, num_envs, num_steps, seed=3)
    expected = rollout(reference_step(env, num_envs), state, keys, actions, params)
    got = rollout(venv.step, state, keys, actions, params)
    assert_bitwise(got, expected)
    assert np.asarray(expected[1][2]).sum() > 0  # some episodes reached the goal


def test_step__under_vmap_over_seeds_and_typed_keys():
    num_seeds, num_envs, num_steps = 3, 16, 40
    env, params = make("Maze-9x9-v0", max_steps_in_episode=5)
    venv = jaxgrid.VecEnv(env, num_envs, reset_capacity=2)
    seeds = jax.random.split(jax.random.key(0), num_seeds)  # typed keys
    _, state = jax.vmap(venv.reset, in_axes=(0, None))(seeds, params)
    keys = jax.vmap(lambda k: jax.random.split(k, num_steps))(jax.random.split(jax.random.key(1), num_seeds))
    actions = jax.random.randint(jax.random.PRNGKey(2), (num_seeds, num_steps, num_envs), 0, 4)

    def run(step):
        return jax.vmap(lambda s, k, a: rollout(step, s, k, a, params))(state, keys, actions)

    assert_bitwise(run(venv.step), run(reference_step(env, num_envs)))


def test_step__gymnax_env_runs_as_its_own_vmapped_step():
    env, params = gymnax.make("CartPole-v1")
    venv = jaxgrid.VecEnv(env, 8, reset_capacity=2)
    assert not venv.compacted  # float dynamics: only vmap(env.step) itself is bitwise itself
    _, state = venv.reset(jax.random.PRNGKey(0), params)
    keys, actions = random_inputs(env, params, 8, 50)
    assert_bitwise(
        rollout(venv.step, state, keys, actions, params),
        rollout(reference_step(env, 8), state, keys, actions, params),
    )


@pytest.mark.parametrize("typed", [False, True])
def test_env_keys__equal_the_split_they_stand_for(typed):
    key = jax.random.key(7) if typed else jax.random.PRNGKey(7)
    idx = jnp.array([5, 0, 99, 5, 42], jnp.int32)
    data = jax.random.key_data if typed else (lambda k: k)
    expected = jax.random.split(key, 100)[idx]
    np.testing.assert_array_equal(data(vec.env_keys(key, 100, idx)), data(expected))
    for which in (0, 1):
        np.testing.assert_array_equal(
            data(vec.child_keys(expected, which)), data(jax.vmap(jax.random.split)(expected)[:, which])
        )


def test_default_reset_capacity__compacts_procedural_envs_only():
    maze, _ = make("Maze-9x9-v0")
    grid, _ = make("GridWorld-4x4-v0")
    assert jaxgrid.VecEnv(maze, 4096).reset_capacity == vec.default_reset_capacity(maze, 4096) < 4096
    assert jaxgrid.VecEnv(maze, 4096).compacted
    assert not jaxgrid.VecEnv(grid, 4096).compacted  # a fixed layout's reset costs nothing
    assert jaxgrid.VecEnv(maze, 3, reset_capacity=10).reset_capacity == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_envs": 0}, "num_envs must be an int >= 1"),
        ({"num_envs": 2.0}, "num_envs must be an int >= 1"),
        ({"num_envs": True}, "num_envs must be an int >= 1"),
        ({"num_envs": 4, "reset_capacity": 0}, "reset_capacity must be an int >= 1"),
    ],
)
def test_init__bad_sizes_raise(kwargs, match):
    env, _ = make("GridWorld-4x4-v0")
    with pytest.raises(ValueError, match=match):
        jaxgrid.VecEnv(env, **kwargs)


_SHARD_MAP_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
import jaxgrid
assert len(jax.devices()) == 2, jax.devices()
num_envs, steps = 16, 30
env, params = jaxgrid.make("Maze-9x9-v0", max_steps_in_episode=6)
venv = jaxgrid.VecEnv(env, num_envs // 2, reset_capacity=2)  # per device
mesh = jax.make_mesh((2,), ("envs",), axis_types=(jax.sharding.AxisType.Auto,))
keys = jax.random.split(jax.random.PRNGKey(0), 2 * steps).reshape(steps, 2, 2)  # [T, device, key]
_, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), num_envs), params)
actions = jax.random.randint(jax.random.PRNGKey(2), (steps, num_envs), 0, 4)

def run(step_shard):
    def body(state, xs):
        key, action = xs
        obs, state, reward, term, trunc, info = step_shard(key, state, action)
        return state, (obs, reward, term, trunc, info["final_observation"])
    return jax.jit(lambda s: jax.lax.scan(body, s, (keys, actions)))(state)

sharded = jax.shard_map(
    lambda k, s, a: venv.step(k[0], s, a, params), mesh=mesh,
    in_specs=(P("envs"), P("envs"), P("envs")), out_specs=P("envs"),
)
def reference(k, s, a):
    halves = []
    for d in range(2):
        part = jax.tree.map(lambda x: x[d * 8:(d + 1) * 8], (s, a))
        halves.append(jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k[d], 8), *part, params))
    return jax.tree.map(lambda *x: jnp.concatenate(x), *halves)
got, expected = run(sharded), run(reference)
for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
assert int((expected[1][2] | expected[1][3]).sum()) > num_envs
print("SHARD_MAP_OK")
"""


@pytest.mark.timeout(240)
def test_step__under_shard_map_on_two_devices():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = run_python(
        _SHARD_MAP_SCRIPT, env={"JAX_NUM_CPU_DEVICES": "2", "XLA_FLAGS": "", "PYTHONPATH": repo}, timeout=200
    )
    assert "SHARD_MAP_OK" in out, out


@pytest.mark.parametrize("view_size", [1, 3, 7, 9])
@pytest.mark.parametrize("env_id", ["EmptyRoom-v0", "FourRooms-v0", "CliffWalking-v1", "FrozenLake8x8-v1"])
def test_view_table__equals_the_window_slice_from_every_cell(env_id, view_size):
    # Fixed layouts read the view from a per-cell table; procedural ones slice a window. Same values.
    from jaxgrid import observations

    env, params = make(env_id, obs="view", view_size=view_size)
    cells = jnp.arange(env.height * env.width)
    args = (params.cell_kind, env.height, env.width, view_size)
    window = jax.vmap(lambda p: observations.encode("view", p, *args))(cells)
    table = jax.vmap(lambda p: observations.encode("view", p, *args, shared_layout=True))(cells)
    assert window.shape == (cells.shape[0], view_size, view_size, 4)
    assert_bitwise(table, window)
    assert view_size == 1 or float(window[..., 0].sum()) > 0  # walls (or the edge) in view somewhere


def test_place_start_and_goal__uniform_over_distinct_floor_cells():
    # Results version 2 draws goal and start as ranks among the floor cells (one threefry draw):
    # each of the F floor cells is the goal with probability 1/F, and the start is uniform on the rest.
    from scipy import stats

    from jaxgrid import generators
    from jaxgrid.types import FLOOR, GOAL

    _, params = jaxgrid.make("FourRooms-v0")
    base = params.cell_kind
    floor = np.flatnonzero(np.asarray(base) != 1)  # 1 = WALL; the template's goal cell counts as floor
    keys = jax.random.split(jax.random.PRNGKey(0), 52_000)
    kinds, start = jax.jit(jax.vmap(lambda k: generators.place_start_and_goal(k, base)))(keys)
    kinds, start = np.asarray(kinds), np.asarray(start)
    goal = (kinds == GOAL).argmax(axis=1)
    assert np.all((kinds == GOAL).sum(axis=1) == 1) and np.all(goal != start)
    assert np.all(kinds[np.arange(len(goal)), start] == FLOOR)
    for cells in (goal, start):
        counts = np.bincount(cells, minlength=base.shape[0])[floor]
        assert counts.min() > 0 and counts.sum() == len(keys)
        assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("env_id", ["Maze-9x9-v0", "FrozenLake-v1", "FourRoomsRandom-v0"])
def test_transition_each_and_reset_where__bitwise_the_vmapped_pieces(env_id):
    """The two public pieces of ``step``: ``transition_each`` is ``vmap(env.step_without_reset)``
    and ``reset_where`` is ``where(mask, vmap(env.reset_env), ...)``, also when more envs are
    masked than the reset capacity (extra rounds)."""
    num_envs = 16
    env, params = make(env_id, obs="view" if env_id != "FrozenLake-v1" else "index")
    venv = jaxgrid.VecEnv(env, num_envs, reset_capacity=3)
    keys = jax.random.split(jax.random.PRNGKey(4), num_envs)
    obs, state = venv.reset_each(keys, params)
    actions = jnp.arange(num_envs, dtype=jnp.int32) % 4
    got = jax.jit(venv.transition_each)(keys, state, actions, params)
    want = jax.vmap(env.step_without_reset, in_axes=(0, 0, 0, None))(keys, state, actions, params)
    assert_bitwise(got, want)
    reset_keys = jax.random.split(jax.random.PRNGKey(5), num_envs)
    obs_re, state_re = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, params)
    for mask in (np.arange(num_envs) % 5 == 1, np.arange(num_envs) < 11, np.zeros(num_envs, bool)):
        mask = jnp.asarray(mask)
        pick = lambda r, s: jnp.where(mask.reshape(mask.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
        want = (jax.tree.map(pick, obs_re, got[0]), jax.tree.map(pick, state_re, got[1]))
        assert_bitwise(jax.jit(venv.reset_where)(reset_keys, mask, got[0], got[1], params), want)


def test_transition_each__refuses_an_env_without_the_split():
    env, params = gymnax.make("CartPole-v1")
    venv = jaxgrid.VecEnv(env, 4)
    with pytest.raises(ValueError, match="needs a jaxgrid grid env"):
        venv.transition_each(jax.random.split(jax.random.PRNGKey(0), 4), None, jnp.zeros(4, jnp.int32), params)


def test_vec_env__equal_configurations_compare_and_hash_equal():
    env, _ = jaxgrid.make("Maze-9x9-v0")
    assert jaxgrid.VecEnv(env, 8) == jaxgrid.VecEnv(jaxgrid.make("Maze-9x9-v0")[0], 8)
    assert hash(jaxgrid.VecEnv(env, 8)) == hash(jaxgrid.VecEnv(env, 8))
    assert jaxgrid.VecEnv(env, 8) != jaxgrid.VecEnv(env, 8, reset_capacity=2) != jaxgrid.VecEnv(env, 9)


@pytest.mark.parametrize("view_size", [1, 3, 7])
def test_image_encoders__equal_a_numpy_reference_on_random_layouts(view_size):
    """The int8-code encoders (``kind_codes`` then ``code_channels``) against the definition in
    NumPy: channel c is ``kind == (WALL, GOAL, LAVA)[c]`` (the agent's cell, or the view's centre, for
    c = 3); beyond the edge reads as a wall; other kinds (the cue) set no channel."""
    from jaxgrid import observations
    from jaxgrid.types import CUE, GOAL, LAVA, WALL

    height, width = 5, 7
    rng = np.random.default_rng(0)
    kinds = rng.choice(np.array([0, WALL, GOAL, LAVA, CUE], np.int8), size=(40, height * width))
    pos = rng.integers(height * width, size=40).astype(np.int32)
    half = view_size // 2
    for i in range(40):
        k2 = kinds[i].reshape(height, width)
        planes = [k2 == WALL, k2 == GOAL, k2 == LAVA, np.arange(height * width).reshape(height, width) == pos[i]]
        want_grid = np.stack(planes, -1).astype(np.float32)
        got_grid = observations.encode("grid", jnp.int32(pos[i]), jnp.asarray(kinds[i]), height, width, view_size)
        np.testing.assert_array_equal(np.asarray(got_grid), want_grid)
        padded = np.pad(k2, half, constant_values=WALL)
        r, c = divmod(int(pos[i]), width)
        win = padded[r:r + view_size, c:c + view_size]
        centre = np.zeros_like(win, bool)
        centre[half, half] = True
        want_view = np.stack([win == WALL, win == GOAL, win == LAVA, centre], -1).astype(np.float32)
        for shared in (False, True):
            got = observations.encode("view", jnp.int32(pos[i]), jnp.asarray(kinds[i]), height, width, view_size,
                                      shared_layout=shared)
            assert got.dtype == jnp.float32
            np.testing.assert_array_equal(np.asarray(got), want_view)


def _slip_outcomes(env, params, keys) -> np.ndarray:
    """[...] int: 0 intended move, 1 turned clockwise, 2 turned counter-clockwise, per key."""
    slip, turn = jax.jit(jax.vmap(env.draw_slip, in_axes=(0, None)))(keys.reshape(-1, *keys.shape[-1:]), params)
    out = np.where(np.asarray(slip), np.where(np.asarray(turn) == 1, 1, 2), 0)
    return out.reshape(keys.shape[:-1])


@pytest.mark.parametrize("keys_from", ["vec_env", "hand_made"])
def test_draw_slip__one_third_each_and_independent_between_steps(keys_from):
    """Results version 3 hashes the slip from the step key's own words. Through VecEnv the keys are
    ``split(key_t, N)`` (key_t one per step); hand-made keys are ``PRNGKey(seed)`` = (0, seed) for
    consecutive seeds, the most structured input. Each of the three outcomes has probability 1/3
    (FrozenLake's slip_prob = 2/3, the side a fair bit): every count lies within 5 binomial standard
    deviations of n/3, and the pairs (outcome at step t, at step t+1) of one env are uniform over
    the 9 cells (chi-square, p > 1e-4), so successive slips are independent."""
    from scipy import stats

    env, params = jaxgrid.make("FrozenLake-v1")
    num_envs, num_steps = 512, 64
    if keys_from == "vec_env":
        step_keys = jax.random.split(jax.random.PRNGKey(7), num_steps)
        keys = jax.vmap(lambda k: vec.env_keys(k, num_envs))(step_keys)  # [T, N, 2]: env i's key at step t
    else:
        seeds = np.arange(num_steps * num_envs, dtype=np.uint32).reshape(num_envs, num_steps).T
        keys = jnp.stack([jnp.zeros_like(jnp.asarray(seeds)), jnp.asarray(seeds)], axis=-1)
    outcomes = _slip_outcomes(env, params, keys)  # [T, N]
    n = outcomes.size
    counts = np.bincount(outcomes.ravel(), minlength=3)
    sigma = np.sqrt(n * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - n / 3) < 5 * sigma), counts
    pairs = np.bincount((3 * outcomes[:-1] + outcomes[1:]).ravel(), minlength=9)
    assert stats.chisquare(pairs).pvalue > 1e-4, pairs


def test_draw_slip__probability_is_slip_prob_at_2_to_the_minus_23():
    """``P(slip) = ceil(slip_prob * 2**23) / 2**23``: with slip_prob 0.1, 200,000 VecEnv keys slip
    within 5 binomial standard deviations of 0.1; with 0 never, with 1 always; typed keys draw the
    same slips as their raw words."""
    env, params = jaxgrid.make("FrozenLake-v1", slip_prob=0.1)
    keys = vec.env_keys(jax.random.PRNGKey(3), 200_000)
    slips = jax.jit(jax.vmap(lambda k, p: env.draw_slip(k, p)[0], in_axes=(0, None)))
    n, rate = keys.shape[0], float(np.mean(np.asarray(slips(keys, params))))
    assert abs(rate - 0.1) < 5 * np.sqrt(0.1 * 0.9 / n)
    assert not np.any(np.asarray(slips(keys[:1000], params.replace(slip_prob=jnp.float32(0.0)))))
    assert np.all(np.asarray(slips(keys[:1000], params.replace(slip_prob=jnp.float32(1.0)))))
    typed = jax.random.wrap_key_data(keys[:1000])
    np.testing.assert_array_equal(np.asarray(slips(typed, params)), np.asarray(slips(keys[:1000], params)))


@pytest.mark.parametrize("obs,view_size", [("view", 7), ("view", 5), ("grid", 5)])
def test_random_goal_env__bitwise_the_procedural_env_with_its_generator(obs, view_size):
    """FourRoomsRandom-v0's ``RandomGoalGridWorld`` (goal cell in the state, ``view`` read from a
    table of the params' walls plus the goal bit) gives bitwise what ``ProceduralGridWorld`` with
    ``random_start_goal_generator`` gives (a window gather from each env's own layout), through
    VecEnv over a scan with many episode ends."""
    from jaxgrid.procedural import ProceduralGridWorld, RandomGoalGridWorld, random_start_goal_generator

    new, params = jaxgrid.make("FourRoomsRandom-v0", obs=obs, view_size=view_size)
    assert type(new) is RandomGoalGridWorld
    old = ProceduralGridWorld(new.layout, random_start_goal_generator, obs=obs, view_size=view_size,
                              param_defaults=new._param_defaults, env_id="FourRoomsRandom-v0")
    num_envs, num_steps = 64, 300
    keys, actions = random_inputs(new, params, num_envs, num_steps)
    outs = []
    for env in (new, old):
        venv = jaxgrid.VecEnv(env, num_envs)
        obs0, state = venv.reset(jax.random.PRNGKey(5), params)
        outs.append((obs0, rollout(venv.step, state, keys, actions, params)))
    (obs_new, (state_new, ys_new)), (obs_old, (state_old, ys_old)) = outs
    assert_bitwise((obs_new, ys_new), (obs_old, ys_old))  # obs, reward, terminated, truncated, final obs
    for field in ("time", "pos", "cell_kind", "start_cell"):
        assert_bitwise(getattr(state_new, field), getattr(state_old, field))
    goal = np.asarray(state_new.cell_kind).argmax(axis=1)  # GOAL (2) is the largest kind here
    np.testing.assert_array_equal(np.asarray(state_new.goal_cell), goal)
    assert int(ys_new[2].sum()) + int(ys_new[3].sum()) > 100  # many resets exercised


def test_draw_slip__the_all_zero_key_is_not_special():
    """``PRNGKey(0)`` = (0, 0), the first key a user types: with slip_prob 0.1 its step must not
    slip (the word it hashes to is not 0, which a finaliser of 0 would give: every step a slip, to
    the same side), and the small hand-made keys ``PRNGKey(0..15)`` do not all draw the same."""
    env, params = jaxgrid.make("FrozenLake-v1", slip_prob=0.1)
    assert int(generators.key_word_bits(jax.random.PRNGKey(0))) != 0
    assert int(generators.key_word_bits(jax.random.key(0))) == int(generators.key_word_bits(jax.random.PRNGKey(0)))
    slip, _ = env.draw_slip(jax.random.PRNGKey(0), params)
    assert not bool(slip)
    words = {int(generators.key_word_bits(jax.random.PRNGKey(s))) for s in range(16)}
    assert len(words) == 16
