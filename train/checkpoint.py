"""Checkpoints of the full runner state: written atomically, verified on load, no pickle.

A checkpoint directory holds ``ckpt_<update>.msgpack`` files and ``latest.json``, a manifest naming
the newest file with its size and SHA-256. Each checkpoint file verifies on its own: one header line
``JAXGRID-CKPT 2 update=<n> bytes=<payload bytes> sha256=<payload hex>`` and then the payload, flax's
msgpack serialisation of the pytree's state dict. So a run whose manifest is lost or corrupted is
recovered from the newest file that verifies (``find_checkpoint``), and a corrupted newest file is
passed over for the intact one before it. (Files written before the header existed verify only
through the manifest.) Existing checkpoint files are never overwritten.

Every file is written to a temporary name in the same directory (created with the permissions a
plain ``open`` gives, i.e. ``0o666`` less the umask), flushed, fsynced and then renamed over the
final name, so a crash leaves either the old or the new file, never half of one; a crash can leave a
``.<name>.<hex>.tmp`` file, which ``remove_stray_temp_files`` deletes.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

MANIFEST = "latest.json"
_MAGIC = b"JAXGRID-CKPT 2 "
_HEADER = re.compile(rb"JAXGRID-CKPT 2 update=(\d+) bytes=(\d+) sha256=([0-9a-f]{64})\n")
_FILE = re.compile(r"ckpt_(\d+)\.msgpack")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted or does not fit the expected state."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
    """Writes ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename).

    The file gets the permissions ``open(path, "wb")`` would give (``0o666`` less the umask).

    Args:
        exclusive: refuse to replace an existing ``path``.

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists.
        OSError: from the filesystem (no space, read-only, ...); no temp file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive and path.exists():
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", str(path))
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # NOTE: not tempfile.mkstemp, which creates 0o600 files whatever the umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Makes a rename in ``directory`` durable (best effort: not every OS can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stray_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Deletes the ``.<name>.<hex>.tmp`` files a killed writer left in ``directory``.

    Call it only while no other process writes there (a run holds its lock). Returns the removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in directory.glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink()
            removed.append(tmp)
    return removed


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode())


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.ndarray, jax.Array)):
        return np.asarray(x).tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _to_host(tree: Any) -> Any:
    """Device arrays (sharded or not) to NumPy; new-style typed PRNG keys to their raw data."""

    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(jax.device_get(x)) if isinstance(x, jax.Array) else x

    return jax.tree.map(leaf, tree)


def checkpoint_name(update: int) -> str:
    return f"ckpt_{int(update):08d}.msgpack"


def save_checkpoint(directory: str | os.PathLike, update: int, tree: Any, keep: int = 2) -> Path:
    """Saves ``tree`` as the checkpoint of ``update`` and points the manifest at it.

    Keeps the newest ``keep`` checkpoint files and removes older ones.

    Raises:
        FileExistsError: a checkpoint of ``update`` exists already (it is never overwritten).
        OSError: from the filesystem; the previous checkpoint and manifest are untouched.
    """
    directory = Path(directory)
    payload = serialization.msgpack_serialize(serialization.to_state_dict(_to_host(tree)))
    header = b"%supdate=%d bytes=%d sha256=%s\n" % (
        _MAGIC, int(update), len(payload), hashlib.sha256(payload).hexdigest().encode()
    )
    data = header + payload
    name = checkpoint_name(update)
    atomic_write_bytes(directory / name, data, exclusive=True)
    atomic_write_json(
        directory / MANIFEST,
        {"update": int(update), "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    for old in sorted(directory.glob("ckpt_*.msgpack"))[:-keep]:
        old.unlink()
    return directory / name


def latest_update(directory: str | os.PathLike) -> int | None:
    """The update count the manifest of ``directory`` names, or None if there is no manifest."""
    manifest = Path(directory) / MANIFEST
    if not manifest.exists():
        return None
    return int(_read_manifest(manifest)["update"])


def _read_manifest(manifest: Path) -> dict:
    try:
        info = json.loads(manifest.read_text())
        _ = info["update"], info["file"], info["sha256"], info["bytes"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint manifest {manifest} is corrupted or incomplete: {err}") from None
    return info


def _split_verified(path: Path, data: bytes) -> tuple[int | None, bytes]:
    """``(update, payload)`` of a checkpoint file's bytes; ``update`` is None for a file written
    before checkpoints carried their own header (it verifies only through the manifest).

    Raises:
        CheckpointError: the header's size or checksum does not match the payload.
    """
    if not data.startswith(_MAGIC):
        return None, data
    match = _HEADER.match(data)
    payload = data[match.end():] if match else b""
    if match is None or len(payload) != int(match[2]) or hashlib.sha256(payload).hexdigest() != match[3].decode():
        want = f"{int(match[2])} bytes with sha256 {match[3].decode()[:12]}…" if match else "a whole header line"
        raise CheckpointError(
            f"checkpoint file {path} is truncated or corrupted: {len(payload)} payload bytes, expected {want}"
        )
    return int(match[1]), payload


@dataclasses.dataclass
class FoundCheckpoint:
    """The newest checkpoint of a directory that verifies (``find_checkpoint``)."""

    update: int
    path: Path
    payload: bytes  # flax msgpack of the state dict
    passed_over: list[str]  # why each newer file (or the manifest) was not used, one line each
    newer_files: list[Path]  # checkpoint files newer than ``path`` that failed to verify


def find_checkpoint(directory: str | os.PathLike) -> FoundCheckpoint | None:
    """The newest checkpoint in ``directory`` whose bytes verify, read into memory.

    A lost or corrupted manifest and a corrupted newest file are passed over (and said so in
    ``passed_over``). Nothing is written.

    Returns:
        None if the directory holds no checkpoint file and no manifest.

    Raises:
        CheckpointError: checkpoint files exist (or a manifest names one) but none verifies;
            the message names every file and why.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    manifest, notes = None, []
    if manifest_path.exists():
        try:
            manifest = _read_manifest(manifest_path)
        except CheckpointError as err:
            notes.append(str(err))
    elif directory.is_dir() and any(directory.glob("ckpt_*.msgpack")):
        notes.append(f"checkpoint manifest {manifest_path} is missing")
    files = sorted(
        (int(m[1]), p) for p in directory.glob("ckpt_*.msgpack") if (m := _FILE.fullmatch(p.name))
    )[::-1]
    if manifest is not None and not (directory / manifest["file"]).exists():
        notes.append(f"checkpoint file {directory / manifest['file']} named by {manifest_path} is missing")
    failed: list[Path] = []
    for update, path in files:
        try:
            payload = _verify_file(path, manifest if manifest and manifest["file"] == path.name else None)
        except CheckpointError as err:
            notes.append(str(err))
            failed.append(path)
            continue
        return FoundCheckpoint(update, path, payload, notes, failed)
    if not files and manifest is None and not notes:
        return None
    raise CheckpointError(
        f"no checkpoint in {directory} verifies:\n  " + "\n  ".join(notes or ["no checkpoint files"])
    )


def _verify_file(path: Path, manifest: dict | None) -> bytes:
    """The payload of ``path`` if it verifies (its own header, and the manifest's entry if given)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} vanished while it was read") from None
    if manifest is not None and (
        len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]
    ):
        raise CheckpointError(
            f"checkpoint file {path} is truncated or corrupted: {len(data)} bytes, expected "
            f"{manifest['bytes']} with sha256 {manifest['sha256'][:12]}…"
        )
    update, payload = _split_verified(path, data)
    if update is None and manifest is None:
        raise CheckpointError(
            f"checkpoint file {path} cannot be verified: it has no checksum of its own (an older "
            f"jaxgrid wrote it) and {MANIFEST} does not name it"
        )
    return payload


def set_aside(paths: list[Path]) -> list[Path]:
    """Renames each path to ``<name>.corrupt`` (``.corrupt1``, ... if taken), so nothing ever
    overwrites it; returns the new paths."""
    moved = []
    for path in paths:
        target, k = path.with_name(path.name + ".corrupt"), 0
        while target.exists():
            k += 1
            target = path.with_name(f"{path.name}.corrupt{k}")
        os.replace(path, target)
        moved.append(target)
    return moved


def restore_checkpoint(found: FoundCheckpoint, target: Any) -> Any:
    """The checkpoint's tree in the structure of ``target`` (NumPy leaves).

    Raises:
        CheckpointError: naming the file, if it does not match ``target``'s structure, shapes and dtypes.
    """
    path = found.path
    host_target = _to_host(target)
    try:
        restored = serialization.from_state_dict(host_target, serialization.msgpack_restore(found.payload))
    except Exception as err:  # msgpack / flax raise many kinds; the message is what matters
        raise CheckpointError(f"checkpoint file {path} does not match the run's state: {err}") from None
    for want, got in zip(jax.tree.leaves(host_target), jax.tree.leaves(restored)):
        if np.shape(want) != np.shape(got) or np.asarray(want).dtype != np.asarray(got).dtype:
            raise CheckpointError(
                f"checkpoint file {path} does not match the run's state: a leaf of shape "
                f"{np.shape(got)} {np.asarray(got).dtype} where {np.shape(want)} {np.asarray(want).dtype} was expected"
            )
    return restored


def load_checkpoint(directory: str | os.PathLike, target: Any) -> tuple[int, Any]:
    """Loads the checkpoint the manifest names into the structure of ``target`` (strict: no
    recovery; ``find_checkpoint`` recovers from a lost manifest or a corrupted newest file).

    Returns:
        (update, tree) with NumPy leaves.

    Raises:
        CheckpointError: naming the file, if it is missing, truncated, corrupted or does not
            match ``target``'s structure and shapes.
    """
    directory = Path(directory)
    manifest = directory / MANIFEST
    if not manifest.exists():
        raise CheckpointError(f"no checkpoint in {directory} (missing {MANIFEST})")
    info = _read_manifest(manifest)
    path = directory / info["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} named by {manifest} is missing")
    payload = _verify_file(path, info)
    found = FoundCheckpoint(int(info["update"]), path, payload, [], [])
    return found.update, restore_checkpoint(found, target)
