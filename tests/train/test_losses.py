"""The PPO loss against hand-computed values on a tiny batch."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from train import networks
from train.losses import explained_variance, normalize_advantages, ppo_loss_terms

# A batch of 2: ratios r = exp(new - old) = (e^0.5 ≈ 1.6487, e^-0.5 ≈ 0.6065), ε = 0.2.
NEW_LOGP = jnp.array([0.0, -1.0])
OLD_LOGP = jnp.array([-0.5, -0.5])
ADV = jnp.array([1.0, -1.0])
NEW_V = jnp.array([1.0, 0.0])
OLD_V = jnp.array([0.5, 0.5])
TARGETS = jnp.array([2.0, 0.0])
ENTROPY = jnp.array([0.5, 0.7])


def test_ppo_loss__golden_values_without_normalisation():
    total, info = ppo_loss_terms(
        NEW_LOGP, OLD_LOGP, ADV, NEW_V, OLD_V, TARGETS, ENTROPY,
        clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, normalize_advantage=False,
    )
    r0, r1 = math.exp(0.5), math.exp(-0.5)
    # sample 0: A = +1, min(1.6487·1, clip(1.6487)=1.2·1) = 1.2
    # sample 1: A = -1, min(0.6065·-1 = -0.6065, clip=0.8·-1 = -0.8) = -0.8
    # policy_loss = -mean(1.2, -0.8) = -0.2
    assert float(info.policy_loss) == pytest.approx(-0.2, abs=1e-6)
    # value_loss = 0.5·mean((1-2)², (0-0)²) = 0.5·0.5 = 0.25
    assert float(info.value_loss) == pytest.approx(0.25, abs=1e-6)
    # entropy = mean(0.5, 0.7) = 0.6; total = -0.2 + 0.5·0.25 - 0.01·0.6 = -0.081
    assert float(info.entropy) == pytest.approx(0.6, abs=1e-6)
    assert float(total) == pytest.approx(-0.081, abs=1e-6)
    # approx_kl = mean((r - 1) - log r) = mean(0.6487 - 0.5, -0.3935 + 0.5)
    assert float(info.approx_kl) == pytest.approx(((r0 - 1 - 0.5) + (r1 - 1 + 0.5)) / 2, abs=1e-6)
    # both |r - 1| > 0.2 -> clip fraction 1
    assert float(info.clip_fraction) == pytest.approx(1.0)


def test_ppo_loss__value_clipping_takes_the_worse_error():
    _, info = ppo_loss_terms(
        NEW_LOGP, OLD_LOGP, ADV, NEW_V, OLD_V, TARGETS, ENTROPY,
        clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, clip_value_loss=True, normalize_advantage=False,
    )
    # sample 0: V_clipped = 0.5 + clip(0.5, ±0.2) = 0.7; max((1-2)², (0.7-2)² = 1.69) = 1.69
    # sample 1: V_clipped = 0.5 + clip(-0.5) = 0.3;       max(0, 0.09) = 0.09
    # value_loss = 0.5·mean(1.69, 0.09) = 0.445
    assert float(info.value_loss) == pytest.approx(0.445, abs=1e-6)


def test_ppo_loss__normalised_advantages():
    # ADV = (1, -1) normalises to (1, -1)/(1 + 1e-8): same as without normalisation here.
    np.testing.assert_allclose(normalize_advantages(ADV), [1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(normalize_advantages(jnp.array([3.0, 5.0])), [-1.0, 1.0], atol=1e-6)


def test_categorical_log_prob_and_entropy():
    logits = jnp.log(jnp.array([[0.25, 0.75]]))
    logp = networks.log_prob(logits, None, jnp.array([1]), discrete=True)
    assert float(logp[0]) == pytest.approx(math.log(0.75), abs=1e-6)
    ent = networks.entropy(logits, None, discrete=True)
    assert float(ent[0]) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-6)


def test_gaussian_log_prob_and_entropy():
    mean, log_std = jnp.array([[0.0, 1.0]]), jnp.array([0.0, math.log(2.0)])
    action = jnp.array([[1.0, 1.0]])
    # N(1; 0, 1): -0.5 - 0.5 log 2π; N(1; 1, 2): -log 2 - 0.5 log 2π
    expected = (-0.5 - 0.5 * math.log(2 * math.pi)) + (-math.log(2.0) - 0.5 * math.log(2 * math.pi))
    assert float(networks.log_prob(mean, log_std, action, False)[0]) == pytest.approx(expected, abs=1e-5)
    # entropy = Σ (log σ + 0.5 (1 + log 2π))
    ent = math.log(2.0) + 2 * 0.5 * (1 + math.log(2 * math.pi))
    assert float(networks.entropy(mean, log_std, False)[0]) == pytest.approx(ent, abs=1e-5)


def test_explained_variance():
    targets = jnp.array([1.0, 2.0, 3.0])
    assert float(explained_variance(targets, targets)) == pytest.approx(1.0)
    assert float(explained_variance(jnp.zeros(3), targets)) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(float(explained_variance(jnp.zeros(3), jnp.ones(3))))
