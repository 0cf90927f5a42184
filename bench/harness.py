"""Shared benchmark protocol: machine description, timing, JSON and plots.

The protocol every script here follows (see bench/README section in the top-level README):
- a builder returns the function to time and its inputs; inputs are made before the clock starts;
- JAX programs are lowered and compiled before timing, and the compile time is reported apart;
- every timed call ends in ``jax.block_until_ready`` (or returns NumPy data, which is ready);
- each measurement is repeated and the median is quoted (all repeats are kept in the JSON);
- the JSON records the device, the versions and the command, so a later run can be compared.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Before any benchmark starts jax's backend: importing train puts the trainer's XLA:CPU flags
# (train/xla_flags.py) into XLA_FLAGS, so benchmarks time what jaxgrid-train runs.
import train  # noqa: F401

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Where a ``--quick`` smoke run writes when no ``--out`` is given: never over the committed
# results that the README quotes (git-ignored).
QUICK_RESULTS_DIR = RESULTS_DIR / "quick"


def quick_out(out: Path, quick: bool, default: Path) -> Path:
    """The output path of a bench script: ``out``, except that a ``--quick`` run left at the
    committed default (``default``, in ``RESULTS_DIR``) writes to ``QUICK_RESULTS_DIR`` instead."""
    if quick and Path(out) == Path(default):
        return QUICK_RESULTS_DIR / Path(default).name
    return Path(out)


VERSIONED_PACKAGES = (
    "jax", "jaxlib", "flax", "optax", "gymnax", "gymnasium", "numpy", "torch", "stable-baselines3",
    "jaxgrid",
)


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None where it is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Device, CPU, core count, versions and the command line of this run."""
    import jax

    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "loadavg_1_5_15min": list(os.getloadavg()),
        "env_vars": {k: os.environ[k] for k in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS", "OMP_NUM_THREADS") if k in os.environ},
    }


def print_header(info: dict[str, Any]) -> None:
    print(f"# {info['date_utc']}  command: {info['command']}")
    print(f"# device: {info['jax_backend']} {info['jax_devices']}  cpu: {info['cpu']} x{info['cpu_count']}")
    print(f"# load average (1, 5, 15 min): {info['loadavg_1_5_15min']}")
    print("# versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))


@dataclasses.dataclass
class Timing:
    """Repeated wall-clock measurements of one call."""

    seconds: list[float]
    compile_s: float | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


def time_calls(call: Callable[[], Any], repeats: int, warmup: int = 1) -> Timing:
    """Times ``call()`` ``repeats`` times after ``warmup`` untimed calls; blocks on JAX results."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(call())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        seconds.append(time.perf_counter() - start)
    return Timing(seconds)


def time_jax(fn: Callable, args: Sequence[Any], repeats: int) -> Timing:
    """Compiles ``jax.jit(fn)`` for ``args`` (timed apart), then times the compiled call."""
    import jax

    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    timing = time_calls(lambda: compiled(*args), repeats)
    timing.compile_s = compile_s
    return timing


def train_row(first: Any, runs_s: Sequence[float]) -> dict[str, Any]:
    """The timing fields of a ``train.train`` benchmark point: ``first`` is the first (compiling)
    call's ``TrainResult``, ``runs_s`` the run seconds of the timed calls (median quoted)."""
    run_s = statistics.median(runs_s)
    return {
        "env_steps": first.env_steps,
        "compile_s": first.compile_seconds,
        "run_s": run_s,
        "runs_s": list(runs_s),
        "steps_per_s": first.env_steps / run_s,
        "eval_returns": [float(x) for x in np.asarray(first.eval_returns).ravel()],
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Writes ``payload`` atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(path: Path, payload: dict[str, Any], plot: Callable[[Path], None]) -> None:
    """A benchmark's outputs: ``path`` (JSON, atomic) and ``plot(png_path)`` beside it; says so."""
    write_json(path, payload)
    png = path.with_suffix(".png")
    plot(png)
    wall = f" in {payload['wall_s']:.0f}s" if "wall_s" in payload else ""
    print(f"wrote {path} and {png}{wall}")


def _json_default(value: Any) -> Any:
    try:
        return value.item()
    except AttributeError:
        return str(value)


def save_figure(fig, path: Path) -> None:
    """Saves a matplotlib figure atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def style_rate_axes(ax, title: str, legend_size: int = 8) -> None:
    """A throughput panel: log-log env steps/s over ``num_envs``, titled, gridded, with a legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("num_envs")
    ax.set_ylabel("env steps / s")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)


def machine_title(fig, info: dict[str, Any]) -> None:
    """The figure's suptitle: the machine and jax of ``machine_info()``, and how rates are quoted."""
    fig.suptitle(f"{info['cpu']} x{info['cpu_count']}, jax {info['versions']['jax']} "
                 f"({info['jax_backend']}); median of repeats", fontsize=9)


def format_rate(x: float | None) -> str:
    """Steps/s in a short human form: 1.23M, 456k, 78."""
    if x is None:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"
