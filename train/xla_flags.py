"""XLA:CPU options the trainer sets before jax starts its backend (no jax import here).

``--xla_cpu_enable_concurrency_optimized_scheduler=false``: XLA:CPU's default schedule orders a
program's independent ops so that its runtime can run them at once on its thread pool. Measured on
this project's 2-core CPU (jaxlib 0.10.2; ``bench/xla_scheduler.py``, results in
``bench/results/xla_scheduler.json``), training programs with it on switched from call to call,
in one process, between their normal speed and 4-7x slower (Maze-9x9-v0's preset, 2 seeds on one
device: 4.1k-6.6k or 21k-32k env steps/s on identical calls); with it off, every call ran at the
fast speed. The schedule only orders ops: results are bitwise the same either way
(``tests/train/test_xla_flags.py``).
"""

from __future__ import annotations

import os

SCHEDULER_OPTION = "xla_cpu_enable_concurrency_optimized_scheduler"
FLAGS = (f"--{SCHEDULER_OPTION}=false",)


def configure_xla_cpu() -> tuple[str, ...]:
    """Adds ``FLAGS`` to ``XLA_FLAGS`` unless it already names their options (a user's choice
    wins: ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=true`` keeps XLA's default).

    Takes effect only if jax has not started its backend yet (XLA reads ``XLA_FLAGS`` then);
    ``import train`` calls it, so a program that imports ``train`` before its first jax
    computation gets it.

    Returns:
        The flags added (empty if none were).
    """
    current = os.environ.get("XLA_FLAGS", "")
    added = tuple(f for f in FLAGS if f.split("=", 1)[0].lstrip("-") not in current)
    if added:
        os.environ["XLA_FLAGS"] = " ".join(x for x in (current.strip(), *added) if x)
    return added
