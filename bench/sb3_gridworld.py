"""Stable-Baselines3 trains on jaxgrid through the Gymnasium adapter (optional ``bench`` extra).

    pip install -e '.[bench]'      # torch (CPU) and stable-baselines3
    python bench/sb3_gridworld.py  # writes bench/results/sb3_gridworld.json

For each env: PPO (SB3 defaults except the listed hyperparameters) on ``gymnasium.make("jaxgrid/<id>")``,
then the deterministic policy is rolled out; its return and length are recorded with the wall time.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import stable_baselines3 as sb3
import torch

import jaxgrid

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

RUNS = [
    # (env id, make kwargs, timesteps, optimal return)
    ("GridWorld-4x4-v0", {}, 3000, 0.8),
    ("FrozenLake-v1", {"is_slippery": False}, 20000, 1.0),
    ("CliffWalking-v1", {"max_steps_in_episode": 100}, 30000, -13.0),
]
HYPERPARAMS = {"n_steps": 128, "batch_size": 64, "n_epochs": 4, "learning_rate": 1e-3, "gamma": 0.95}


def greedy_rollout(model, env) -> tuple[float, int, bool]:
    obs, _ = env.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(int(action))
        total, steps = total + reward, steps + 1
        if terminated or truncated or steps >= 500:
            return total, steps, bool(terminated)


def main() -> None:
    torch.set_num_threads(1)
    results = []
    for env_id, kwargs, timesteps, optimum in RUNS:
        env = gymnasium.make(f"jaxgrid/{env_id}", **kwargs)
        model = sb3.PPO("MlpPolicy", env, seed=0, verbose=0, **HYPERPARAMS)
        start = time.perf_counter()
        model.learn(total_timesteps=timesteps)
        seconds = time.perf_counter() - start
        ret, length, terminated = greedy_rollout(model, env)
        row = {
            "env_id": env_id, "make_kwargs": kwargs, "timesteps": timesteps, "train_seconds": round(seconds, 2),
            "env_steps_per_second": round(timesteps / seconds, 1), "greedy_return": round(ret, 4),
            "greedy_length": length, "reached_goal": terminated, "optimal_return": optimum,
        }
        print(json.dumps(row))
        results.append(row)
    out = Path(__file__).parent / "results" / "sb3_gridworld.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "python bench/sb3_gridworld.py", "python": platform.python_version(),
        "jaxgrid": jaxgrid.__version__, "stable_baselines3": sb3.__version__, "torch": torch.__version__,
        "numpy": np.__version__, "hyperparameters": HYPERPARAMS, "machine": platform.machine(),
    }
    harness.write_json(out, {"meta": meta, "runs": results})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
