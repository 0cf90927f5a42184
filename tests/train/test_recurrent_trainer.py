"""The trainer's recurrent policy (``PPOConfig.rnn_hidden_size > 0``, ``train.recurrent``):
``rnn_hidden_size=0`` is bitwise the feedforward trainer recorded before the recurrent policy was
wired in; config validation; the carried hidden state is reset at episode starts (an episode's
training does not depend on the previous episode's memory); chunked ``run_updates`` equals one
call bitwise; checkpoint/resume in a run directory equals an uninterrupted run; the CLI flag
trains, and its evaluation (after training and ``jaxgrid-train eval``, GIF included) covers the
recurrent policy; env-parallel on two host devices agrees with one device."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import run_python
from train import PPOConfig, train
from train.placement import rng_config, seed_keys
from train.ppo import make_train
from train.types import make_hparams

REPO = Path(__file__).resolve().parents[2]

# TMaze-v0 (length 3, 3x3 view) with episodes cut at 8 steps, so several end inside a rollout.
TINY = PPOConfig(
    env_id="TMaze-v0", env_kwargs={"length": 3, "max_steps_in_episode": 8}, seeds=(0, 1),
    num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 4, hidden_sizes=(16,),
    num_eval_envs=4, rnn_hidden_size=8,
)

# The feedforward configs recorded on main before the recurrent policy existed (commit 0a70b1d):
# ``tests/train/data/feedforward_reference.json`` holds a SHA-256 digest (dtype, shape, bytes)
# of every metric curve and every final runner-state leaf (params, Adam state, envs, key). The
# greedy evaluation returns are left out (their episode count is another item's to change).
# Recorded on this CPU backend (jax 0.10.2); another backend or XLA version may round differently.
FEEDFORWARD = {
    "gridworld": PPOConfig(seeds=(0, 1), total_timesteps=16 * 32 * 4),
    "tmaze": PPOConfig(env_id="TMaze-v0", env_kwargs={"length": 3}, seeds=(0, 1), num_envs=8,
                       num_steps=16, total_timesteps=8 * 16 * 3, hidden_sizes=(16,),
                       encoder="cnn"),  # recorded with the CNN, the image encoder then
}


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(f"{x.dtype}{x.shape}".encode() + x.tobytes()).hexdigest()[:16]


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def assert_same_training(a, b) -> None:
    assert set(a.metrics) == set(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)
    for x, y in zip(_leaves(a.state), _leaves(b.state), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference():
    return train(TINY)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(FEEDFORWARD))
def test_rnn_hidden_size_0__bitwise_the_feedforward_trainer_recorded_before(name):
    config = FEEDFORWARD[name]
    assert config.rnn_hidden_size == 0
    expected = json.loads((REPO / "tests/train/data/feedforward_reference.json").read_text())[name]
    result = train(config.replace(rnn_hidden_size=0))
    got = {f"metrics/{k}": _digest(np.asarray(v)) for k, v in result.metrics.items()}
    for path, leaf in jax.tree_util.tree_flatten_with_path(result.state)[0]:
        got["state" + jax.tree_util.keystr(path)] = _digest(np.asarray(leaf))
    assert got.keys() == expected.keys()
    differ = [k for k in got if got[k] != expected[k]]
    assert not differ, f"not bitwise the recorded feedforward run: {differ}"


def test_config__rnn_hidden_size_is_validated_and_static():
    with pytest.raises(ValueError, match=r"rnn_hidden_size=-1 is invalid: must be an int >= 0"):
        PPOConfig(rnn_hidden_size=-1)
    for bad in (True, 2.0, "8"):
        with pytest.raises(ValueError, match="rnn_hidden_size"):
            PPOConfig(rnn_hidden_size=bad)
    with pytest.raises(ValueError, match=r"num_minibatches must divide num_envs = 6"):
        PPOConfig(num_envs=6, num_minibatches=4, rnn_hidden_size=8)
    PPOConfig(num_envs=6, num_minibatches=4, rnn_hidden_size=0)  # transitions: 6 * 32 / 4
    with pytest.raises(ValueError, match=r"obs_table='on' is invalid: .*'auto', 'off'"):
        PPOConfig(obs_table="on", rnn_hidden_size=8)
    with pytest.raises(ValueError, match="cannot be swept"):
        PPOConfig(sweep={"rnn_hidden_size": (8, 16)})


def test_config__bptt_length_is_validated():
    with pytest.raises(ValueError, match=r"bptt_length=5 is invalid: must divide num_steps = 16"):
        TINY.replace(bptt_length=5)
    for bad in (0, -4, True, 4.0, "4"):
        with pytest.raises(ValueError, match=r"bptt_length=.* is invalid: must be an int >= 1"):
            TINY.replace(bptt_length=bad)
    with pytest.raises(ValueError, match=r"bptt_length=4 is invalid: truncated BPTT is for the recurrent"):
        PPOConfig(bptt_length=4)
    # Sequences, not envs, are shuffled into minibatches: 16 / 4 * 6 = 24 sequences split 8 ways,
    # though 8 does not divide num_envs = 6.
    config = TINY.replace(num_envs=6, bptt_length=4, num_minibatches=8)
    assert (config.sequence_length, config.num_sequences) == (4, 24)
    with pytest.raises(ValueError, match=r"num_minibatches must divide their count .* = 24"):
        TINY.replace(num_envs=6, bptt_length=4, num_minibatches=16)
    assert (TINY.sequence_length, TINY.num_sequences) == (16, 8)
    with pytest.raises(ValueError, match="cannot be swept"):
        PPOConfig(sweep={"bptt_length": (4, 8)})


@pytest.mark.timeout(300)
def test_bptt_length__num_steps_is_bitwise_whole_rollouts_and_shorter_sequences_train(reference):
    """``bptt_length=num_steps`` is the whole-rollout BPTT (``None``) bitwise; shorter sequences
    give another (finite) training, chunked into several calls bitwise as one."""
    assert_same_training(train(TINY.replace(bptt_length=TINY.num_steps)), reference)
    whole, m_whole = _assert_chunked_equals_whole(TINY.replace(bptt_length=4, num_minibatches=4))
    loss = np.asarray(m_whole["value_loss"])
    assert np.isfinite(loss).all()
    assert not np.array_equal(loss[0], reference.metrics["value_loss"])


@pytest.mark.timeout(300)
def test_bptt_length__each_sequence_reruns_from_the_hidden_state_stored_at_its_start():
    """Truncated BPTT's wiring in the trainer: with one epoch of one minibatch and a learning rate
    of 1e-12, the loss re-runs every 4-step sequence (episodes of up to 8 steps cross the sequence
    boundaries) at the rollout's own parameters, so the re-run reproduces the rollout's
    log-probabilities exactly: approx KL and clip fraction 0. A sequence started from any other
    hidden state (e.g. zeros, or its chunk's first state) gives a KL > 0 (1.5e-7 with zeros)."""
    config = TINY.replace(bptt_length=4, num_minibatches=1, update_epochs=1, learning_rate=1e-12,
                          total_timesteps=8 * 16 * 3)
    result = train(config)
    assert np.all(np.asarray(result.metrics["approx_kl"]) == 0.0), result.metrics["approx_kl"]
    assert np.all(np.asarray(result.metrics["clip_fraction"]) == 0.0)


def _init_and_update(config: PPOConfig):
    trainer = make_train(config)
    hp = make_hparams(config)
    with rng_config():
        state = jax.jit(trainer.init)(seed_keys(config.seeds))
        run = jax.jit(trainer.run_updates, static_argnums=2)
    return trainer, hp, state, run


def _assert_chunked_equals_whole(config: PPOConfig):
    """Runs ``config``'s updates as one call and as two chunks (1, then the rest); asserts the
    final states and the per-update metrics are bitwise equal; returns the one call's result."""
    trainer, hp, state, run = _init_and_update(config)
    with rng_config():
        whole, m_whole = run(state, hp, config.num_updates)
        half, m_a = run(state, hp, 1)
        half, m_b = run(half, hp, config.num_updates - 1)
    for x, y in zip(_leaves(whole), _leaves(half), strict=True):
        np.testing.assert_array_equal(x, y)
    for k in m_whole:
        np.testing.assert_array_equal(
            np.asarray(m_whole[k]), np.concatenate([m_a[k], m_b[k]], axis=-1), err_msg=k)
    return whole, m_whole


@pytest.mark.timeout(300)
def test_hidden_state__reset_at_episode_starts_in_the_trainer():
    """After an update, overwrite the carried hidden state with noise: where an env's next
    observation starts an episode, the next update is bitwise unchanged (its memory is reset, so
    the new episode cannot see the old one); where it does not, the update changes."""
    trainer, hp, state, run = _init_and_update(TINY)
    with rng_config():
        state, _ = run(state, hp, 1)
        starts = np.asarray(state.env.episode_start)  # [G, S, N]
        assert starts.any() and (~starts).any(), starts
        assert np.abs(np.asarray(state.env.hidden)).max() > 0  # a real, carried memory
        noise = jax.random.uniform(jax.random.PRNGKey(3), state.env.hidden.shape, minval=-1, maxval=1)
        at_starts = state.replace(env=state.env.replace(
            hidden=jnp.where(starts[..., None], noise, state.env.hidden)))
        elsewhere = state.replace(env=state.env.replace(
            hidden=jnp.where(starts[..., None], state.env.hidden, noise)))
        base, m_base = run(state, hp, 1)
        same, m_same = run(at_starts, hp, 1)
        other, m_other = run(elsewhere, hp, 1)
    for x, y in zip(_leaves((base.params, m_base)), _leaves((same.params, m_same)), strict=True):
        np.testing.assert_array_equal(x, y)
    moved = [not np.array_equal(x, y) for x, y in zip(_leaves(base.params), _leaves(other.params))]
    assert any(moved)


@pytest.mark.timeout(300)
def test_run_updates__chunked_equals_one_call_bitwise(reference):
    whole, m_whole = _assert_chunked_equals_whole(TINY)
    # ... and the one-program ``train`` is the same run.
    np.testing.assert_array_equal(np.asarray(m_whole["value_loss"])[0], reference.metrics["value_loss"])
    assert type(whole.env).__name__ == "RecurrentCarry" and whole.env.hidden.shape == (1, 2, 8, 8)


@pytest.mark.timeout(300)
def test_run_dir__resume_of_a_recurrent_run_equals_uninterrupted(tmp_path, reference):
    from train.runs import RunInterrupted, load_run_config, train_in_run_dir

    with pytest.raises(RunInterrupted) as info:
        train_in_run_dir(TINY, out=tmp_path, name="r", checkpoint_every=1, stop_after=2, num_devices=1)
    run_dir = info.value.run_dir
    assert load_run_config(run_dir).rnn_hidden_size == 8
    result, _ = train_in_run_dir(None, resume=run_dir, checkpoint_every=1, num_devices=1)
    assert_same_training(result, reference)


@pytest.mark.timeout(300)
def test_cli__rnn_hidden_size_flag_trains_a_gru_policy(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "train.cli", "--env-id", "TMaze-v0", "--rnn-hidden-size", "16", "--seeds", "0", "--total-timesteps", "512", "--num-envs", "8",
         "--num-steps", "16", "--num-minibatches", "2", "--out", str(tmp_path), "--name", "gru",
         "--no-cache"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr
    assert "IQM [95% CI]" in proc.stdout
    config = json.loads((tmp_path / "gru" / "config.json").read_text())
    assert config["rnn_hidden_size"] == 16
    from train.evaluate import load_run_state

    _, update, _, state = load_run_state(tmp_path / "gru")
    assert update == 4
    assert state.params["params"]["gru"]["recurrent_kernel"].shape == (1, 1, 16, 48)
    # The final evaluation after training covers the recurrent policy: greedy and stochastic,
    # success and fraction of the optimum (TMaze-v0's optimum: return 1, success 1).
    after = json.loads((tmp_path / "gru" / "results.json").read_text())["evaluation"]
    assert after["optimum"]["expected_return"] == pytest.approx(1.0)
    entry = after["configs"][0]
    for key in ("greedy", "stochastic", "greedy_success", "stochastic_success",
                "greedy_fraction_of_optimum", "stochastic_fraction_of_optimum"):
        assert len(entry[key]) == 1 and np.isfinite(entry[key][0]), key
    # ``jaxgrid-train eval`` evaluates the recurrent run from its checkpoint: the same episodes
    # (same keys, same params) as the evaluation after training, so the same values.
    # The GIF's greedy episode carries the hidden state too (``recurrent.HostGreedyPolicy``).
    proc = subprocess.run(
        [sys.executable, "-m", "train.cli", "eval", str(tmp_path / "gru")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "gru" / "eval.json").read_text())["configs"][0]
    for key in ("greedy", "stochastic", "greedy_success", "stochastic_success"):
        assert again[key] == entry[key], key
    assert again["gif"] and Path(again["gif"]).stat().st_size > 100


_TWO_DEVICES = """
import jax, numpy as np
assert len(jax.devices()) == 2
from train import PPOConfig, train
config = PPOConfig(env_id="TMaze-v0", env_kwargs={"length": 3, "max_steps_in_episode": 6}, seeds=(0,),
                   num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 3,
                   hidden_sizes=(16,), num_eval_envs=4, rnn_hidden_size=8)
one = train(config, num_devices=1)
dp = train(config, env_parallel=True)
assert dp.num_devices == 2
for name in one.metrics:
    np.testing.assert_allclose(dp.metrics[name], one.metrics[name], rtol=2e-4, atol=2e-6, err_msg=name)
moved = worst = 0.0
init = jax.tree.leaves(train(config.replace(learning_rate=1e-12), num_devices=1).params)
for a, b, c in zip(jax.tree.leaves(one.params), jax.tree.leaves(dp.params), init):
    worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
    moved = max(moved, float(np.max(np.abs(np.asarray(a) - np.asarray(c)))))
assert moved > 1e-3 and worst < moved * 1e-3, (worst, moved)
hidden = dp.state.env.hidden
assert len(hidden.sharding.device_set) == 2 and hidden.addressable_shards[0].data.shape[2] == 4
print("ENVS_OK", worst, moved)
# Truncated BPTT: each device takes its share of every minibatch's sequences of 4 steps.
short = config.replace(bptt_length=4, num_minibatches=4)
one, dp = train(short, num_devices=1), train(short, env_parallel=True)
for name in one.metrics:
    np.testing.assert_allclose(dp.metrics[name], one.metrics[name], rtol=2e-4, atol=2e-6, err_msg=name)
print("BPTT_OK")
try:
    train(short.replace(num_minibatches=32), env_parallel=True)
except ValueError as err:
    assert "minibatch of 1 env sequences" in str(err) and "bptt_length" in str(err), err
else:
    raise AssertionError("1 sequence per minibatch over 2 devices was accepted")
try:
    train(config.replace(num_envs=6, num_minibatches=2), env_parallel=True)
except ValueError as err:
    assert "minibatch of 3 env sequences" in str(err) and "2 devices" in str(err), err
else:
    raise AssertionError("3 env sequences per minibatch over 2 devices were accepted")
print("REFUSED_OK")
"""


@pytest.mark.timeout(400)
def test_env_parallel__two_host_devices_agree_with_one():
    out = run_python(_TWO_DEVICES, env={"JAX_NUM_CPU_DEVICES": "2", "PYTHONPATH": str(REPO), "XLA_FLAGS": ""},
                     timeout=380)
    assert "ENVS_OK" in out and "BPTT_OK" in out and "REFUSED_OK" in out, out
