"""Checkpoints: round trip, atomic manifest, clear errors for corrupted or mismatched files, and
recovery from a lost manifest or a corrupted newest file; an existing checkpoint is never overwritten."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train.checkpoint import (
    MANIFEST,
    CheckpointError,
    atomic_write_json,
    find_checkpoint,
    latest_update,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    set_aside,
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


def test_checkpoint_files_verify_on_their_own_without_the_manifest(tmp_path):
    save_checkpoint(tmp_path, 2, make_tree(2.0))
    save_checkpoint(tmp_path, 4, make_tree(4.0))
    (tmp_path / MANIFEST).unlink()
    found = find_checkpoint(tmp_path)
    assert found.update == 4 and found.path.name == "ckpt_00000004.msgpack"
    assert any("latest.json is missing" in line for line in found.passed_over)
    tree = restore_checkpoint(found, make_tree(0.0))
    np.testing.assert_array_equal(tree["params"]["w"], np.arange(6.0).reshape(2, 3) * 4.0)
    (tmp_path / MANIFEST).write_text("{not json")  # a corrupted manifest: the same recovery
    assert find_checkpoint(tmp_path).update == 4


def test_a_corrupted_newest_checkpoint_is_passed_over_for_the_intact_one(tmp_path):
    save_checkpoint(tmp_path, 2, make_tree(2.0))
    newest = save_checkpoint(tmp_path, 4, make_tree(4.0))
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0xFF
    newest.write_bytes(bytes(data))
    found = find_checkpoint(tmp_path)
    assert found.update == 2 and found.newer_files == [newest]
    assert any(f"{newest.name} is truncated or corrupted" in line for line in found.passed_over)
    moved = set_aside(found.newer_files)
    assert [p.name for p in moved] == ["ckpt_00000004.msgpack.corrupt"] and moved[0].read_bytes() == bytes(data)
    # with the manifest gone too, the header alone still catches the corruption
    save_checkpoint(tmp_path, 6, make_tree(6.0)).write_bytes(b"JAXGRID-CKPT 2 update=6 bytes=9")
    (tmp_path / MANIFEST).unlink()
    assert find_checkpoint(tmp_path).update == 2


def test_no_verifying_checkpoint_is_an_error_naming_every_file(tmp_path):
    assert find_checkpoint(tmp_path) is None  # nothing at all: a run that did no update yet
    for update in (2, 4):
        path = save_checkpoint(tmp_path, update, make_tree())
        path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* verifies:(.|\n)*ckpt_00000004(.|\n)*ckpt_00000002"):
        find_checkpoint(tmp_path)


def test_an_existing_checkpoint_is_never_overwritten(tmp_path):
    path = save_checkpoint(tmp_path, 2, make_tree(1.0))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_checkpoint(tmp_path, 2, make_tree(9.0))
    assert path.read_bytes() == before and latest_update(tmp_path) == 2


def test_checkpoints_written_before_the_header_load_through_the_manifest_only(tmp_path):
    import hashlib

    from flax import serialization

    from train.checkpoint import _to_host

    data = serialization.msgpack_serialize(serialization.to_state_dict(_to_host(make_tree(3.0))))
    (tmp_path / "ckpt_00000003.msgpack").write_bytes(data)
    atomic_write_json(tmp_path / MANIFEST, {"update": 3, "file": "ckpt_00000003.msgpack", "bytes": len(data),
                                            "sha256": hashlib.sha256(data).hexdigest()})
    update, tree = load_checkpoint(tmp_path, make_tree(0.0))
    assert update == 3 and find_checkpoint(tmp_path).update == 3
    np.testing.assert_array_equal(tree["params"]["w"], np.arange(6.0).reshape(2, 3) * 3.0)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match="cannot be verified: it has no checksum of its own"):
        find_checkpoint(tmp_path)
