"""bench/solve.py runs end to end on one fast env, scores it against the exact optimum and writes
its JSON (learning curve, final per-seed fractions, targets) and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_solve_quick__gridworld_reaches_the_optimum_and_results_are_written(tmp_path):
    out = tmp_path / "solve.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "solve.py"), "--quick", "--env-ids", "GridWorld-4x4-v0",
         "--seeds", "4", "--points", "3", "--devices", "1", "--out", str(out), "--set", "eval_episodes=8"],
        capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    (row,) = payload["rows"]
    assert row["env_id"] == "GridWorld-4x4-v0" and row["seeds"] == [0, 1, 2, 3]
    assert row["set"] == {"eval_episodes": 8} and row["eval_episodes"] == 8  # --set on top of the preset
    assert row["optimum"]["expected_return"] == pytest.approx(0.8, abs=1e-6)
    # 1/8 of the preset's 16,384 steps: the defaults solve the 4x4 grid in a few thousand
    assert row["env_steps_per_seed"] == 2048
    assert len(row["curve"]["env_steps"]) == 3 and len(row["curve"]["per_seed"]) == 4
    lo, hi = zip(*row["curve"]["ci95"])
    assert all(a <= m <= b for a, m, b in zip(lo, row["curve"]["iqm"], hi))
    greedy = row["greedy"]
    assert greedy["fraction"] == pytest.approx([1.0] * 4, abs=1e-5)
    assert greedy["return"] == pytest.approx([0.8] * 4, abs=1e-5) and greedy["success"] == [1.0] * 4
    assert row["to_95"] is not None and row["to_95"]["env_steps"] <= 2048
    assert all(row["targets"].values())
    assert "| GridWorld-4x4-v0 | 2,048 | 0.800 |" in payload["table"]
    assert out.with_suffix(".png").stat().st_size > 1000


def test_solve__unknown_id_is_refused():
    proc = subprocess.run([sys.executable, str(BENCH / "solve.py"), "--env-ids", "GridWorld-v0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no preset for GridWorld-v0" in proc.stderr


@pytest.mark.parametrize("item,message", [
    ("ent_coeff=0.1", "--set ent_coeff: not a PPOConfig field; fields:"),
    ("ent_coef", "--set 'ent_coef': expected FIELD=JSON"),
    ("env_kwargs={obs: view}", "--set env_kwargs: value '{obs: view}' is not JSON"),
    ("seeds=[0, 1]", "--set seeds: give it with --seeds instead"),
    ("env_id=\"FrozenLake-v1\"", "--set env_id: give it with --env-ids instead"),
])
def test_solve__bad_set_is_refused_before_training(item, message):
    proc = subprocess.run([sys.executable, str(BENCH / "solve.py"), "--env-ids", "GridWorld-4x4-v0",
                           "--set", item], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
