"""Run directory pieces: names, metadata, curves CSV, plot and TensorBoard files."""

import csv

import numpy as np
import pytest

from train import tracking


def fake_metrics(configs=2, seeds=3, updates=5):
    rng = np.random.default_rng(0)
    return {
        "episode_return": rng.normal(size=(configs, seeds, updates)).astype(np.float32),
        "value_loss": rng.random((configs, seeds, updates)).astype(np.float32),
    }


def test_run_names_are_unique_and_readable():
    name = tracking.new_run_name("GridWorld-4x4-v0")
    assert name.startswith("GridWorld-4x4-v0__")
    assert name != tracking.new_run_name("GridWorld-4x4-v0")


def test_metadata_has_versions_git_devices_and_command():
    meta = tracking.collect_metadata(seeds=[0, 1])
    assert meta["seeds"] == [0, 1]
    for pkg in ("python", "jax", "jaxlib", "flax", "optax", "gymnax", "jaxgrid"):
        assert meta["versions"][pkg], pkg
    assert meta["devices"]["device_count"] >= 1 and meta["devices"]["backend"] == "cpu"
    assert set(meta["git"]) == {"commit", "dirty"}
    assert isinstance(meta["command"], list) and meta["command"]


def test_curves_csv_has_one_row_per_update_per_seed_per_config(tmp_path):
    metrics = fake_metrics(configs=2, seeds=3, updates=5)
    tracking.write_curves_csv(tmp_path / "curves.csv", metrics, seeds=[4, 5, 6], config_labels=["a", "b"])
    rows = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert len(rows) == 2 * 3 * 5
    assert {(r["config"], int(r["seed"]), int(r["update"])) for r in rows} == {
        (c, s, u) for c in "ab" for s in (4, 5, 6) for u in range(1, 6)
    }
    row = next(r for r in rows if r["config"] == "b" and r["seed"] == "5" and r["update"] == "3")
    assert float(row["episode_return"]) == pytest.approx(float(metrics["episode_return"][1, 1, 2]))


def test_as_grid_rejects_bad_shapes():
    assert tracking.as_grid({"x": np.zeros((3, 4))})["x"].shape == (1, 3, 4)
    with pytest.raises(ValueError, match="metric 'x' has shape"):
        tracking.as_grid({"x": np.zeros(4)})


def test_plot_is_a_valid_png(tmp_path):
    metrics = fake_metrics(configs=4)
    tracking.plot_learning_curves(tmp_path / "lc.png", np.arange(1, 6) * 512, metrics["episode_return"], list("abcd"))
    data = (tmp_path / "lc.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    from PIL import Image

    with Image.open(tmp_path / "lc.png") as img:
        img.verify()


def test_tensorboard_one_run_per_seed_readable(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = fake_metrics(configs=1, seeds=2, updates=4)
    steps = np.arange(1, 5) * 100
    assert tracking.write_tensorboard(tmp_path, metrics, steps, seeds=[7, 9], config_labels=["default"])
    for s_index, seed in enumerate((7, 9)):
        acc = EventAccumulator(str(tmp_path / "config0" / f"seed{seed}"))
        acc.Reload()
        events = acc.Scalars("episode_return")
        assert [e.step for e in events] == list(steps)
        np.testing.assert_allclose([e.value for e in events], metrics["episode_return"][0, s_index], rtol=1e-6)
