"""Shared test setup: a small number of host devices is never assumed; tests that need several
start a subprocess with JAX_NUM_CPU_DEVICES set before jax starts its backend."""

import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Before any test starts jax's backend: the trainer's XLA:CPU flags (train/xla_flags.py), as
# jaxgrid-train and the benchmarks run with them (results are bitwise the same without).
import train  # noqa: E402,F401


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 240.0) -> str:
    """Runs ``code`` in a fresh interpreter (so env vars reach jax before it starts) and
    returns its stdout; fails the test with the child's stderr if it exits non-zero."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture
def python_subprocess():
    return run_python
