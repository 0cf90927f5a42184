"""The recurrent (GRU) PPO pieces: the GRU step against NumPy, hidden resets at episode starts (an
episode's outputs do not depend on the previous one), gradients through time (non-zero, equal to
finite differences, cut at an episode start), the rollout's stored hidden state re-run by the BPTT
loss, bootstrap values, sequence minibatches and greedy evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrid
from train import networks, recurrent
from train.rollout import describe_env

pytestmark = pytest.mark.timeout(300)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_net(spec, hidden: int = 8) -> recurrent.RecurrentActorCritic:
    return recurrent.RecurrentActorCritic(
        action_dim=spec.action_dim,
        discrete_actions=spec.discrete_actions,
        obs_kind=spec.obs_kind,
        rnn_hidden_size=hidden,
        num_obs_categories=spec.num_obs_categories,
        hidden_sizes=(16,),
    )


@pytest.fixture(scope="module")
def tmaze():
    """TMaze-v0 (length 3, 3x3 view) with a 5-step time limit so episodes end inside a rollout,
    a small recurrent network and its params."""
    env, params = jaxgrid.make("TMaze-v0", length=3, max_steps_in_episode=5)
    spec = describe_env(env, params)
    net = make_net(spec)
    obs = jnp.zeros((1, 2) + env.observation_space(params).shape, jnp.float32)
    hidden, starts = recurrent.initial_hidden(2, 8), jnp.ones((1, 2), bool)
    net_params = jax.jit(net.init)(jax.random.PRNGKey(0), hidden, obs, starts)
    return spec, net, net_params


def test_gru_update__matches_the_equations_in_numpy():
    rng = np.random.default_rng(0)
    B, H = 3, 4
    h, x = rng.uniform(-1, 1, (B, H)), rng.normal(size=(B, 3 * H))
    wh, bh = rng.normal(size=(H, 3 * H)), rng.normal(size=3 * H)
    out = recurrent.gru_update(*(jnp.asarray(a, jnp.float32) for a in (h, x, wh, bh)))
    hp = h @ wh + bh
    r = sigmoid(x[:, :H] + hp[:, :H])
    z = sigmoid(x[:, H:2 * H] + hp[:, H:2 * H])
    n = np.tanh(x[:, 2 * H:] + r * hp[:, 2 * H:])
    np.testing.assert_allclose(np.asarray(out), (1 - z) * n + z * h, rtol=1e-5, atol=1e-6)


def test_reset_hidden__zeroes_only_the_envs_at_an_episode_start():
    h = jnp.arange(6, dtype=jnp.float32).reshape(3, 2) + 1.0
    out = np.asarray(recurrent.reset_hidden(h, jnp.array([False, True, False])))
    np.testing.assert_array_equal(out, [[1, 2], [0, 0], [5, 6]])


def test_network__an_episodes_outputs_do_not_depend_on_the_previous_episode():
    """Two sequences share an episode from step 3 on but differ before (other observations, other
    initial hidden state): from step 3 the outputs are identical, before they differ. Without the
    episode start at step 3 the shared part's outputs would differ too."""
    net = recurrent.RecurrentActorCritic(
        action_dim=4, discrete_actions=True, obs_kind="vector", rnn_hidden_size=6, hidden_sizes=(8,)
    )
    K, k = 7, 3
    rng = np.random.default_rng(1)
    shared = rng.normal(size=(K - k, 1, 5))
    obs = jnp.asarray(np.concatenate([
        np.concatenate([rng.normal(size=(k, 1, 5)), shared]),
        np.concatenate([rng.normal(size=(k, 1, 5)), shared]),
    ], axis=1), jnp.float32)  # [K, 2, 5]
    hidden0 = jnp.asarray(rng.uniform(-1, 1, (2, 6)), jnp.float32)
    starts = jnp.zeros((K, 2), bool).at[k].set(True)
    params = net.init(jax.random.PRNGKey(0), hidden0, obs, starts)
    apply = jax.jit(net.apply)
    hidden_seq, logits, value = apply(params, hidden0, obs, starts)
    for out in (hidden_seq, logits, value):
        out = np.asarray(out)
        np.testing.assert_array_equal(out[k:, 0], out[k:, 1])
        assert not np.allclose(out[:k, 0], out[:k, 1])
    _, _, value_no_reset = apply(params, hidden0, obs, jnp.zeros((K, 2), bool))
    assert not np.allclose(np.asarray(value_no_reset)[k:, 0], np.asarray(value_no_reset)[k:, 1])


def test_bptt__gradient_reaches_an_early_input_and_equals_finite_differences():
    """d(w · h_K) / d(x_0) through K = 5 GRU steps, in float64: non-zero, equal to central finite
    differences; with an episode start at step 2 it is exactly zero (the reset cuts the recurrence)."""
    with jax.enable_x64(True):
        gru = recurrent.GRU(hidden_size=3)
        K, F = 5, 2
        x = jax.random.normal(jax.random.PRNGKey(0), (K, 1, F), jnp.float64)
        h0 = jnp.zeros((1, 3), jnp.float64)
        no_start = jnp.zeros((K, 1), bool)
        params = gru.init(jax.random.PRNGKey(1), h0, x, no_start)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        w = jnp.array([0.7, -1.3, 0.5], jnp.float64)

        def loss(x0, starts):
            seq = gru.apply(params, h0, x.at[0].set(x0), starts)
            assert seq.dtype == jnp.float64
            return jnp.sum(seq[-1] * w)

        grad = np.asarray(jax.grad(loss)(x[0], no_start))
        assert np.all(np.abs(grad) > 1e-6), grad
        eps = 1e-6
        fd = np.zeros_like(grad)
        for j in range(F):
            e = jnp.zeros_like(x[0]).at[0, j].set(eps)
            fd[0, j] = (float(loss(x[0] + e, no_start)) - float(loss(x[0] - e, no_start))) / (2 * eps)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-10)
        cut = no_start.at[2].set(True)
        np.testing.assert_array_equal(np.asarray(jax.grad(loss)(x[0], cut)), 0.0)


def test_bptt__value_gradient_flows_to_the_first_observation_through_the_network(tmaze):
    spec, net, params = tmaze
    K = 4
    obs_shape = spec.env.observation_space(spec.env_params).shape
    obs = jax.random.uniform(jax.random.PRNGKey(2), (K, 2) + obs_shape)
    starts = jnp.zeros((K, 2), bool).at[0].set(True)

    def last_value(o0):
        return net.apply(params, recurrent.initial_hidden(2, 8), obs.at[0].set(o0), starts)[2][-1].sum()

    grad = np.asarray(jax.jit(jax.grad(last_value))(obs[0]))
    assert np.abs(grad).max() > 0.0 and np.all(np.isfinite(grad))


def rollout(tmaze, T: int = 12, N: int = 4, seed: int = 0):
    spec, net, params = tmaze
    keys = jax.random.split(jax.random.PRNGKey(seed), N + T * N)
    carry = recurrent.reset_recurrent(keys[:N], spec, 8)
    env_keys = keys[N:].reshape((T, N) + keys.shape[1:])
    shape = (T, N, spec.action_dim)
    uniforms = jax.random.uniform(jax.random.PRNGKey(seed + 1), shape, minval=1e-6, maxval=1.0)
    collect = jax.jit(lambda k, u, c: recurrent.collect_recurrent_rollout(k, u, params, net.apply, spec, c))
    return collect(env_keys, uniforms, carry)


def test_rollout__stores_the_hidden_state_and_the_episode_starts(tmaze):
    spec, net, params = tmaze
    carry, traj, stats = rollout(tmaze)
    T, N = traj.reward.shape
    start, done = np.asarray(traj.episode_start), np.asarray(traj.done)
    assert start[0].all() and done.sum() >= N  # 5-step episodes end inside 12 steps
    np.testing.assert_array_equal(start[1:], done[:-1])
    np.testing.assert_array_equal(np.asarray(carry.episode_start), done[-1])
    np.testing.assert_array_equal(np.asarray(traj.hidden[0]), 0.0)
    assert float(stats.count) == done.sum()
    # hidden[t + 1] is the GRU state after step t: one step from reset(hidden[t]) over obs[t].
    apply = jax.jit(net.apply)
    for t in range(T - 1):
        h, _, _ = apply(params, traj.hidden[t], traj.obs[t][None], traj.episode_start[t][None])
        np.testing.assert_allclose(np.asarray(h[0]), np.asarray(traj.hidden[t + 1]), atol=1e-6)
    h, _, _ = apply(params, traj.hidden[-1], traj.obs[-1][None], traj.episode_start[-1][None])
    np.testing.assert_allclose(np.asarray(h[0]), np.asarray(carry.hidden), atol=1e-6)


@pytest.mark.parametrize("seq_len", [12, 4])
def test_evaluate_sequence__rerun_from_stored_hidden_reproduces_the_rollout(tmaze, seq_len):
    """The BPTT re-run over whole sequences (or chunks of ``seq_len`` from the hidden state stored at
    each chunk's first step) gives the rollout's log-probabilities and values under the same
    params; the PPO loss there has ratio 1 (zero KL, no clipping) and a finite, non-zero gradient
    on the GRU's recurrent kernel."""
    spec, net, params = tmaze
    _, traj, _ = rollout(tmaze)
    seq = lambda x: recurrent.to_sequences(x, seq_len)  # noqa: E731
    log_prob, _, value = recurrent.evaluate_sequence(
        params, net.apply, seq(traj.hidden)[0], seq(traj.obs), seq(traj.episode_start), seq(traj.action), True
    )
    np.testing.assert_allclose(np.asarray(log_prob), np.asarray(seq(traj.log_prob)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(value), np.asarray(seq(traj.value)), atol=1e-5)
    batch = {
        "obs": seq(traj.obs), "action": seq(traj.action), "log_prob": seq(traj.log_prob),
        "value": seq(traj.value), "advantage": seq(traj.reward - traj.value), "target": seq(traj.reward),
        "hidden": seq(traj.hidden), "episode_start": seq(traj.episode_start),
    }
    loss_fn = lambda p: recurrent.bptt_loss(p, net.apply, batch, True, 0.2, 0.5, 0.01)  # noqa: E731
    grads, info = jax.grad(loss_fn, has_aux=True)(params)
    assert abs(float(info.approx_kl)) < 1e-6 and float(info.clip_fraction) == 0.0
    g = np.asarray(grads["params"]["gru"]["recurrent_kernel"])
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0.0


def test_bootstrap_values__equal_the_next_steps_value_where_no_episode_ended(tmaze):
    spec, net, params = tmaze
    carry, traj, _ = rollout(tmaze)
    nv = np.asarray(recurrent.bootstrap_values(params, net.apply, traj, carry.hidden))
    value, done = np.asarray(traj.value), np.asarray(traj.done)
    cont = ~done[:-1]
    np.testing.assert_allclose(nv[:-1][cont], value[1:][cont], atol=1e-5)
    # At an episode end the bootstrap reads the final observation with the episode's memory,
    # not the next episode's first value.
    assert not np.allclose(nv[:-1][~cont], value[1:][~cont])


def test_sequences_and_minibatches__whole_env_sequences_in_time_order():
    T, N = 6, 4
    ids = jnp.asarray(100 * np.arange(N)[None, :] + np.arange(T)[:, None])  # id = 100 * env + t
    seqs = np.asarray(recurrent.to_sequences(ids, 3))  # [3, 2 * 4]
    assert seqs.shape == (3, 8)
    for c in range(2):
        for env in range(N):
            np.testing.assert_array_equal(seqs[:, c * N + env], 100 * env + 3 * c + np.arange(3))
    perm = jnp.array([5, 2, 7, 0, 1, 6, 3, 4])
    batch = {"id": jnp.asarray(seqs), "extra": jnp.asarray(seqs)[..., None]}
    mbs = recurrent.sequence_minibatches(batch, perm, 2)
    assert mbs["id"].shape == (2, 3, 4) and mbs["extra"].shape == (2, 3, 4, 1)
    got = np.asarray(mbs["id"])
    for m in range(2):
        np.testing.assert_array_equal(got[m], seqs[:, np.asarray(perm)[m * 4:(m + 1) * 4]])
        assert np.all(np.diff(got[m], axis=0) == 1)  # each column: consecutive steps of one env
    assert sorted(got[:, 0].reshape(-1).tolist()) == sorted(seqs[0].tolist())
    with pytest.raises(ValueError, match="seq_len must divide the rollout length 6"):
        recurrent.to_sequences(ids, 4)
    with pytest.raises(ValueError, match="num_minibatches must divide the number of sequences 8"):
        recurrent.sequence_minibatches({"id": jnp.asarray(seqs)}, perm, 3)


def test_evaluate_sequence__gaussian_actions_have_per_step_terms():
    net = recurrent.RecurrentActorCritic(
        action_dim=2, discrete_actions=False, obs_kind="vector", rnn_hidden_size=4, hidden_sizes=(8,)
    )
    K, B = 3, 5
    obs = jnp.ones((K, B, 3))
    starts = jnp.zeros((K, B), bool)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((B, 4)), obs, starts)
    log_prob, entropy, value = recurrent.evaluate_sequence(
        params, net.apply, jnp.zeros((B, 4)), obs, starts, jnp.zeros((K, B, 2)), False
    )
    assert log_prob.shape == entropy.shape == value.shape == (K, B)
    np.testing.assert_allclose(np.asarray(entropy), 2 * (0.5 + 0.5 * np.log(2 * np.pi)), rtol=1e-6)


def _host_loop(spec, net, params, key, n, greedy):
    """``run_recurrent_eval_episodes`` written as a plain Python loop over steps: the reset and step
    keys of ``rollout.run_eval_episodes``, the hidden state carried by hand, each env's first
    episode scored. Returns (returns [n], lengths [n], per-env action lists)."""
    horizon = spec.max_episode_steps
    key_reset, key_run = jax.random.split(key)
    obs, state = jax.vmap(spec.env.reset, in_axes=(0, None))(jax.random.split(key_reset, n), spec.env_params)
    hidden, start = recurrent.initial_hidden(n, net.rnn_hidden_size), np.ones(n, bool)
    returns, lengths, finished = np.zeros(n), np.zeros(n, int), np.zeros(n, bool)
    apply = jax.jit(net.apply)
    step = jax.jit(jax.vmap(spec.env.step, in_axes=(0, 0, 0, None)))
    actions = [[] for _ in range(n)]
    for t in range(horizon):
        key_env, key_act = jax.random.split(jax.random.fold_in(key_run, t))
        hidden_seq, logits, _ = apply(params, hidden, obs[None], jnp.asarray(start)[None])
        sampled = networks.sample_action(key_act, logits[0], None, True)
        action = np.where(greedy, np.asarray(jnp.argmax(logits[0], axis=-1)), np.asarray(sampled))
        obs, state, reward, term, trunc, _ = step(
            jax.random.split(key_env, n), state, jnp.asarray(action, jnp.int32), spec.env_params
        )
        for i in np.flatnonzero(~finished):
            actions[i].append(int(action[i]))
        returns += np.where(finished, 0.0, np.asarray(reward))
        lengths += ~finished
        finished |= np.asarray(term | trunc)
        hidden, start = hidden_seq[0], np.zeros(n, bool)
        if finished.all():
            break
    assert finished.all()
    return returns, lengths, actions


@pytest.mark.parametrize("greedy", [True, False])
def test_run_recurrent_eval_episodes__equal_a_step_by_step_loop_with_the_hidden_state_carried(tmaze, greedy):
    spec, net, params = tmaze
    key, n = jax.random.PRNGKey(7), 6
    mask = np.full(n, greedy)
    got = jax.jit(lambda k: recurrent.run_recurrent_eval_episodes(k, params, net.apply, spec, n, 8, greedy=greedy))(key)
    returns, lengths, _ = _host_loop(spec, net, params, key, n, mask)
    np.testing.assert_allclose(np.asarray(got.returns), returns, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(got.lengths), lengths)
    np.testing.assert_array_equal(np.asarray(got.success), (returns > 0).astype(np.float32))
    mean = recurrent.evaluate_greedy_recurrent(key, params, net.apply, spec, n, 8)
    if greedy:
        assert float(mean) == pytest.approx(returns.mean(), abs=1e-6)


def test_evaluation__a_zero_hidden_state_is_not_the_same_policy_as_a_carried_one(tmaze):
    """The evaluation does carry the hidden state: the GRU policy's action at step 1 of an episode
    depends on its state after step 0 (zeroing it changes the policy's outputs)."""
    spec, net, params = tmaze
    env, env_params = spec.env, spec.env_params
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 4), env_params)
    step = recurrent.stateful_apply(net.apply)
    starts = jnp.ones(4, bool)
    out0, hidden = step(params, obs, recurrent.initial_hidden(4, 8), starts)
    carried, _ = step(params, obs, hidden, ~starts)
    fresh, _ = step(params, obs, recurrent.initial_hidden(4, 8), ~starts)
    assert float(jnp.abs(hidden).max()) > 1e-3
    assert not np.allclose(np.asarray(carried), np.asarray(fresh))
    np.testing.assert_array_equal(np.asarray(fresh), np.asarray(out0))  # zero state = a start


def test_host_greedy_policy__replays_the_batched_greedy_episodes(tmaze):
    """``HostGreedyPolicy`` (the GIF's policy) with ``jaxgrid.replay_episode`` from the same reset
    states takes the same actions as the batched greedy evaluation."""
    spec, net, params = tmaze
    key, n = jax.random.PRNGKey(3), 4
    _, _, actions = _host_loop(spec, net, params, key, n, np.ones(n, bool))
    key_reset, _ = jax.random.split(key)
    obs, state = jax.vmap(spec.env.reset, in_axes=(0, None))(jax.random.split(key_reset, n), spec.env_params)
    for i in range(n):
        start = jax.tree.map(lambda x: x[i], (obs, state))
        policy = recurrent.HostGreedyPolicy(net, params, spec.discrete_actions)
        episode = jaxgrid.replay_episode(spec.env, spec.env_params, policy, jax.random.PRNGKey(0), start=start)
        assert list(episode.actions) == actions[i], i


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_learning__recurrent_ppo_solves_a_tmaze_that_memoryless_policies_cannot():
    """TMaze-v0 with length 4: a memoryless policy's expected return is at most 0 (success <= 1/2,
    tests/jaxgrid/test_tmaze.py). The trainer's GRU policy with truncated BPTT (sequences of 16
    steps from the stored hidden states, so most episodes, ~6 steps, lie inside one sequence but
    some start in the sequence before) reaches a greedy return >= 0.9 (success >= 0.95) on two
    seeds after 80 updates of 32 x 64 steps (constant learning rate, raw advantages as the TMaze-v0
    preset), from an untrained policy whose training return starts below 0.5. When written, 4 seeds
    of 4 reached 1.0 at 80 updates (3 of 4 at 40), truncated or not."""
    from train import PPOConfig, train

    config = PPOConfig(
        env_id="TMaze-v0", env_kwargs={"length": 4}, seeds=(0, 1), num_envs=32, num_steps=64,
        num_minibatches=4, learning_rate=1e-3, anneal_lr=False, normalize_advantage=False,
        hidden_sizes=(64,), rnn_hidden_size=32, bptt_length=16, total_timesteps=80 * 32 * 64,
        num_eval_envs=64,
    )
    result = train(config)
    assert float(result.eval_returns.min()) >= 0.9, result.eval_returns
    returns = np.asarray(result.metrics["episode_return"])  # [seeds, updates]
    assert np.nanmean(returns[:, :3]) < 0.5, returns[:, :3]  # it did start untrained
