"""compute_gae: against a plain-Python loop, and hand-computed golden cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train.gae import compute_gae


def gae_reference(rewards, values, next_values, terminated, done, gamma, lam):
    """Plain-Python GAE, written from the formulas, one env at a time."""
    T, N = rewards.shape
    adv = np.zeros((T, N), np.float64)
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            delta = rewards[t, n] + gamma * (1 - terminated[t, n]) * next_values[t, n] - values[t, n]
            running = delta + gamma * lam * (1 - done[t, n]) * running
            adv[t, n] = running
    return adv, adv + values


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    T=st.integers(1, 12),
    N=st.integers(1, 4),
    gamma=st.floats(0.5, 1.0),
    lam=st.floats(0.0, 1.0),
)
def test_compute_gae__matches_plain_loop(seed, T, N, gamma, lam):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    next_values = rng.normal(size=(T, N)).astype(np.float32)
    terminated = rng.random((T, N)) < 0.2
    truncated = rng.random((T, N)) < 0.2
    done = terminated | truncated
    adv, targets = compute_gae(rewards, values, next_values, terminated, done, gamma, lam)
    ref_adv, ref_targets = gae_reference(
        rewards, values, next_values, terminated.astype(float), done.astype(float), gamma, lam
    )
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(targets, ref_targets, rtol=1e-4, atol=1e-4)


def _col(x):
    return np.asarray(x, np.float32)[:, None]  # [T] -> [T, 1]


def test_compute_gae__terminated_last_step_does_not_bootstrap():
    # T = 2, γ = 0.5, λ = 1. Step 1 terminates, so V(s'_1) = 10 is ignored.
    # δ_1 = r_1 + 0 - V_1 = 1 - 0.5 = 0.5                  A_1 = 0.5
    # δ_0 = r_0 + γ·V(s'_0) - V_0 = 0 + 0.5·0.5 - 1 = -0.75 A_0 = -0.75 + 0.5·1·0.5 = -0.5
    adv, targets = compute_gae(
        _col([0.0, 1.0]), _col([1.0, 0.5]), _col([0.5, 10.0]),
        _col([0, 1]), _col([0, 1]), 0.5, 1.0,
    )
    np.testing.assert_allclose(adv[:, 0], [-0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(targets[:, 0], [0.5, 1.0], atol=1e-6)  # A + V


def test_compute_gae__truncated_last_step_bootstraps():
    # Same as above but step 1 is truncated (done, not terminated): bootstrap from V(s'_1) = 10.
    # δ_1 = 1 + 0.5·10 - 0.5 = 5.5                           A_1 = 5.5
    # δ_0 = 0 + 0.5·0.5 - 1 = -0.75                          A_0 = -0.75 + 0.5·1·5.5 = 2.0
    adv, targets = compute_gae(
        _col([0.0, 1.0]), _col([1.0, 0.5]), _col([0.5, 10.0]),
        _col([0, 0]), _col([0, 1]), 0.5, 1.0,
    )
    np.testing.assert_allclose(adv[:, 0], [2.0, 5.5], atol=1e-6)
    np.testing.assert_allclose(targets[:, 0], [3.0, 6.0], atol=1e-6)


def test_compute_gae__episode_boundary_cuts_the_trace():
    # T = 3, γ = 1, λ = 0.5; an episode ends (truncated) at t = 1 and a new one runs at t = 2.
    # δ_2 = 2 + 1·4 - 1 = 5                      A_2 = 5
    # δ_1 = 0 + 1·3 - 2 = 1  (bootstraps s'_1)   A_1 = 1 + (1 - done_1 = 0)·... = 1  (trace cut)
    # δ_0 = 1 + 1·2 - 0 = 3                      A_0 = 3 + 1·0.5·1 = 3.5
    adv, _ = compute_gae(
        _col([1.0, 0.0, 2.0]), _col([0.0, 2.0, 1.0]), _col([2.0, 3.0, 4.0]),
        _col([0, 0, 0]), _col([0, 1, 0]), 1.0, 0.5,
    )
    np.testing.assert_allclose(adv[:, 0], [3.5, 1.0, 5.0], atol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_compute_gae__lambda_extremes(lam):
    # λ = 0: A = δ (one-step TD error); λ = 1 without dones: A = discounted return - V.
    rewards, values, nxt = _col([1.0, 1.0]), _col([0.0, 0.0]), _col([0.0, 0.0])
    adv, _ = compute_gae(rewards, values, nxt, _col([0, 0]), _col([0, 0]), 0.9, lam)
    expected = [1.0, 1.0] if lam == 0.0 else [1.0 + 0.9 * 1.0, 1.0]
    np.testing.assert_allclose(adv[:, 0], expected, atol=1e-6)
