"""The Gymnasium toy-text ports agree with the installed Gymnasium envs.

Deterministic versions: every (state, action) transition is compared with Gymnasium's, and whole
episodes run in lock-step (time limits, resets, start states included). Slippery versions: the
next-state frequencies of every (state, action) are compared with Gymnasium's transition
probabilities by a chi-square test at p < 1e-6 per pair, and the same test is shown to reject a
wrong slip probability, so it cannot pass by chance or by lack of power.
"""

from __future__ import annotations

import gymnasium
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxgrid
from jaxgrid.types import GridState

pytestmark = pytest.mark.timeout(120)

# (jaxgrid id, gymnasium id, make kwargs shared by both, expected time limit or None)
DETERMINISTIC = [
    ("FrozenLake-v1", "FrozenLake-v1", {"is_slippery": False}, 100),
    ("FrozenLake8x8-v1", "FrozenLake8x8-v1", {"is_slippery": False}, 200),
    ("CliffWalking-v1", "CliffWalking-v1", {}, None),
    # Gymnasium's FrozenLake keywords: a random map and a reward schedule (goal, hole, frozen).
    ("FrozenLake-v1", "FrozenLake-v1",
     {"is_slippery": False, "desc": generate_random_map(size=6, seed=3), "reward_schedule": (2.0, -1.0, -0.5)}, 100),
]
SLIPPERY = [
    ("FrozenLake-v1", "FrozenLake-v1", {}),
    ("FrozenLake8x8-v1", "FrozenLake8x8-v1", {"is_slippery": True}),
    ("CliffWalkingSlippery-v1", "CliffWalkingSlippery-v1", {}),
    ("CliffWalking-v1", "CliffWalking-v1", {"is_slippery": True}),
    ("FrozenLake-v1", "FrozenLake-v1", {"map_name": "8x8", "success_rate": 0.5}),
]


def _terminal_cells(gym_env) -> set[int]:
    """Cells Gymnasium's env can never step from (holes, goal, cliff)."""
    u = gym_env.unwrapped
    if hasattr(u, "desc"):
        return {i for i, ch in enumerate(u.desc.reshape(-1)) if ch in (b"H", b"G")}
    return {i for i in range(u.nS) if u._cliff.reshape(-1)[i]} | {u.nS - 1}


def _all_transitions(env, params, cells, key, samples: int):
    """Steps every (cell, action) ``samples`` times in one jit(vmap): next obs, reward, terminated."""
    pairs = np.array([(s, a) for s in cells for a in range(env.num_actions)], np.int32)

    def one(key, s, a):
        state = GridState(time=jnp.int32(0), pos=s)
        obs, _, reward, terminated, _ = env.step_env(key, state, a, params)
        return obs, reward, terminated

    keys = jax.random.split(key, len(pairs) * samples).reshape(len(pairs), samples, -1)
    batched = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None, None)), in_axes=(0, 0, 0)))
    obs, reward, terminated = batched(keys, jnp.asarray(pairs[:, 0]), jnp.asarray(pairs[:, 1]))
    return pairs, np.asarray(obs), np.asarray(reward), np.asarray(terminated)


DET_IDS = ["FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "FrozenLake-v1-desc-rewards"]


@pytest.mark.parametrize("jid, gid, kwargs, limit", DETERMINISTIC, ids=DET_IDS)
def test_deterministic__every_transition_matches_gymnasium(jid, gid, kwargs, limit):
    env, params = jaxgrid.make(jid, **kwargs)
    gym_env = gymnasium.make(gid, **kwargs)
    gym_env.reset(seed=0)
    assert env.num_actions == gym_env.action_space.n
    assert env.observation_space(params).n == gym_env.observation_space.n
    assert gym_env.spec.max_episode_steps == limit
    cells = [s for s in range(env.height * env.width) if s not in _terminal_cells(gym_env)]
    pairs, obs, reward, terminated = _all_transitions(env, params, cells, jax.random.PRNGKey(0), 1)
    for (s, a), o, r, t in zip(pairs, obs[:, 0], reward[:, 0], terminated[:, 0]):
        gym_env.unwrapped.s = int(s)
        g_obs, g_r, g_t, g_tr, _ = gym_env.unwrapped.step(int(a))
        assert (int(o), float(r), bool(t)) == (g_obs, float(g_r), g_t), f"state {s}, action {a}"
        assert not g_tr
    assert obs.dtype == np.int32 and reward.dtype == np.float32 and terminated.dtype == bool


@pytest.mark.parametrize("jid, gid, kwargs, limit", DETERMINISTIC, ids=DET_IDS)
def test_deterministic__episodes_in_lockstep_with_gymnasium(jid, gid, kwargs, limit):
    """Random actions through whole episodes: resets, terminations and time-limit truncations agree."""
    env, params = jaxgrid.make(jid, **kwargs)
    gym_env = gymnasium.make(gid, **kwargs)
    step = jax.jit(env.step)
    rng = np.random.default_rng(0)
    key = jax.random.PRNGKey(1)
    obs, state = env.reset(key, params)
    g_obs, _ = gym_env.reset(seed=0)
    assert int(obs) == g_obs
    episodes = truncations = terminations = episode_steps = 0
    for t in range(4000):
        # Every third episode of a time-limited env only pushes into the top-left corner (left, up),
        # so it reaches the time limit instead of a hole.
        stay = limit is not None and episodes % 3 == 2
        # CliffWalking (no time limit): a walk biased to the right so that episodes end often.
        probs = [0.2, 0.45, 0.2, 0.15] if limit is None else None
        action = int(rng.choice([0, 3])) if stay else int(rng.choice(env.num_actions, p=probs))
        obs, state, reward, terminated, truncated, info = step(jax.random.fold_in(key, t), state, action, params)
        g_obs, g_r, g_term, g_trunc, _ = gym_env.step(action)
        # Gymnasium's TimeLimit sets truncated on the last step even if it also terminates; jaxgrid
        # reports that step as terminated only (no bootstrap from a terminal state).
        expected = (g_obs, float(g_r), g_term, g_trunc and not g_term)
        got = (int(info["final_observation"]), float(reward), bool(terminated), bool(truncated))
        assert got == expected, f"step {t}"
        episode_steps += 1
        if g_term or g_trunc:
            episodes += 1
            terminations += g_term
            truncations += g_trunc and not g_term
            g_obs, _ = gym_env.reset()
            assert int(obs) == g_obs and int(state.time) == 0
            episode_steps = 0
        else:
            assert int(obs) == g_obs and int(state.time) == episode_steps
    assert episodes >= 5 and terminations >= 1
    if limit is not None:
        assert truncations >= 1
    assert int(params.max_steps_in_episode) == (limit if limit is not None else 2**31 - 1)


def _gym_outcome_probs(gym_env, s: int, a: int) -> dict[tuple[int, float, bool], float]:
    """(next state, reward, terminated) -> probability, from Gymnasium's transition table P.

    Outcomes are keyed by all three: in CliffWalking the start cell is reached both by an ordinary
    move (-1) and by falling off the cliff (-100).
    """
    out: dict[tuple[int, float, bool], float] = {}
    for p, s2, r, t in gym_env.unwrapped.P[s][a]:
        key = (int(s2), float(r), bool(t))
        out[key] = out.get(key, 0.0) + p
    return out


def _chi_square_pvalues(env, params, gym_env, key, samples: int) -> list[float]:
    cells = [s for s in range(env.height * env.width) if s not in _terminal_cells(gym_env)]
    pairs, obs, reward, terminated = _all_transitions(env, params, cells, key, samples)
    pvalues = []
    for i, (s, a) in enumerate(pairs):
        probs = _gym_outcome_probs(gym_env, int(s), int(a))
        support = sorted(probs)
        sampled = list(zip(obs[i].tolist(), reward[i].tolist(), terminated[i].tolist()))
        # Every sampled outcome is one Gymnasium can produce.
        assert set(sampled) <= set(support), f"state {s}, action {a}: {set(sampled) - set(support)}"
        if len(support) == 1:
            continue
        counts = np.array([sum(o == out for o in sampled) for out in support])
        expected = np.array([probs[out] for out in support]) * samples
        pvalues.append(stats.chisquare(counts, expected).pvalue)
    return pvalues


@pytest.mark.parametrize("jid, gid, kwargs", SLIPPERY, ids=[f"{s[0]}-{i}" for i, s in enumerate(SLIPPERY)])
def test_slippery__transition_frequencies_match_gymnasium(jid, gid, kwargs):
    env, params = jaxgrid.make(jid, **kwargs)
    gym_env = gymnasium.make(gid, **kwargs)
    assert env.slippery and np.isclose(float(params.slip_prob), 1 - kwargs.get("success_rate", 1 / 3))
    pvalues = _chi_square_pvalues(env, params, gym_env, jax.random.PRNGKey(0), samples=3000)
    assert len(pvalues) >= 20
    # Each pair passes at p >= 1e-6 (a false alarm over <= 200 pairs has probability < 2e-4), and the
    # p-values look uniform rather than all tiny or all 1.
    assert min(pvalues) > 1e-6, min(pvalues)
    assert 0.2 < np.mean(pvalues) < 0.8


def test_slippery__the_frequency_test_rejects_a_wrong_slip_probability():
    """Power check: with slip_prob 0.5 instead of 2/3 the same test fails decisively."""
    env, params = jaxgrid.make("FrozenLake-v1", slip_prob=0.5)
    gym_env = gymnasium.make("FrozenLake-v1")
    pvalues = _chi_square_pvalues(env, params, gym_env, jax.random.PRNGKey(0), samples=3000)
    assert min(pvalues) < 1e-12


def test_slippery__start_state_and_time_limit_like_gymnasium():
    env, params = jaxgrid.make("FrozenLake8x8-v1")
    assert int(params.max_steps_in_episode) == gymnasium.spec("FrozenLake8x8-v1").max_episode_steps
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 64), params)
    assert np.all(np.asarray(obs) == 0)


def test_frozen_lake__gymnasium_keywords_are_validated():
    with pytest.raises(ValueError, match="is_slippery"):
        jaxgrid.make("FrozenLake-v1", is_slippery="yes")
    with pytest.raises(ValueError, match="unknown FrozenLake map_name '6x6'"):
        jaxgrid.make("FrozenLake-v1", map_name="6x6")
    with pytest.raises(ValueError, match="unknown FrozenLake character 'X' at row 1, column 2"):
        jaxgrid.make("FrozenLake-v1", desc=["SFF", "FFX", "FFG"])
    with pytest.raises(ValueError, match=r"success_rate must be in \[0, 1\]"):
        jaxgrid.make("FrozenLake-v1", success_rate=1.5)
    with pytest.raises(ValueError, match="no goal is reachable from the start at row 0, column 0"):
        jaxgrid.make("FrozenLake-v1", desc=["SH", "HG"])
    env, params = jaxgrid.make("FrozenLake-v1", map_name="8x8", is_slippery=False)
    assert (env.height, env.width) == (8, 8) and not env.slippery


def test_cliff_walking__cliff_returns_to_start_with_minus_100():
    env, params = jaxgrid.make("CliffWalking-v1")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert int(obs) == 36
    obs, state, reward, terminated, truncated, _ = env.step(jax.random.PRNGKey(1), state, 1, params)
    assert (int(obs), float(reward), bool(terminated), bool(truncated)) == (36, -100.0, False, False)
    assert int(state.time) == 1  # the episode goes on
