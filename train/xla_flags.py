"""XLA:CPU options the trainer sets before jax starts its backend (no jax import here).

``--xla_cpu_enable_concurrency_optimized_scheduler=false``: XLA:CPU's default schedule orders a
program's independent ops so that its runtime can run them at once on its thread pool. Measured on
this project's 2-core CPU (jaxlib 0.10.2; ``bench/xla_scheduler.py``, results in
``bench/results/xla_scheduler.json``), some training programs then switched from call to call, in
one process, between two speeds: Maze-9x9-v0's preset, 2 seeds on one device, ran 22 of 24
identical calls at 3.1k-6.6k env steps/s and two at 17.5k-19.1k; with the option off, all 24 ran at
21k-32k. The schedule only orders ops: results are bitwise the same either way
(``tests/train/test_xla_flags.py``).
"""

from __future__ import annotations

import os
import re
import sys
import warnings

SCHEDULER_OPTION = "xla_cpu_enable_concurrency_optimized_scheduler"
FLAGS = (f"--{SCHEDULER_OPTION}=false",)


def names_option(xla_flags: str, option: str) -> bool:
    """Whether ``xla_flags`` (an ``XLA_FLAGS`` value) sets ``option`` as a flag of its own:
    ``--option``, ``--option=value`` or ``-option...``, not a longer flag name or a value that
    merely contains the text. (Flags inside a ``--flagfile=`` are not read.)"""
    return re.search(rf"(^|\s)--?{re.escape(option)}(=|\s|$)", xla_flags) is not None


def configure_xla_cpu() -> tuple[str, ...]:
    """Adds ``FLAGS`` to ``XLA_FLAGS`` unless it already names their options (a user's choice
    wins: ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=true`` keeps XLA's default).

    Takes effect only if jax has not started its backend yet (XLA reads ``XLA_FLAGS`` then);
    ``import train`` calls it, so a program that imports ``train`` before its first jax
    computation gets it. If the backend is already running, it warns (``RuntimeWarning``) that
    the flags cannot apply to this process.

    Returns:
        The flags added (empty if none were).
    """
    current = os.environ.get("XLA_FLAGS", "")
    added = tuple(f for f in FLAGS if not names_option(current, f.split("=", 1)[0].lstrip("-")))
    if added:
        os.environ["XLA_FLAGS"] = " ".join(x for x in (current.strip(), *added) if x)
        if _backend_started():
            warnings.warn(
                f"jax's backend started before `import train`, so XLA_FLAGS {' '.join(added)} does not "
                "apply to this process (training may run several times slower on some calls on a "
                "small CPU; results are the same). Import train before the first jax computation.",
                RuntimeWarning, stacklevel=3,
            )
    return added


def _backend_started() -> bool:
    """Whether this process's jax has initialised a backend (False if jax is not imported)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a jax without this helper: say nothing
        return False
