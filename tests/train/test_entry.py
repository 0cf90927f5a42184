"""The ``jaxgrid-train`` console entry (``train.entry``): it skips the interpreter's teardown only
after everything else has run, so every run file is complete and the exit code is kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from train.entry import _code_of

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _entry(*args: str, cwd: str, timeout: float = 200) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return subprocess.run([sys.executable, "-m", "train.entry", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_code_of__as_python_exits():
    assert _code_of(SystemExit()) == 0
    assert _code_of(SystemExit(None)) == 0
    assert _code_of(SystemExit(3)) == 3
    assert _code_of(SystemExit("a message")) == 1


@pytest.mark.timeout(240)
def test_entry__a_run_writes_every_file_whole_and_exits_0(tmp_path):
    proc = _entry("--seeds", "0-1", "--total-timesteps", "1024", "--num-envs", "8", "--num-steps", "32",
                  "--no-cache", "--quiet", "--out", str(tmp_path), "--name", "r", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1].startswith("compile ")  # stdout flushed to the end
    run = tmp_path / "r"
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["status"] == "finished"
    results = json.loads((run / "results.json").read_text())
    assert "evaluation" in results  # written after the table, by the evaluation
    rows = (run / "curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4  # header + 2 seeds x 4 updates
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((run / "tb").rglob("events*"))
    assert len(events) == 2 and all(e.stat().st_size > 0 for e in events)
    assert not list(run.rglob("*.tmp*"))  # no temp file of an atomic write left behind


@pytest.mark.timeout(60)
def test_entry__bad_input_keeps_its_exit_code(tmp_path):
    proc = _entry("--num-minibatches", "3", "--no-cache", cwd=str(tmp_path), timeout=50)
    assert proc.returncode == 2
    assert "must divide" in proc.stderr
