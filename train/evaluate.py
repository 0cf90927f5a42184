"""Evaluating a finished (or interrupted) run from its checkpoint: greedy and stochastic returns
per seed over fresh episodes, and a GIF of one greedy episode per config.

    jaxgrid-train eval runs/<name> [--episodes 64] [--no-gif]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from train import networks, report
from train.checkpoint import atomic_write_json, find_checkpoint, restore_checkpoint
from train.placement import rng_config, seed_keys
from train.ppo import make_train
from train.setup import TrainSetup, log_std_of
from train.types import METRIC_NAMES
from train.rollout import _step_envs, reset_envs
from train.runs import CHECKPOINT_DIR, load_run_config


def episode_returns(
    key: jax.Array, params: Any, setup: TrainSetup, num_envs: int, greedy: bool
) -> jax.Array:
    """Returns ``[num_envs]`` of the first episode of ``num_envs`` fresh envs under the policy
    (argmax / mean action if ``greedy``, else sampled)."""
    spec = setup.spec
    key_reset, key_run = jax.random.split(key)
    carry = reset_envs(jax.random.split(key_reset, num_envs), spec)

    def step(state, key_step):
        carry, returns, finished = state
        key_env, key_act = jax.random.split(key_step)
        policy_out, _ = setup.apply(params, carry.obs)
        if greedy:
            action = networks.greedy_action(policy_out, spec.discrete_actions)
        else:
            action = networks.sample_action(key_act, policy_out, log_std_of(params, setup), spec.discrete_actions)
        obs, env_state, reward, _, done, _ = _step_envs(jax.random.split(key_env, num_envs), spec, carry, action)
        returns = returns + jnp.where(finished, 0.0, reward)
        carry = carry.replace(env_state=env_state, obs=obs)
        return (carry, returns, finished | done), None

    init = (carry, jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), bool))
    (_, returns, _), _ = jax.lax.scan(step, init, jax.random.split(key_run, spec.max_episode_steps))
    return returns


def load_run_state(run_dir: str | Path):
    """(config, update, runner state [G, S_all, ...] as NumPy) from a run's newest checkpoint that
    verifies (``train.checkpoint.find_checkpoint``)."""
    config = load_run_config(run_dir)
    ckpt_dir = Path(run_dir) / CHECKPOINT_DIR
    found = find_checkpoint(ckpt_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet ({ckpt_dir} holds none)")
    done = found.update
    trainer = make_train(config)
    with rng_config():
        shapes = jax.eval_shape(trainer.init, seed_keys(config.seeds))
    state_target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    lead = state_target.update_step.shape
    target = {"runner": state_target, "metrics": {k: np.zeros(lead + (done,), np.float32) for k in METRIC_NAMES}}
    tree = restore_checkpoint(found, target)  # checkpoints hold the real seeds only
    return config, done, trainer.setup, tree["runner"]


def evaluate_run(run_dir: str | Path, episodes: int = 64, gif: bool = True, seed: int = 1234) -> dict[str, Any]:
    """Greedy and stochastic returns per seed (and config) over ``episodes`` fresh episodes;
    writes ``eval.json`` and, for jaxgrid envs, ``greedy_episode_<config>.gif`` in the run dir.

    A file that cannot be written (read-only run directory, full disk) does not lose the results:
    they are returned with ``"not_written"``, one ``"<path>: <cause>"`` line per file."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.rnn_hidden_size > 0:
        raise ValueError(
            f"{run_dir} trained a recurrent policy (rnn_hidden_size={config.rnn_hidden_size}); "
            "`jaxgrid-train eval` evaluates feedforward runs only. Its greedy returns after "
            "training are in results.json (train.recurrent.evaluate_greedy_recurrent)"
        )
    config, update, setup, state = load_run_state(run_dir)
    params = jax.tree.map(jnp.asarray, state.params)
    per_seed = jax.jit(
        jax.vmap(jax.vmap(lambda p, k, g: episode_returns(k, p, setup, episodes, g), in_axes=(0, 0, None)),
                 in_axes=(0, None, None)),
        static_argnums=2,
    )
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(seed), s))(jnp.asarray(config.seeds))
    greedy = np.asarray(per_seed(params, keys, True)).mean(-1)  # [G, S]
    stochastic = np.asarray(per_seed(params, keys, False)).mean(-1)
    labels = [", ".join(f"{k}={v:g}" for k, v in p.items()) or config.env_id for p in config.grid_points()]
    out: dict[str, Any] = {"run": str(run_dir), "update": update, "episodes": episodes, "configs": []}
    not_written: list[str] = []
    for g, label in enumerate(labels):
        out["configs"].append({
            "label": label,
            "seeds": list(config.seeds),
            "greedy": [float(v) for v in greedy[g]],
            "stochastic": [float(v) for v in stochastic[g]],
            "greedy_summary": _summary(greedy[g], config.seeds, label + " greedy"),
            "stochastic_summary": _summary(stochastic[g], config.seeds, label + " stochastic"),
        })
        if gif:
            target = run_dir / f"greedy_episode_{g}.gif"
            try:
                path = _greedy_gif(target, jax.tree.map(lambda x: x[g, 0], params), setup)
            except OSError as err:
                path, not_written = None, [*not_written, f"cannot write {target}: {err.strerror or err}"]
            out["configs"][-1]["gif"] = str(path) if path else None
    try:
        atomic_write_json(run_dir / "eval.json", out)
    except OSError as err:
        not_written.append(f"cannot write {run_dir / 'eval.json'}: {err.strerror or err}")
    if not_written:
        out["not_written"] = not_written
    return out


def _summary(values: np.ndarray, seeds, label: str) -> dict[str, Any]:
    s = report.summarize(values, tuple(seeds), label)
    return {"mean": s.mean, "std": s.std, "median": s.median, "iqm": s.iqm, "iqm_ci95": list(s.iqm_ci)}


def _greedy_gif(path: Path, params: Any, setup: TrainSetup) -> Path | None:
    """One greedy episode of the first seed, drawn with jaxgrid's renderer (None for other envs):
    the states that happened (``jaxgrid.replay_episode``), the one the episode ended in last."""
    env, env_params = setup.spec.env, setup.spec.env_params
    if not hasattr(env, "render"):
        return None
    from jaxgrid import episode_frames, replay_episode
    from jaxgrid.render import save_frames

    def greedy(obs, state):
        policy_out, _ = setup.apply(params, obs[None])
        return networks.greedy_action(policy_out, setup.spec.discrete_actions)[0]

    episode = replay_episode(env, env_params, greedy, jax.random.PRNGKey(0), setup.spec.max_episode_steps)
    return save_frames(episode_frames(env, env_params, episode), path, fps=3.0)


def format_eval(out: dict[str, Any]) -> str:
    lines = [f"evaluation of {out['run']} at update {out['update']} ({out['episodes']} episodes per seed)"]
    for c in out["configs"]:
        for kind in ("greedy", "stochastic"):
            s = c[f"{kind}_summary"]
            per = "  ".join(f"{seed}:{v:.3f}" for seed, v in zip(c["seeds"], c[kind]))
            lines.append(f"{c['label'][:28]:<28} {kind:<10} mean {s['mean']:.3f} ± {s['std']:.3f}  "
                         f"IQM {s['iqm']:.3f} [{s['iqm_ci95'][0]:.3f}, {s['iqm_ci95'][1]:.3f}]")
            lines.append(f"    per seed  {per}")
        if c.get("gif"):
            lines.append(f"    greedy episode: {c['gif']}")
    return "\n".join(lines)
