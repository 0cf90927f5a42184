"""The exclusive lock a process holds on a run directory's name for the whole life of a run.

``<out>/<name>`` is locked through ``<out>/.<name>.lock``, a file beside the run directory (not in
it, so the lock also covers a run directory being created, or replaced by ``--overwrite``). The
lock is the operating system's (``fcntl.flock``; ``msvcrt.locking`` on Windows): the kernel drops it
when the holder exits or is killed, so it never goes stale. While held, the lock file holds who
holds it (pid, host, start time, command line), which a refused second writer prints.

The lock file itself is left in place when released: deleting it would let a waiter that opened
the old file and a newcomer that creates a new one both "hold" the lock.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLockedError(RuntimeError):
    """Another process holds the run's lock (the message names it)."""


def lock_path(run_dir: str | os.PathLike) -> Path:
    """``<out>/.<name>.lock`` for the run directory ``<out>/<name>`` (symlinks resolved, so every
    spelling of one run's path names one lock)."""
    run_dir = Path(os.path.realpath(run_dir))
    return run_dir.parent / f".{run_dir.name}.lock"


class RunLock:
    """An exclusive, non-blocking OS lock on a run directory's name.

    Args:
        run_dir: the run directory (it need not exist yet; its parent must).
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = lock_path(run_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, started: str, doing: str) -> None:
        """Takes the lock or refuses at once.

        Args:
            started: this process's start time (ISO 8601), recorded for a refused second writer.
            doing: what the caller is about to do, for the refusal message ("resume it", ...).

        Raises:
            RunLockedError: another process holds it; names the holder.
            OSError: the lock file cannot be created (missing or read-only parent, ...).
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.run_dir} is in use by another jaxgrid-train ({holder}); "
                f"refusing to {doing}. Wait for that process to end, or stop it (Ctrl-C saves a "
                "checkpoint) and then resume"
            )
        info = {"pid": os.getpid(), "host": platform.node(), "started": started,
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drops the lock (idempotent). The kernel drops it too if the process dies."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        _unlock(fd)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "holder not recorded yet: it is just starting"
    return (f"pid {info['pid']} on host {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{info.get('command', '?')}")


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows

    # NOTE: lock one byte far past the holder text, so a refused process can still read it.
    os.lseek(fd, 1 << 20, os.SEEK_SET)  # pragma: no cover
    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    import msvcrt  # pragma: no cover - Windows

    os.lseek(fd, 1 << 20, os.SEEK_SET)  # pragma: no cover
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # pragma: no cover

