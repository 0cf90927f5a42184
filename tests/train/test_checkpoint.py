"""Checkpoints: round trip, atomic manifest, and clear errors for corrupted or mismatched files."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train.checkpoint import (
    MANIFEST,
    CheckpointError,
    atomic_write_json,
    latest_update,
    load_checkpoint,
    save_checkpoint,
)


def make_tree(scale=1.0):
    return {
        "params": {"w": jnp.arange(6.0).reshape(2, 3) * scale, "b": jnp.zeros(3)},
        "key": jax.random.PRNGKey(3),
        "count": jnp.int32(7),
        "flags": jnp.array([True, False]),
    }


def test_round_trip_is_exact_and_keeps_newest(tmp_path):
    assert latest_update(tmp_path) is None
    save_checkpoint(tmp_path, 10, make_tree(1.0))
    save_checkpoint(tmp_path, 20, make_tree(2.0))
    save_checkpoint(tmp_path, 30, make_tree(3.0), keep=2)
    assert latest_update(tmp_path) == 30
    assert sorted(p.name for p in tmp_path.glob("ckpt_*")) == ["ckpt_00000020.msgpack", "ckpt_00000030.msgpack"]
    update, tree = load_checkpoint(tmp_path, make_tree(0.0))
    assert update == 30
    expected = make_tree(3.0)
    for want, got in zip(jax.tree.leaves(expected), jax.tree.leaves(tree)):
        np.testing.assert_array_equal(np.asarray(want), got)
        assert np.asarray(want).dtype == got.dtype
    assert not list(tmp_path.glob("*.tmp"))


def test_typed_prng_keys_are_saved_as_key_data(tmp_path):
    tree = {"key": jax.random.key(5)}
    save_checkpoint(tmp_path, 1, tree)
    _, restored = load_checkpoint(tmp_path, tree)
    np.testing.assert_array_equal(restored["key"], jax.random.key_data(jax.random.key(5)))


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = save_checkpoint(tmp_path, 5, make_tree())
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match=rf"{path.name} is truncated or corrupted"):
        load_checkpoint(tmp_path, make_tree())


def test_flipped_byte_is_detected(tmp_path):
    path = save_checkpoint(tmp_path, 5, make_tree())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path, make_tree())


def test_corrupted_manifest_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path, make_tree())
    path = save_checkpoint(tmp_path, 5, make_tree())
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(CheckpointError, match=f"manifest .*{MANIFEST} is corrupted"):
        load_checkpoint(tmp_path, make_tree())
    save_checkpoint(tmp_path, 6, make_tree())
    for p in tmp_path.glob("ckpt_*"):
        p.unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        load_checkpoint(tmp_path, make_tree())
    del path


def test_mismatched_state_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path, 1, make_tree())
    other = make_tree()
    other["params"]["w"] = jnp.zeros((3, 3))
    with pytest.raises(CheckpointError, match="does not match the run's state"):
        load_checkpoint(tmp_path, other)
    missing = make_tree()
    missing["extra"] = jnp.zeros(2)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path, missing)


def test_atomic_json_writes_whole_file(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1.5, "b": [0, 1, 2]}
