"""A run directory held by this process: its name rules, its lock, atomic writes and metadata.

Creating a run (``RunDir.create``): the name must be one plain path component; the lock on the name
is taken (``train.runlock``); the first files are written into a hidden sibling
``<out>/.<name>.new-<hex>``, and ``commit`` renames that into place. An old run of the same name
(``--overwrite``; only a directory that is a jaxgrid run, i.e. holds ``config.json`` or
``metadata.json``, is ever replaced) is moved aside and deleted only after the new one is in place,
so a start that fails before ``commit`` changes nothing on disk but the hidden lock file.

Opening a run (``RunDir.open``, for ``--resume``): the same lock, then ``check_writable`` and
``remove_stray_temp_files`` before anything is changed.

Every OS error of a write becomes a ``RunIOError``: one line naming the path, the cause and what is
still safe (``RunDir.safe``, which the caller keeps current: "resumable from update 4").
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from train.checkpoint import atomic_write_bytes, atomic_write_json, remove_stray_temp_files
from train.runlock import RunLock

RUN_MARKERS = ("config.json", "metadata.json")
CHECKPOINT_DIR = "checkpoints"


class RunDirExistsError(FileExistsError):
    """The run directory exists and neither resume nor overwrite was asked for (or overwrite was
    asked for a directory that is not a jaxgrid run)."""


class RunIOError(RuntimeError):
    """An OS error at a run's path: the message names the path, the cause and what is still safe.

    ``result`` holds the ``TrainResult`` when training finished but its files could not be written.
    """

    def __init__(self, doing: str, path: str | os.PathLike, err: OSError, safe: str):
        reason = err.strerror or str(err)
        super().__init__(f"cannot {doing} {path}: {reason}; {safe}")
        self.path, self.errno = Path(path), err.errno
        self.result: Any = None


def check_run_name(name: str) -> str:
    """Returns ``name`` if it is one plain path component, else raises ``ValueError`` saying why.

    Refused: empty, ``.``, ``..``, absolute paths, path separators (``/``, ``\\``) and control
    characters.
    """
    why = None
    if not isinstance(name, str) or not name:
        why = "it is empty"
    elif name in (".", ".."):
        why = f"{name!r} names a directory above or at --out, not a run inside it"
    elif os.path.isabs(name) or any(sep in name for sep in ("/", "\\", os.sep)):
        why = "it holds a path separator; use --out for the parent directory"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        why = "it holds a control character"
    if why:
        raise ValueError(f"--name {name!r} must be one plain directory name inside --out: {why}")
    return name


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a jaxgrid run (its config.json or metadata.json)."""
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and any((path / m).is_file() for m in RUN_MARKERS)


def check_can_create(out: str | os.PathLike, name: str, overwrite: bool) -> Path:
    """Read-only checks of ``out/name`` before anything is written; returns the path.

    Raises:
        ValueError: a bad name. RunDirExistsError: the path exists (and ``overwrite`` was not asked
        for, or it is not a jaxgrid run, or it is a symlink). RunIOError: ``out`` is a file.
    """
    path = Path(out) / check_run_name(name)
    if Path(out).exists() and not Path(out).is_dir():
        raise RunIOError("create a run directory in", out,
                         NotADirectoryError(errno.ENOTDIR, "--out is a file, not a directory"), "nothing was written")
    if not (path.exists() or path.is_symlink()):
        return path
    if not overwrite:
        raise RunDirExistsError(
            f"run directory {path} already exists; nothing was written. Use --resume {path} to "
            "continue it, --overwrite to replace it, or another --name"
        )
    if not is_run_dir(path):
        kind = ("a symlink" if path.is_symlink()
                else "not a jaxgrid run directory (it has no config.json or metadata.json)")
        raise RunDirExistsError(
            f"refusing to replace {path}: it is {kind}; --overwrite replaces only jaxgrid runs. "
            "Nothing was written; choose another --name or --out"
        )
    return path


class RunDir:
    """A run directory this process writes (or, with ``writer=False``, only names: the other
    processes of a multi-process job). Use ``create`` or ``open``; ``close`` when done."""

    def __init__(self, path: Path, lock: RunLock | None, writer: bool, staged: Path | None = None):
        self.path = path
        self.lock = lock
        self.writer = writer
        self._staged = staged
        self.meta: dict[str, Any] = {}
        self.last_saved = 0  # the update of the newest checkpoint on disk (kept by the caller)
        self.safe = "nothing was written" if staged is not None else "the run is unchanged"

    @property
    def where(self) -> Path:
        """Where files go now: the hidden staging directory until ``commit``, then ``path``."""
        return self._staged if self._staged is not None else self.path

    @property
    def checkpoints(self) -> Path:
        return self.where / CHECKPOINT_DIR

    # ------------------------------------------------------------------------------- open
    @classmethod
    def create(cls, out: str | os.PathLike, name: str, overwrite: bool, started: str, writer: bool = True) -> RunDir:
        """Locks ``out/name`` and makes its staging directory (see the module docstring).

        Raises:
            ValueError, RunDirExistsError: see ``check_can_create``. RunLockedError: another
            process holds the name. RunIOError: ``out`` cannot be created or written.
        """
        path = check_can_create(out, name, overwrite)
        if not writer:
            return cls(path, None, writer=False)
        out = Path(out)
        lock = RunLock(path)
        try:
            out.mkdir(parents=True, exist_ok=True)
            lock.acquire(started, doing="replace it" if overwrite else "create it")
        except OSError as err:
            raise RunIOError("create a run directory in", out, err, "nothing was written") from None
        try:
            _recover_interrupted_swap(path)
            check_can_create(out, name, overwrite)  # again, now that no other writer can act
            staged = out / f".{name}.new-{secrets.token_hex(4)}"
            staged.mkdir()
        except OSError as err:
            lock.release()
            if isinstance(err, RunDirExistsError):
                raise
            raise RunIOError("create a run directory in", out, err, "nothing was written") from None
        except BaseException:
            lock.release()
            raise
        return cls(path, lock, writer=True, staged=staged)

    @classmethod
    def open(cls, path: str | os.PathLike, started: str, writer: bool = True) -> RunDir:
        """Locks the existing run ``path`` (for a resume); writes nothing yet.

        Raises:
            RunLockedError: another process holds it. RunIOError: the lock cannot be taken.
        """
        path = Path(path)
        if not writer:
            return cls(path, None, writer=False)
        lock = RunLock(path)
        try:
            lock.acquire(started, doing="resume it")
        except OSError as err:
            raise RunIOError("lock", lock.path, err, "the run is unchanged") from None
        try:
            _recover_interrupted_swap(path)
        except BaseException:
            lock.release()
            raise
        return cls(path, lock, writer=True)

    def check_writable(self) -> None:
        """Writes and removes a probe file in the run and checkpoint directories.

        Raises:
            RunIOError: naming the directory that cannot be written, and ``safe``.
        """
        if not self.writer:
            return
        for directory in (self.where, self.checkpoints):
            if not directory.is_dir():
                continue
            probe = directory / f".write-probe.{secrets.token_hex(4)}.tmp"
            try:
                atomic_write_bytes(probe, b"")
                probe.unlink()
            except OSError as err:
                raise RunIOError("write in", directory, err, self.safe) from None

    def remove_stray_temp_files(self) -> list[Path]:
        """Deletes the temp files a killed writer left (we hold the lock, so they are stray)."""
        if not self.writer:
            return []
        return [p for d in (self.where, self.checkpoints) for p in remove_stray_temp_files(d)]

    # ------------------------------------------------------------------------------ writes
    def write_json(self, name: str, obj: Any) -> None:
        """Writes ``<run>/<name>`` atomically (process 0 only)."""
        if self.writer:
            self.guard_io("write", self.where / name, lambda: atomic_write_json(self.where / name, obj))

    def write_metadata(self, **updates: Any) -> None:
        self.meta.update(updates)
        self.write_json("metadata.json", self.meta)

    def guard_io(self, doing: str, path: Path, write) -> Any:
        """Runs ``write()``; an OSError becomes a ``RunIOError`` naming ``path`` and ``safe``."""
        try:
            return write()
        except OSError as err:
            raise RunIOError(doing, getattr(err, "filename", None) or path, err, self.safe) from None

    # ------------------------------------------------------------------------------- close
    def commit(self) -> None:
        """Renames the staging directory into place; an old run there is replaced only now."""
        if self._staged is None:
            return
        staged, old = self._staged, None
        try:
            if self.path.exists():
                old = self.path.with_name(f".{self.path.name}.old-{secrets.token_hex(4)}")
                os.rename(self.path, old)
            os.rename(staged, self.path)
        except OSError as err:
            raise RunIOError("move the new run into", self.path, err,
                             f"the old run (if any) is kept; the new files are in {staged}") from None
        self._staged = None
        self.safe = "the run is unchanged"
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        """Removes an uncommitted staging directory and releases the lock (idempotent)."""
        if self._staged is not None:
            shutil.rmtree(self._staged, ignore_errors=True)
            self._staged = None
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _recover_interrupted_swap(path: Path) -> None:
    """Tidies what a writer killed inside ``commit`` or before it left beside ``path`` (call with
    the lock held): an old run moved aside is put back if nothing replaced it, else deleted;
    uncommitted staging directories are deleted."""
    for old in sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        if not (path.exists() or path.is_symlink()):
            os.rename(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for staged in path.parent.glob(f".{glob.escape(path.name)}.new-*"):
        shutil.rmtree(staged, ignore_errors=True)
