"""Nothing lost, nothing silent: the run directory under careless use, with real processes and real
signals in a temporary folder (issue 11, items 1-5, 10-12).

Each test states the smallest input that used to lose data or fail silently. Full disks and
read-only directories are simulated by making the write (or ``os.open``) raise the OS error: a
chmod does not stop root, and CI may run as root.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.train.test_rundir import make_fake_run, tree_snapshot
from tests.train.test_runs import TINY, assert_same_training
from train import checkpoint, cli, runs, train
from train.checkpoint import CheckpointError
from train.rundir import RunIOError
from train.runlock import RunLock
from train.runs import RunInterrupted, train_in_run_dir

REPO = Path(__file__).resolve().parents[2]
TINY_FLAGS = ["--seeds", "0", "--total-timesteps", "256", "--num-envs", "8", "--num-steps", "16",
              "--num-eval-envs", "2", "--quiet", "--devices", "1"]


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory) -> Path:
    """One jax compilation cache for this module's subprocesses (not the user's)."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(scope="module")
def reference():
    return train(TINY)


def _env(cache_home: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", XDG_CACHE_HOME=str(cache_home))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return env


def run_cli(cwd: Path, cache_home: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train.cli", *args], cwd=cwd, env=_env(cache_home),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(cwd: Path, cache_home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train.cli", *args], cwd=cwd, env=_env(cache_home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------------------------------------
# items 1, 2, 5, 9, 10: a start that fails changes nothing, and says why in one line
@pytest.mark.timeout(600)
def test_cli__a_refused_start_touches_nothing_and_says_why(tmp_path, cache_home):
    make_fake_run(tmp_path / "runs" / "old")
    make_fake_run(tmp_path / "runs" / "base")
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "precious.txt").write_text("precious")
    (tmp_path / "afile").write_text("not a directory")
    before = tree_snapshot(tmp_path)
    typo = ["--env-kwargs", "max_steps_in_episod=100"]
    cases = [
        # item 1: --name is one plain component; only a jaxgrid run is ever replaced
        (["--name", "..", "--overwrite", *typo], 2, "--name '..' must be one plain directory name"),
        (["--name", "..", "--overwrite", *TINY_FLAGS], 2, "--name '..' must be one plain directory name"),
        (["--name", ".", "--overwrite", *TINY_FLAGS], 2, "--name '.' must be one plain directory name"),
        (["--name", "runs/old", "--out", ".", "--overwrite", *TINY_FLAGS], 2, "holds a path separator"),
        (["--out", ".", "--name", "mydata", "--overwrite", *TINY_FLAGS], 2,
         "refusing to replace mydata: it is not a jaxgrid run directory"),
        # item 2: the old run survives a replacement whose config is bad
        (["--name", "base", "--overwrite", *typo, *TINY_FLAGS], 2, "max_steps_in_episod"),
        # item 5: bad values leave no directory behind
        (["--name", "new", *typo, *TINY_FLAGS], 2, "max_steps_in_episod"),
        (["--name", "new", "--checkpoint-every", "-1"], 2,
         "argument --checkpoint-every/--checkpoint_every: must be an int >= 1, got -1"),
        # item 9: CLI numbers and repeated flags
        (["--devices", "0"], 2, "argument --devices: must be an int >= 1, got 0"),
        (["--devices", "-1"], 2, "argument --devices: must be an int >= 1, got -1"),
        (["--seeds", "a"], 2, "--seeds: 'a' is not a seed"),
        (["--name", "x", "--name", "y"], 2, "--name is given more than once"),
        # item 10: --out is a file
        (["--out", "afile", *TINY_FLAGS], 1, "cannot create a run directory in afile: --out is a file"),
    ]
    for args, code, message in cases:
        proc = run_cli(tmp_path, cache_home, *args)
        assert proc.returncode == code, (args, proc.stderr[-2000:])
        assert message in proc.stderr, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, args
        assert tree_snapshot(tmp_path) == before, args  # not even a lock file or an empty directory


# ------------------------------------------------------------------------------------------------
# item 3: one writer per run, for the run's whole life; a killed writer's lock is free
@pytest.mark.timeout(600)
def test_cli__a_second_writer_is_refused_while_a_run_trains(tmp_path, cache_home):
    long_run = ["--out", "runs", "--name", "ow", "--seeds", "0", "--total-timesteps", str(8 * 16 * 200_000),
                "--num-envs", "8", "--num-steps", "16", "--num-eval-envs", "2", "--checkpoint-every", "20",
                "--quiet", "--devices", "1"]
    a = start_cli(tmp_path, cache_home, *long_run)
    run = tmp_path / "runs" / "ow"
    try:
        deadline = time.time() + 240
        while not (run / "checkpoints" / "latest.json").exists() and time.time() < deadline and a.poll() is None:
            time.sleep(0.2)
        assert (run / "checkpoints" / "latest.json").exists(), a.communicate(timeout=30)
        config_before = (run / "config.json").read_bytes()
        for args in (long_run + ["--overwrite"], ["--resume", "runs/ow", "--quiet", "--devices", "1"]):
            b = run_cli(tmp_path, cache_home, *args)
            assert b.returncode == 2, b.stderr[-2000:]
            assert f"runs/ow is in use by another jaxgrid-train (pid {a.pid} on host " in b.stderr, b.stderr[-2000:]
            assert "Traceback" not in b.stderr
            assert a.poll() is None, "the first run must still be training"
        assert (run / "config.json").read_bytes() == config_before
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
    # the kernel released the killed writer's lock, and what it saved still verifies
    lock = RunLock(run)
    lock.acquire("now", "resume it")
    lock.release()
    assert checkpoint.find_checkpoint(run / "checkpoints").update >= 20


# ------------------------------------------------------------------------------------------------
# item 4: a lost manifest is recovered from; no existing checkpoint is overwritten
@pytest.mark.timeout(600)
def test_cli__resume_without_latest_json_recovers_and_overwrites_no_checkpoint(tmp_path, cache_home, reference):
    with pytest.raises(RunInterrupted):
        train_in_run_dir(TINY, out=tmp_path / "runs", name="x", checkpoint_every=2, stop_after=4, num_devices=1)
    ckpts = tmp_path / "runs" / "x" / "checkpoints"
    (ckpts / "latest.json").unlink()
    newest = ckpts / "ckpt_00000004.msgpack"
    kept = (newest.stat().st_ino, newest.read_bytes())
    proc = run_cli(tmp_path, cache_home, "--resume", "runs/x", "--quiet", "--devices", "1", "--checkpoint-every", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: resuming from ckpt_00000004.msgpack (update 4)" in proc.stderr
    assert "latest.json is missing" in proc.stderr
    assert (newest.stat().st_ino, newest.read_bytes()) == kept  # never rewritten
    results = json.loads((tmp_path / "runs" / "x" / "results.json").read_text())
    np.testing.assert_allclose(results["configs"][0]["finals"], reference.eval_returns, rtol=1e-6)
    assert len(list(csv.DictReader(open(tmp_path / "runs" / "x" / "curves.csv")))) == 3 * TINY.num_updates


# ------------------------------------------------------------------------------------------------
# item 11: Ctrl-C while starting (compiling): no traceback, and what to do next
def _sigint_at_start(cwd: Path, cache_home: Path, *args: str) -> tuple[int, str]:
    proc = start_cli(cwd, cache_home, *args, "--no-cache")
    err = ""
    deadline = time.time() + 120
    while "jaxgrid-train: GridWorld-4x4-v0" not in err and time.time() < deadline and proc.poll() is None:
        err += proc.stderr.readline()  # the header is printed just before the run starts
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, err + rest


@pytest.mark.timeout(600)
def test_cli__ctrl_c_while_starting_leaves_nothing_and_no_traceback(tmp_path, cache_home):
    code, err = _sigint_at_start(tmp_path, cache_home, "--out", "runs", "--name", "s", *TINY_FLAGS)
    assert code == 130, err
    assert "Traceback" not in err and "no run directory was written" in err and "run the command again" in err
    assert not (tmp_path / "runs" / "s").exists()
    assert not list((tmp_path / "runs").glob(".s.new-*"))  # no staging directory left

    with pytest.raises(RunInterrupted):
        train_in_run_dir(TINY, out=tmp_path / "runs", name="r", checkpoint_every=2, stop_after=2, num_devices=1)
    before = tree_snapshot(tmp_path / "runs" / "r")
    code, err = _sigint_at_start(tmp_path, cache_home, "--resume", "runs/r", "--quiet", "--devices", "1")
    assert code == 130, err
    assert "Traceback" not in err and "runs/r is unchanged; resume with: jaxgrid-train --resume runs/r" in err
    assert tree_snapshot(tmp_path / "runs" / "r") == before  # metadata.json status not rewritten


# ------------------------------------------------------------------------------------------------
# items 10, 12: a full disk at a checkpoint; resuming after it (stray temp files, permissions,
# this invocation's throughput)
@pytest.mark.timeout(600)
def test_full_disk_at_a_checkpoint_is_one_line_and_the_run_resumes_exactly(tmp_path, monkeypatch, reference):
    real_write = checkpoint.atomic_write_bytes

    def disk_full_at_update_4(path, data, exclusive=False):
        if Path(path).name == "ckpt_00000004.msgpack":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(path, data, exclusive)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", disk_full_at_update_4)
    old_umask = os.umask(0o022)
    try:
        with pytest.raises(RunIOError) as info:
            train_in_run_dir(TINY, out=tmp_path, name="r", checkpoint_every=2, num_devices=1)
        run = tmp_path / "r"
        message = str(info.value)
        assert message == (f"cannot write a checkpoint in {run}/checkpoints: No space left on device; the run is "
                           f"resumable from update 2: jaxgrid-train --resume {run}")
        meta = json.loads((run / "metadata.json").read_text())
        assert meta["status"] == "failed" and meta["error"] == message
        monkeypatch.setattr(checkpoint, "atomic_write_bytes", real_write)
        # what a writer killed mid-write leaves behind
        (run / ".metadata.json.0badf00d.tmp").write_bytes(b"half")
        (run / "checkpoints" / ".ckpt_00000004.msgpack.0badf00d.tmp").write_bytes(b"half")
        result, _ = train_in_run_dir(None, resume=run, checkpoint_every=2, num_devices=1)
    finally:
        os.umask(old_umask)
    assert_same_training(result, reference)
    assert not list(run.rglob("*.tmp"))
    # the resumed invocation ran updates 3..6: its own env steps over its own time
    steps_per_update = TINY.batch_size * TINY.num_seeds
    assert result.env_steps == 4 * steps_per_update
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["status"] == "finished" and meta["env_steps"] == 4 * steps_per_update
    assert meta["env_steps_total"] == TINY.num_updates * steps_per_update
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.rglob("*") if p.is_file() and "tb" not in p.parts}
    assert modes and set(modes.values()) == {0o644}, modes


# ------------------------------------------------------------------------------------------------
# items 10, 12: a corrupted newest checkpoint, a read-only run directory, eval that cannot write
@pytest.mark.timeout(600)
def test_resume_checks_checkpoints_and_the_disk_before_compiling(tmp_path, monkeypatch, capsys, reference):
    with pytest.raises(RunInterrupted):
        train_in_run_dir(TINY, out=tmp_path, name="r", checkpoint_every=2, stop_after=4, num_devices=1)
    run, ckpts = tmp_path / "r", tmp_path / "r" / "checkpoints"
    older, newest = ckpts / "ckpt_00000002.msgpack", ckpts / "ckpt_00000004.msgpack"
    intact = older.read_bytes()
    built = []
    real_build = runs._build_program
    monkeypatch.setattr(runs, "_build_program", lambda *a, **k: built.append((newest.exists(), older.exists()))
                        or real_build(*a, **k))

    # every checkpoint corrupted: refused before compiling, and the run is left as it was
    for path in (older, newest):
        path.write_bytes(path.read_bytes()[:-9])
    before = tree_snapshot(run)
    with pytest.raises(CheckpointError, match="no checkpoint in .* verifies"):
        train_in_run_dir(None, resume=run, num_devices=1)
    assert built == [] and tree_snapshot(run) == before  # metadata.json status not rewritten

    # a read-only run directory: one line, before compiling, saying what is safe
    older.write_bytes(intact)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # no file can be created inside the run
        if flags & os.O_CREAT and Path(os.path.abspath(path)).is_relative_to(run):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    before = tree_snapshot(run)
    with pytest.raises(RunIOError, match=rf"cannot write in {run}: Permission denied; the run is unchanged "
                                         r"\(resumable from update 2\)"):
        train_in_run_dir(None, resume=run, num_devices=1)
    assert built == [] and tree_snapshot(run) == before
    monkeypatch.setattr(os, "open", real_open)

    # the corrupted newest one is passed over (and kept aside) before compiling; the intact one is used
    capsys.readouterr()
    result, _ = train_in_run_dir(None, resume=run, checkpoint_every=2, num_devices=1)
    assert built == [(False, True)]  # at compile time ckpt 4 was already set aside
    assert_same_training(result, reference)
    err = capsys.readouterr().err
    assert "warning: resuming from ckpt_00000002.msgpack (update 2)" in err and "truncated or corrupted" in err
    assert (ckpts / "ckpt_00000004.msgpack.corrupt").exists()

    # eval prints its results even when it cannot write them
    monkeypatch.setattr(os, "open", read_only)
    code = cli.eval_main([str(run), "--episodes", "4", "--no-gif"])
    monkeypatch.setattr(os, "open", real_open)
    out, err = capsys.readouterr()
    assert code == 1 and "greedy" in out and "stochastic" in out
    assert f"cannot write {run}/eval.json: Permission denied" in err
    assert not (run / "eval.json").exists()

    # a finished run whose checkpoints are gone is not silently started over
    for path in ckpts.iterdir():
        path.unlink()
    with pytest.raises(CheckpointError, match="records a finished run but .* holds no checkpoint; refusing to start"):
        train_in_run_dir(None, resume=run, num_devices=1)
