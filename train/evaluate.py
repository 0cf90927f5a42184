"""Evaluating trained policies: greedy and stochastic return, success rate and fraction of the
env's exact optimum (``jaxgrid.optimal_return``) per seed over fresh episodes, after training
(``evaluate_result``) or from a run's checkpoint (``evaluate_run``), and a GIF of one greedy episode.

    jaxgrid-train eval runs/<name> [--episodes N] [--no-gif]

Episodes per seed and their step cap come from ``PPOConfig.eval_episodes`` / ``eval_max_steps``
(``train.rollout.evaluation_budget``): on a stochastic env enough episodes that a seed's success
rate is known within ±0.03 (95%), and a bounded horizon on envs without a time limit.

A recurrent policy (``PPOConfig.rnn_hidden_size > 0``) is evaluated the same way, its hidden state
zero at each episode's start and carried through the episode (``train.recurrent``'s
``run_recurrent_eval_episodes`` and, for the GIF, ``HostGreedyPolicy``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from train import report
from train.checkpoint import atomic_write_json, find_checkpoint, restore_checkpoint
from train.placement import rng_config, seed_keys
from train.ppo import make_train, policy_kind
from train.rollout import EnvSpec, EvalEpisodes, evaluation_budget
from train.runs import CHECKPOINT_DIR, load_run_config
from train.setup import TrainSetup, make_setup
from train.types import METRIC_NAMES


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


def optimum_of(spec: EnvSpec, max_steps: int | None = None, num_layouts: int = 1000) -> Any:
    """``jaxgrid.optimal_return`` of the evaluated env with its horizon cut to ``max_steps`` (the
    evaluation's step cap), or None for an env jaxgrid cannot solve (gymnax envs)."""
    try:
        import jaxgrid
    except ImportError:
        return None
    params = spec.env_params
    if not hasattr(params, "max_steps_in_episode") or not hasattr(jaxgrid, "optimal_return"):
        return None
    if max_steps is not None and max_steps < int(params.max_steps_in_episode):
        params = params.replace(max_steps_in_episode=jnp.int32(max_steps))
    try:
        return jaxgrid.optimal_return(spec.env, params, num_layouts=num_layouts)
    except ValueError:  # not a jaxgrid grid env
        return None


def episode_runner(setup: TrainSetup) -> Callable[..., EvalEpisodes]:
    """``run(params, key, num_envs, max_steps, greedy) -> EvalEpisodes``: fresh evaluation episodes
    of ``setup``'s policy, from its policy kind (``ppo.policy_kind``: a recurrent policy starts each
    episode from a zero hidden state and carries it through the episode)."""
    return policy_kind(setup.config).episode_runner(setup)


def evaluate_policies(
    config: Any, setup: TrainSetup, params: Any, episodes: int | None = None, seed: int = 1234
) -> dict[str, np.ndarray]:
    """Greedy and stochastic evaluation of every run (``params`` leaves ``[G, S, ...]``).

    Returns ``{"greedy_return", "greedy_success", "stochastic_return", "stochastic_success"}``,
    each ``[G, S]`` float64: per-seed means over ``episodes`` fresh episodes (default
    ``evaluation_budget``), each capped at ``config.eval_max_steps``. Success is NaN for envs
    without a goal. Seed k's episodes draw from ``fold_in(PRNGKey(seed), k)``.
    """
    budget_episodes, max_steps = evaluation_budget(config, setup.spec)
    episodes = budget_episodes if episodes is None else int(episodes)
    run_episodes = episode_runner(setup)

    def one(p, key):
        # NOTE: both policies in one batch of 2 x episodes envs, one loop: half the compile time
        # of two loops (this runs after every jaxgrid-train).
        greedy = jnp.arange(2 * episodes) < episodes
        ep = run_episodes(p, key, 2 * episodes, max_steps, greedy)
        halves = lambda x: (x[:episodes].mean(), x[episodes:].mean())  # noqa: E731
        (g_ret, s_ret), (g_succ, s_succ) = halves(ep.returns), halves(ep.success)
        return {"greedy_return": g_ret, "greedy_success": g_succ,
                "stochastic_return": s_ret, "stochastic_success": s_succ}

    per_run = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, 0)), in_axes=(0, None)))
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(seed), s))(jnp.asarray(config.seeds))
    out = {k: np.asarray(v, np.float64) for k, v in per_run(params, keys).items()}
    return out


def evaluation_report(
    config: Any, values: dict[str, np.ndarray], optimum: Any, episodes: int, max_steps: int
) -> dict[str, Any]:
    """JSON-ready per-config report of ``evaluate_policies``' values: per-seed return, success and
    fraction of the optimum, each summarised (mean, std, median, IQM with its 95% CI)."""
    labels = [", ".join(f"{k}={v:g}" for k, v in p.items()) or config.env_id for p in config.grid_points()]
    out: dict[str, Any] = {
        "env_id": config.env_id,
        "episodes": episodes,
        "eval_max_steps": max_steps,
        "optimum": None,
        "configs": [],
    }
    if optimum is not None:
        out["optimum"] = {
            "expected_return": optimum.expected_return,
            "success_prob": optimum.success_prob,
            "horizon": min(optimum.horizon, max_steps),
            "layouts": len(optimum.returns),
            "stderr": optimum.stderr,
        }
    for g, label in enumerate(labels):
        entry: dict[str, Any] = {"label": label, "seeds": list(config.seeds)}
        for kind in ("greedy", "stochastic"):
            ret, success = values[f"{kind}_return"][g], values[f"{kind}_success"][g]
            entry[kind] = [float(v) for v in ret]
            entry[f"{kind}_summary"] = _summary(ret, config.seeds, f"{label} {kind}")
            entry[f"{kind}_success"] = [float(v) for v in success]
            if not np.isnan(success).any():
                entry[f"{kind}_success_summary"] = _summary(success, config.seeds, f"{label} {kind} success")
            if optimum is not None:
                frac = np.asarray(report.fraction_of_optimum(ret, optimum.expected_return), np.float64)
                if np.isfinite(frac).all():
                    entry[f"{kind}_fraction_of_optimum"] = [float(v) for v in frac]
                    entry[f"{kind}_fraction_summary"] = _summary(frac, config.seeds, f"{label} {kind} fraction")
        out["configs"].append(entry)
    return out


def evaluate_result(result: Any, run_dir: str | Path | None = None, seed: int = 1234) -> dict[str, Any]:
    """The final evaluation of a ``TrainResult``: greedy and stochastic return, success rate and
    fraction of the optimum per seed (``evaluation_report``). With ``run_dir``, written to its
    ``eval.json`` and under ``"evaluation"`` in its ``results.json``."""
    config = result.config
    setup = make_setup(config)
    episodes, max_steps = evaluation_budget(config, setup.spec)
    values = evaluate_policies(config, setup, jax.tree.map(jnp.asarray, result.state.params), seed=seed)
    out = evaluation_report(config, values, optimum_of(setup.spec, max_steps), episodes, max_steps)
    if run_dir is not None:
        out["run"] = str(run_dir)  # every process prints the same lines; only process 0 writes
    if run_dir is not None and jax.process_index() == 0:
        run_dir = Path(run_dir)
        not_written = _write_json(run_dir / "eval.json", out)
        results = run_dir / "results.json"
        if results.exists():
            not_written += _write_json(results, {**json.loads(results.read_text()), "evaluation": out})
        if not_written:
            out["not_written"] = not_written
    return out


def _write_json(path: Path, obj: Any) -> list[str]:
    """Writes ``obj`` atomically; ``[]``, or the one line saying why it could not be written."""
    try:
        atomic_write_json(path, obj)
    except OSError as err:
        return [f"cannot write {path}: {err.strerror or err}"]
    return []


def evaluate_run(run_dir: str | Path, episodes: int | None = None, gif: bool = True, seed: int = 1234) -> dict[str, Any]:
    """Greedy and stochastic return, success and fraction of the optimum per seed (and config)
    over ``episodes`` fresh episodes (default: the run's ``evaluation_budget``); writes
    ``eval.json`` and, for jaxgrid envs, ``greedy_episode_<config>.gif`` in the run dir.

    A file that cannot be written (read-only run directory, full disk) does not lose the results:
    they are returned with ``"not_written"``, one ``"cannot write <path>: <cause>"`` line per file."""
    run_dir = Path(run_dir)
    config, update, setup, state = load_run_state(run_dir)
    params = jax.tree.map(jnp.asarray, state.params)
    budget, max_steps = evaluation_budget(config, setup.spec)
    episodes = budget if episodes is None else int(episodes)
    values = evaluate_policies(config, setup, params, episodes=episodes, seed=seed)
    out = evaluation_report(config, values, optimum_of(setup.spec, max_steps), episodes, max_steps)
    out.update(run=str(run_dir), update=update)
    not_written: list[str] = []
    if gif:
        for g, entry in enumerate(out["configs"]):
            target = run_dir / f"greedy_episode_{g}.gif"
            try:
                path = _greedy_gif(target, jax.tree.map(lambda x: x[g, 0], params), setup)
            except OSError as err:
                path, not_written = None, [*not_written, f"cannot write {target}: {err.strerror or err}"]
            entry["gif"] = str(path) if path else None
    not_written += _write_json(run_dir / "eval.json", out)
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

    greedy = policy_kind(setup.config).host_greedy(setup, params)  # memory carried, if any
    episode = replay_episode(env, env_params, greedy, jax.random.PRNGKey(0), evaluation_budget(setup.config, setup.spec)[1])
    return save_frames(episode_frames(env, env_params, episode), path, fps=3.0)


def format_eval(out: dict[str, Any]) -> str:
    """The evaluation as text: per config and policy, return and fraction of the optimum (IQM with
    its 95% CI over seeds), success rate, then the per-seed values."""
    where = f"evaluation of {out['run']}" + (f" at update {out['update']}" if "update" in out else "") if out.get("run") else "evaluation"
    lines = [f"{where}: {out['episodes']} episodes per seed, at most {out['eval_max_steps']} steps each"]
    opt = out.get("optimum")
    if opt is not None:
        kind = f"mean over {opt['layouts']} fresh layouts" if opt["layouts"] > 1 else "value iteration"
        lines.append(f"optimum ({kind}, {opt['horizon']} steps): return {opt['expected_return']:.4f}, "
                     f"success {opt['success_prob']:.4f}")
    width = max([28] + [len(c["label"]) for c in out["configs"]])  # whole labels: sweep points must differ
    for c in out["configs"]:
        for kind in ("greedy", "stochastic"):
            s = c[f"{kind}_summary"]
            line = (f"{c['label']:<{width}} {kind:<10} return IQM {s['iqm']:.3f} "
                    f"[{s['iqm_ci95'][0]:.3f}, {s['iqm_ci95'][1]:.3f}]")
            if f"{kind}_fraction_summary" in c:
                f = c[f"{kind}_fraction_summary"]
                line += f"  of optimum {f['iqm']:.3f} [{f['iqm_ci95'][0]:.3f}, {f['iqm_ci95'][1]:.3f}]"
            if f"{kind}_success_summary" in c:
                line += f"  success mean {c[f'{kind}_success_summary']['mean']:.3f}"
            lines.append(line)
            per = "  ".join(f"{seed}:{v:.3f}" for seed, v in zip(c["seeds"], c[kind]))
            lines.append(f"    per seed return  {per}")
            if f"{kind}_fraction_of_optimum" in c:
                per = "  ".join(f"{seed}:{v:.3f}" for seed, v in zip(c["seeds"], c[f"{kind}_fraction_of_optimum"]))
                lines.append(f"    per seed of opt  {per}")
        if c.get("gif"):
            lines.append(f"    greedy episode: {c['gif']}")
    return "\n".join(lines)
