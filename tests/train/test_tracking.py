"""Run directory pieces: names, metadata, config labels and the plot (the CSV, TensorBoard and
W&B loggers are tested in test_loggers.py)."""

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


def test_config_labels__one_per_sweep_point_else_the_env_id():
    from train import PPOConfig

    assert tracking.config_labels(PPOConfig()) == ["GridWorld-4x4-v0"]
    sweep = PPOConfig(sweep={"learning_rate": (1e-3, 3e-4)})
    assert tracking.config_labels(sweep) == ["learning_rate=0.001", "learning_rate=0.0003"]
