"""Run directories on their own (no training): name rules, what --overwrite may replace and when,
the lock (a second writer refused by name; a killed holder's lock released), file permissions."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from train.checkpoint import atomic_write_bytes, atomic_write_json
from train.rundir import RunDir, RunDirExistsError, RunIOError, check_run_name
from train.runlock import RunLock, RunLockedError, lock_path

STARTED = "2026-01-01T00:00:00+00:00"


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def make_fake_run(path: Path) -> None:
    """A directory that looks like a jaxgrid run (what --overwrite checks for)."""
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", {"env_id": "GridWorld-4x4-v0"})
    atomic_write_json(path / "metadata.json", {"status": "finished"})
    atomic_write_bytes(path / "checkpoints" / "ckpt_00000006.msgpack", b"old checkpoint")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/abs", "../x", "runs/", "a\\b", "a\nb", "a\x00b", "a\x7f"])
def test_check_run_name__refuses_anything_but_one_plain_component(name):
    with pytest.raises(ValueError, match="--name .* must be one plain directory name inside --out"):
        check_run_name(name)


def test_check_run_name__accepts_plain_names():
    for name in ("base", "GridWorld-4x4-v0__20261124-013000__a1b2c3", "lr=3e-4 seed 0", ".hidden-run", "ünïcode"):
        assert check_run_name(name) == name


def test_create__refuses_to_replace_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "precious.txt").write_text("precious")
    (tmp_path / "link").symlink_to(tmp_path / "mydata")
    before = tree_snapshot(tmp_path)
    for name in ("mydata", "link"):
        with pytest.raises(RunDirExistsError, match=f"refusing to replace .*{name}.*only jaxgrid runs"):
            RunDir.create(tmp_path, name, overwrite=True, started=STARTED)
    with pytest.raises(RunDirExistsError, match="already exists; nothing was written"):
        RunDir.create(tmp_path, "mydata", overwrite=False, started=STARTED)
    assert tree_snapshot(tmp_path) == before  # not even a lock file


def test_create__replaces_an_old_run_only_at_commit(tmp_path):
    make_fake_run(tmp_path / "base")
    before = tree_snapshot(tmp_path / "base")
    with RunDir.create(tmp_path, "base", overwrite=True, started=STARTED) as run:
        run.write_json("config.json", {"env_id": "new"})
        assert run.where != run.path and run.where.parent == tmp_path and run.where.name.startswith(".base.new-")
        assert tree_snapshot(tmp_path / "base") == before  # not committed: the old run is whole
    # closed without commit (a failed start): nothing changed, no staging directory left
    assert tree_snapshot(tmp_path / "base") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".base.lock", "base"]
    with RunDir.create(tmp_path, "base", overwrite=True, started=STARTED) as run:
        run.write_json("config.json", {"env_id": "new"})
        run.commit()
        assert run.where == run.path == tmp_path / "base"
    assert json.loads((tmp_path / "base" / "config.json").read_text()) == {"env_id": "new"}
    assert not (tmp_path / "base" / "checkpoints").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".base.lock", "base"]


def test_create__a_swap_killed_halfway_is_undone_by_the_next_writer(tmp_path):
    """A writer killed between moving the old run aside and moving the new one in: the next
    writer of that name (holding the lock) puts the old run back and drops the half-made one."""
    make_fake_run(tmp_path / "base")
    before = tree_snapshot(tmp_path / "base")
    os.rename(tmp_path / "base", tmp_path / ".base.old-1234abcd")
    (tmp_path / ".base.new-99999999").mkdir()
    with RunDir.open(tmp_path / "base", started=STARTED):
        assert tree_snapshot(tmp_path / "base") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".base.lock", "base"]


def test_create__out_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunIOError, match=r"cannot create a run directory in .*afile: --out is a file, not a "
                                         r"directory; nothing was written"):
        RunDir.create(tmp_path / "afile", "r", overwrite=False, started=STARTED)


def test_lock__a_second_writer_is_refused_naming_the_holder(tmp_path):
    make_fake_run(tmp_path / "r")
    with RunDir.open(tmp_path / "r", started=STARTED):
        for attempt in (lambda: RunDir.open(tmp_path / "r", started=STARTED),
                        lambda: RunDir.create(tmp_path, "r", overwrite=True, started=STARTED)):
            with pytest.raises(RunLockedError, match=rf"in use by another jaxgrid-train \(pid {os.getpid()} on host "
                                                     rf".*started {re.escape(STARTED)}"):
                attempt()
    with RunDir.open(tmp_path / "r", started=STARTED):  # released on close
        pass


def test_lock__a_killed_holder_releases_it(tmp_path):
    """The lock is the kernel's: kill -9 of the holder frees it (no stale marker to clean up)."""
    run = tmp_path / "r"
    code = ("import sys, time; from train.runlock import RunLock; "
            f"lock = RunLock({str(run)!r}); lock.acquire('now', 'test'); print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {proc.pid} "):
            RunLock(run).acquire(STARTED, "resume it")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lock = RunLock(run)
    lock.acquire(STARTED, "resume it")
    assert json.loads(lock_path(run).read_text())["pid"] == os.getpid()
    lock.release()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes__get_the_permissions_of_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        atomic_write_json(tmp_path / "f.json", {})
    finally:
        os.umask(old)
    for name in ("f.bin", "f.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.json"]  # no temp file left


def test_atomic_write__a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    import errno

    atomic_write_bytes(tmp_path / "f", b"old")

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", lambda fd: full_disk(fd, b""))
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
