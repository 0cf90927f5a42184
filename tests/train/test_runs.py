"""Run directories end to end: contents and schema, chunked == unchunked, resume == uninterrupted,
changed-config resume refused, overwrite refused, corrupted checkpoint, SIGINT then resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from train import PPOConfig, train
from train.checkpoint import CheckpointError
from train.runs import ConfigMismatchError, RunInterrupted, load_run_config, train_in_run_dir
from train.tracking import RunDirExistsError

TINY = PPOConfig(seeds=(0, 1, 2), total_timesteps=8 * 16 * 6, num_envs=8, num_steps=16, num_eval_envs=4)


def assert_same_training(a, b):
    assert set(a.metrics) == set(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)
    for x, y in zip(__import__("jax").tree.leaves(a.params), __import__("jax").tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def reference():
    return train(TINY)


@pytest.mark.timeout(240)
def test_run_dir_contents_and_chunked_equals_unchunked(tmp_path, reference):
    calls = []
    result, run_dir = train_in_run_dir(
        TINY, out=tmp_path, name="r", checkpoint_every=2, num_devices=1,
        progress=lambda *a: calls.append(a),
    )
    assert_same_training(result, reference)
    # Progress from the host after every chunk: the last update's index, env steps, returns [G, S].
    assert [c[0] for c in calls] == [1, 3, 5]
    assert [c[1] for c in calls] == [2 * TINY.batch_size, 4 * TINY.batch_size, 6 * TINY.batch_size]
    np.testing.assert_array_equal(calls[-1][2][0], reference.metrics["episode_return"][:, -1])
    for name in ("config.json", "metadata.json", "curves.csv", "results.json", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    assert load_run_config(run_dir) == TINY
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "finished" and meta["seeds"] == [0, 1, 2]
    for key in ("git", "versions", "devices", "command", "started", "ended", "compile_seconds", "run_seconds"):
        assert key in meta, key
    rows = list(csv.DictReader(open(run_dir / "curves.csv")))
    assert len(rows) == TINY.num_seeds * TINY.num_updates
    assert {int(r["update"]) for r in rows} == set(range(1, TINY.num_updates + 1))
    results = json.loads((run_dir / "results.json").read_text())
    np.testing.assert_allclose(results["configs"][0]["finals"], reference.eval_returns, rtol=1e-6)
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((run_dir / "tb").rglob("events.out.tfevents*"))
    assert (run_dir / "checkpoints" / "latest.json").is_file()


@pytest.mark.timeout(240)
def test_resume_equals_uninterrupted_and_refusals(tmp_path, reference):
    with pytest.raises(RunInterrupted) as info:
        train_in_run_dir(TINY, out=tmp_path, name="r", checkpoint_every=2, stop_after=2, num_devices=1)
    run_dir = info.value.run_dir
    assert info.value.update == 2
    assert "jaxgrid-train --resume" in str(info.value)
    assert json.loads((run_dir / "metadata.json").read_text())["status"] == "interrupted"
    rows = list(csv.DictReader(open(run_dir / "curves.csv")))
    assert len(rows) == TINY.num_seeds * 2  # the curves so far

    with pytest.raises(RunDirExistsError):
        train_in_run_dir(TINY, out=tmp_path, name="r")
    changed = TINY.replace(learning_rate=1e-4, num_envs=4)
    with pytest.raises(ConfigMismatchError, match=r"learning_rate: 0\.0025 \(run\) -> 0\.0001 \(asked\)") as err:
        train_in_run_dir(changed, resume=run_dir)
    assert "num_envs: 8 (run) -> 4 (asked)" in str(err.value)

    result, _ = train_in_run_dir(None, resume=run_dir, checkpoint_every=2, num_devices=1)
    assert_same_training(result, reference)
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "finished" and len(meta["resumes"]) == 1


@pytest.mark.timeout(240)
def test_sigint_in_the_last_chunk_stops_before_the_evaluation(tmp_path, monkeypatch, capsys, reference):
    """Ctrl-C while the last chunk runs: the run stops after its checkpoint instead of going on to
    the final evaluation; the resume says the training was finished, evaluates it (the same
    results as uninterrupted) and keeps the original command in metadata.json."""
    from train import runs

    real_save = runs._save

    def save_then_sigint(run, done, *args):
        real_save(run, done, *args)
        if done == TINY.num_updates:
            os.kill(os.getpid(), signal.SIGINT)  # the SigintGuard's handler takes it

    monkeypatch.setattr(runs, "_save", save_then_sigint)
    with pytest.raises(RunInterrupted, match="before the final evaluation") as info:
        train_in_run_dir(TINY, out=tmp_path, name="last", checkpoint_every=2, num_devices=1, tensorboard=False)
    run_dir = info.value.run_dir
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "interrupted" and meta["updates_done"] == TINY.num_updates
    assert not (run_dir / "results.json").exists()
    monkeypatch.setattr(runs, "_save", real_save)
    command = meta["command"]
    monkeypatch.setattr(sys, "argv", ["jaxgrid-train", "--resume", str(run_dir)])
    result, _ = train_in_run_dir(None, resume=run_dir, num_devices=1, tensorboard=False)
    assert "finished training before (6 updates)" in capsys.readouterr().err
    assert_same_training(result, reference)
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "finished" and meta["command"] == command
    assert meta["resume_commands"] == [["jaxgrid-train", "--resume", str(run_dir)]]


@pytest.mark.timeout(240)
def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(RunInterrupted) as info:
        train_in_run_dir(TINY, out=tmp_path, name="r", checkpoint_every=2, stop_after=2, num_devices=1)
    ckpt = next((info.value.run_dir / "checkpoints").glob("ckpt_*.msgpack"))
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"{ckpt.name} is truncated or corrupted"):
        train_in_run_dir(None, resume=info.value.run_dir, num_devices=1)


@pytest.mark.timeout(300)
def test_sigint_saves_checkpoint_and_resume_finishes(tmp_path):
    """A real Ctrl-C to a CLI run with its progress bar: it saves, says how to resume on a line of
    its own (not after the bar), and the resumed run finishes with the uninterrupted run's results."""
    args = ["--seeds", "0-1", "--total-timesteps", str(8 * 16 * 400), "--num-envs", "8", "--num-steps", "16",
            "--num-eval-envs", "4", "--checkpoint-every", "5", "--out", str(tmp_path), "--name", "sig",
            "--devices", "1", "--no-cache"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "train.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    ckpt = tmp_path / "sig" / "checkpoints" / "latest.json"
    deadline = time.time() + 180
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "--resume" in err
    assert "/400 [" in err  # the bar was drawn
    lines = err.replace("\r", "\n").splitlines()
    assert any(line.startswith("jaxgrid-train: interrupted at update") for line in lines), err[-2000:]
    meta = json.loads((tmp_path / "sig" / "metadata.json").read_text())
    assert meta["status"] == "interrupted" and 0 < meta["updates_done"] < 400
    resumed = subprocess.run([sys.executable, "-m", "train.cli", "--resume", str(tmp_path / "sig"), "--quiet",
                              "--devices", "1", "--no-cache"], capture_output=True, text=True, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "sig" / "metadata.json").read_text())["status"] == "finished"
    rows = list(csv.DictReader(open(tmp_path / "sig" / "curves.csv")))
    assert len(rows) == 2 * 400


@pytest.mark.timeout(240)
def test_eval_command_reports_greedy_and_stochastic_and_writes_gif(tmp_path, reference):
    _, run_dir = train_in_run_dir(TINY, out=tmp_path, name="e", checkpoint_every=3, num_devices=1, tensorboard=False)
    proc = subprocess.run([sys.executable, "-m", "train.cli", "eval", str(run_dir), "--episodes", "8"],
                          capture_output=True, text=True, timeout=200, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr
    assert "greedy" in proc.stdout and "stochastic" in proc.stdout
    out = json.loads((run_dir / "eval.json").read_text())
    config = out["configs"][0]
    assert config["seeds"] == [0, 1, 2] and out["update"] == TINY.num_updates
    # the 4x4 grid and its start are deterministic, so every greedy episode of a seed is the same
    # episode the trainer's own greedy evaluation ran
    np.testing.assert_allclose(config["greedy"], reference.eval_returns, rtol=1e-5)
    assert all(-2.0 - 1e-4 <= v <= 0.8 + 1e-6 for v in config["stochastic"])
    gif = Path(config["gif"])
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    missing = subprocess.run([sys.executable, "-m", "train.cli", "eval", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "is not a run directory" in missing.stderr


def test_run_dir_programs_have_no_host_callback():
    """Chunked programs stay cacheable by jax's persistent compilation cache (a host callback in
    an executable makes jax skip the cache), so a repeated CLI run loads them instead of compiling."""
    from train.runs import _build_program

    program = _build_program(TINY, num_devices=1)
    texts = [program.init.as_text(), program.evaluate.as_text(), program.chunk(2).as_text()]
    assert all("ENTRY" in t for t in texts)
    for text in texts:
        assert not [t for t in custom_calls(text) if "callback" in t]
    # The in-program progress of train.ppo.make_train does put one in: the check can fail.
    import jax

    from train.placement import rng_config, seed_keys
    from train.ppo import make_train
    from train.types import make_hparams

    trainer = make_train(TINY, progress=lambda *a: None)
    with rng_config():
        keys = seed_keys(TINY.seeds)
        text = jax.jit(trainer.train).lower(keys, make_hparams(TINY)).compile().as_text()
    assert [t for t in custom_calls(text) if "callback" in t]


def custom_calls(hlo_text: str) -> set[str]:
    import re

    return set(re.findall(r'custom_call_target="([^"]+)"', hlo_text))


def test_run_seconds_exclude_compiling_a_chunk(tmp_path, monkeypatch):
    """A chunk program is compiled on first use; that time is compile time, not run time (it was
    once timed as running, which made a run directory's env steps/s several times too low)."""
    from train import runs

    build = runs._build_program

    def slow_to_compile(*args, **kwargs):
        program = build(*args, **kwargs)
        make = program.make_run_updates

        def make_slowly(n):
            time.sleep(1.5)
            return make(n)

        program.make_run_updates = make_slowly
        return program

    monkeypatch.setattr(runs, "_build_program", slow_to_compile)
    result, _ = train_in_run_dir(TINY, out=tmp_path, name="timed", checkpoint_every=4)  # chunks of 4 and 2
    assert result.compile_seconds >= 3.0  # two chunk sizes, each 1.5 s to "compile"
    assert result.run_seconds < 1.5
