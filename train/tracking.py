"""Run directories: naming, creation, metadata, config labels and the learning-curve plot.

What is written as a run goes (curves.csv, TensorBoard, W&B, the plot) is done by the loggers of
``train.loggers``; the run-directory loop is ``train.runs``. A run directory (``<out>/<env_id>__<YYYYmmdd-HHMMSS>__<6 hex>``) holds::

    config.json           the full, resolved config
    metadata.json         seeds, sweep grid, git commit and dirtiness, package versions, devices,
                          command line, start/end times, compile and run seconds
    curves.csv            one row per (config, seed, update): every logged metric
    results.json          the seed table (report.summarise) per config
    learning_curve.png    per-seed lines, median and interquartile band; one panel per config
    tb/config<c>/seed<s>/ TensorBoard event files, one run per seed and config (unless --no-tensorboard)
    wandb/                Weights & Biases files (with --track wandb)
    checkpoints/          see train.checkpoint

Creating, locking and replacing run directories is ``train.rundir``'s job. Metric arrays here are NumPy ``[num_configs, num_seeds, num_updates]``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from train.checkpoint import atomic_write_bytes
from train.rundir import RunDirExistsError  # noqa: F401  (re-exported: raised when a run exists)

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "jaxgrid", "numpy")


def new_run_name(env_id: str, now: dt.datetime | None = None) -> str:
    """A unique, readable, sortable name: ``GridWorld-4x4-v0__20261124-013000__a1b2c3``."""
    now = now or dt.datetime.now()
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in env_id)
    return f"{safe}__{now:%Y%m%d-%H%M%S}__{secrets.token_hex(3)}"


def git_state(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The git commit of the code and whether the tree has uncommitted changes (None outside git)."""
    where = str(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip()
        )
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "host": platform.node(),
    }


def collect_metadata(**extra: Any) -> dict[str, Any]:
    """Code version, package versions, devices and command line, plus ``extra`` fields."""
    return {
        "git": git_state(),
        "versions": package_versions(),
        "devices": device_info(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        **extra,
    }


def config_labels(config: Any) -> list[str]:
    """``[G]`` one label per config of a ``PPOConfig``'s sweep grid (``"learning_rate=0.001,
    ent_coef=0"``), the env id when there is no sweep."""
    return [", ".join(f"{k}={v:g}" for k, v in p.items()) or config.env_id for p in config.grid_points()]


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def as_grid(metrics: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Metric arrays as ``[num_configs, num_seeds, num_updates]`` (adds the config axis if absent)."""
    out = {}
    for name, value in metrics.items():
        arr = np.asarray(value)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"metric {name!r} has shape {arr.shape}; expected [seeds, updates] or [configs, seeds, updates]")
        out[name] = arr
    return out


def plot_learning_curves(
    path: str | os.PathLike,
    env_steps: np.ndarray,
    returns: np.ndarray,
    config_labels: Sequence[str],
    title: str = "",
    ylabel: str = "episode return",
) -> None:
    """Per-seed thin lines, the median and the interquartile band, one panel per config.

    Args:
        env_steps: [num_updates] env steps at the end of each update (the x axis).
        returns: [num_configs, num_seeds, num_updates] or [num_seeds, num_updates].
    """
    # NOTE: the object-oriented API, not pyplot: no global figure state, so it may run on a
    # logger's background thread, and pyplot's import (~0.1 s more) is skipped.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    returns = as_grid({"r": returns})["r"]
    num_configs = returns.shape[0]
    cols = min(num_configs, 3)
    rows = -(-num_configs // cols)
    fig = Figure(figsize=(5.2 * cols, 3.6 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    x = np.asarray(env_steps)
    for c in range(num_configs):
        ax = axes[c // cols][c % cols]
        curves = returns[c]
        for seed_curve in curves:
            ax.plot(x, seed_curve, lw=0.6, alpha=0.35, color="tab:blue")
        q25, med, q75 = np.nanpercentile(curves, [25, 50, 75], axis=0)
        ax.fill_between(x, q25, q75, alpha=0.25, color="tab:orange", label="interquartile range")
        ax.plot(x, med, lw=2.0, color="tab:orange", label=f"median of {curves.shape[0]} seeds")
        ax.set_title(config_labels[c], fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for k in range(num_configs, rows * cols):
        axes[k // cols][k % cols].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
