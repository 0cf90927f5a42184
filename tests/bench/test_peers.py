"""bench/peers.py runs (jaxgrid rows; the peers are an optional extra) and writes its JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.timeout(300)
def test_peers_quick__jaxgrid_rows_write_json_ratios_and_plot(tmp_path):
    out = tmp_path / "peers.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "peers.py"), "--quick", "--only", "jaxgrid", "--tasks", "Procedural 9x9",
         "FrozenLake-v1", "--sizes", "1", "8", "--repeats", "1", "--target-s", "0.002", "--out", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    assert payload["benchmark"] == "peers" and payload["skipped"] == []
    impls = {(r["impl"], r["obs"]) for r in payload["results"]}
    assert impls == {
        ("jaxgrid Maze-9x9-v0", "grid"), ("jaxgrid Maze-9x9-v0", "view"),
        ("jaxgrid EmptyRoom-v0 size=9", "grid"), ("jaxgrid EmptyRoom-v0 size=9", "view"),
        ("jaxgrid Maze-9x9-v0 vmap(env.step)", "grid"),
        ("jaxgrid FrozenLake-v1", "index"), ("jaxgrid FrozenLake-v1 is_slippery=False", "index"),
    }
    for row in payload["results"]:
        assert row["library"] == "jaxgrid" and row["num_envs"] in (1, 8)
        assert row["steps_per_s"] > 0 and row["compile_s"] > 0 and row["num_steps"] >= 2
        assert row["steps_per_s"] == pytest.approx(row["num_envs"] * row["num_steps"] / row["median_s"])
    ratios = {(r["name"], r["num_envs"]): r for r in payload["ratios"]}
    maze = ratios[("Maze-9x9 VecEnv / EmptyRoom 9x9, grid", 8)]
    assert maze["target"] == 0.5 and maze["met"] == (maze["ratio"] >= 0.5)
    assert ("FrozenLake-v1: slippery / deterministic", 1) in ratios
    assert set(payload["notes"]) >= {"actions", "observations", "auto_reset"}
    assert "| ratio | N | measured | target |" in proc.stdout


@pytest.mark.timeout(300)
def test_peers_update__replaces_only_the_measured_rows_and_keeps_the_rest(tmp_path):
    """``--update`` rewrites the rows it measured (here FrozenLake-v1) and keeps the others (a
    hand-written row of another task) and the paired ratios it did not measure again."""
    out = tmp_path / "peers.json"
    other = {"task": "Other", "impl": "x", "obs": "index", "num_envs": 8, "steps_per_s": 1.0, "library": "jaxgrid"}
    stale = {"task": "FrozenLake-v1", "impl": "jaxgrid FrozenLake-v1", "obs": "index", "num_envs": 8,
             "steps_per_s": -1.0, "library": "jaxgrid"}
    kept_pair = {"name": "kept pair", "num_envs": 4096, "ratio": 0.5}
    out.write_text(json.dumps({"benchmark": "peers", "results": [other, stale], "paired_ratios": [kept_pair]}))
    proc = subprocess.run(
        [sys.executable, str(BENCH / "peers.py"), "--quick", "--update", "--only", "jaxgrid", "--tasks",
         "FrozenLake-v1", "--sizes", "8", "--repeats", "1", "--target-s", "0.002", "--out", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    rows = {(r["task"], r["impl"], r["num_envs"]): r for r in payload["results"]}
    assert rows[("Other", "x", 8)] == other
    fresh = rows[("FrozenLake-v1", "jaxgrid FrozenLake-v1", 8)]
    assert fresh["steps_per_s"] > 0 and "measured_utc" in fresh
    assert ("FrozenLake-v1", "jaxgrid FrozenLake-v1 is_slippery=False", 8) in rows
    assert len(payload["results"]) == 3 and payload["paired_ratios"] == [kept_pair]


@pytest.mark.timeout(300)
def test_old_code_program__times_a_checkouts_vmap_step_in_a_child(tmp_path):
    """The child of ``--old-root`` imports jaxgrid from the checkout it is given (here this one),
    compiles its ``vmap(env.step)`` and answers each timed call with the seconds it took."""
    sys.path.insert(0, str(BENCH))
    try:
        import argparse

        import peers
    finally:
        sys.path.remove(str(BENCH))
    root = BENCH.parent
    program = peers.OldCodeProgram(root, "FrozenLake-v1", "index", 8, argparse.Namespace(target_s=0.002))
    try:
        seconds = [program.seconds() for _ in range(2)]
    finally:
        program.close()
    assert Path(program.jaxgrid_file).resolve().is_relative_to(root.resolve())
    assert program.num_steps >= 2 and all(s > 0 for s in seconds)
    assert program.proc.returncode == 0
