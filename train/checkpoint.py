"""Checkpoints of the full runner state: written atomically, verified on load, no pickle.

A checkpoint directory holds ``ckpt_<update>.msgpack`` files (flax's msgpack serialisation of
the pytree's state dict) and ``latest.json``, a manifest naming the newest file with its size and
SHA-256. Every file is written to a temporary name in the same directory, flushed, fsynced and then
renamed over the final name, so a crash leaves either the old or the new file, never half of one.
Loading checks the manifest's checksum first and names the file when it does not match, instead of
failing deep inside msgpack.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

MANIFEST = "latest.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted or does not fit the expected state."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def save_checkpoint(directory: str | os.PathLike, update: int, tree: Any, keep: int = 2) -> Path:
    """Saves ``tree`` as the checkpoint of ``update`` and points the manifest at it.

    Keeps the newest ``keep`` checkpoint files and removes older ones.
    """
    directory = Path(directory)
    data = serialization.msgpack_serialize(serialization.to_state_dict(_to_host(tree)))
    name = f"ckpt_{int(update):08d}.msgpack"
    atomic_write_bytes(directory / name, data)
    atomic_write_json(
        directory / MANIFEST,
        {"update": int(update), "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    for old in sorted(directory.glob("ckpt_*.msgpack"))[:-keep]:
        old.unlink()
    return directory / name


def latest_update(directory: str | os.PathLike) -> int | None:
    """The update count of the newest checkpoint in ``directory``, or None if there is none."""
    manifest = Path(directory) / MANIFEST
    if not manifest.exists():
        return None
    return int(_read_manifest(manifest)["update"])


def _read_manifest(manifest: Path) -> dict:
    try:
        info = json.loads(manifest.read_text())
        _ = info["update"], info["file"], info["sha256"], info["bytes"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint manifest {manifest} is corrupted or incomplete: {err}") from None
    return info


def load_checkpoint(directory: str | os.PathLike, target: Any) -> tuple[int, Any]:
    """Loads the newest checkpoint into the structure of ``target`` (a pytree of the same shape).

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
    data = path.read_bytes()
    if len(data) != info["bytes"] or hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(
            f"checkpoint file {path} is truncated or corrupted: {len(data)} bytes, expected "
            f"{info['bytes']} with sha256 {info['sha256'][:12]}…"
        )
    host_target = _to_host(target)
    try:
        restored = serialization.from_state_dict(host_target, serialization.msgpack_restore(data))
    except Exception as err:  # msgpack / flax raise many kinds; the message is what matters
        raise CheckpointError(f"checkpoint file {path} does not match the run's state: {err}") from None
    for want, got in zip(jax.tree.leaves(host_target), jax.tree.leaves(restored)):
        if np.shape(want) != np.shape(got) or np.asarray(want).dtype != np.asarray(got).dtype:
            raise CheckpointError(
                f"checkpoint file {path} does not match the run's state: a leaf of shape "
                f"{np.shape(got)} {np.asarray(got).dtype} where {np.shape(want)} {np.asarray(want).dtype} was expected"
            )
    return int(info["update"]), restored
