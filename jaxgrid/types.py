"""State and params pytrees of the grid environments.

Everything that fixes an array shape (grid height/width, observation encoding) is a static
attribute of the env object; everything a user may want to vary per env or per sweep
(rewards, time limit, slip probability, the layout itself) is a traced leaf here, so
``params.replace(...)`` and ``jax.vmap`` over params just work.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxgrid.gymnax_base import environment

# Cell kinds, stored as int8 in ``GridParams.cell_kind``.
FLOOR = 0
WALL = 1
GOAL = 2
LAVA = 3
# A marked wall: it blocks moves like WALL and has its own observation channel (TMaze-v0's cue,
# ``jaxgrid.tmaze``). Fixed text maps have no character for it.
CUE = 4


@struct.dataclass
class GridState(environment.EnvState):
    """The state of one grid episode.

    Attributes:
        time: () int32, steps taken in this episode.
        pos: () int32, the agent's cell, row-major (``row * width + col``).
    """

    time: jax.Array
    pos: jax.Array


@struct.dataclass
class GridParams(environment.EnvParams):
    """Traced knobs of a grid env. Layout arrays have the (padded) number of cells ``n``.

    Attributes:
        max_steps_in_episode: () int32, the step that reaches this count without the goal truncates.
        step_reward: () float32, reward of a step that enters a floor cell.
        goal_reward: () float32, reward of the step that enters a goal cell (terminates).
        lava_reward: () float32, reward of the step that enters a lava cell.
        lava_terminates: () bool, entering lava terminates (FrozenLake hole) or, if False,
            sends the agent back to ``start_cell`` (CliffWalking cliff).
        next_cell: [n, 4] int32, the cell each action leads to (walls and edges already applied).
        cell_kind: [n] int8, FLOOR / WALL / GOAL / LAVA.
        start_logits: [n] float32, 0 where an episode may start, -inf elsewhere.
        start_cell: () int32, the first start cell (used by single-start layouts and cliffs).
    """

    max_steps_in_episode: jax.Array = struct.field(default_factory=lambda: jnp.int32(PARAM_SPECS["max_steps_in_episode"].default))
    step_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(PARAM_SPECS["step_reward"].default))
    goal_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(PARAM_SPECS["goal_reward"].default))
    lava_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(PARAM_SPECS["lava_reward"].default))
    lava_terminates: jax.Array = struct.field(default_factory=lambda: jnp.bool_(PARAM_SPECS["lava_terminates"].default))
    next_cell: jax.Array | None = None
    cell_kind: jax.Array | None = None
    start_logits: jax.Array | None = None
    start_cell: jax.Array = struct.field(default_factory=lambda: jnp.int32(0))


@struct.dataclass
class SlipperyGridParams(GridParams):
    """Params of a stochastic grid: with probability ``slip_prob`` the move is turned 90°
    left or right (each half of the time). ``slip_prob=2/3`` is FrozenLake's 1/3-1/3-1/3 rule.

    Attributes:
        slip_prob: () float32 in [0, 1].
    """

    slip_prob: jax.Array = struct.field(default_factory=lambda: jnp.float32(PARAM_SPECS["slip_prob"].default))


# ------------------------------------------------------------------------------------------------
# Validation of the traced knobs. Everything here runs on the host, before compilation: ``make``,
# env construction, ``params.replace`` and ``validate_params`` call it; nothing is traced into
# ``step``.

INT32_MAX = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """The rule of one traced env param.

    Attributes:
        kind: ``"int"`` (an integral number; a float like 3.0 is accepted, 2.7 is not),
            ``"float"`` (a finite real number; bools refused) or ``"bool"`` (True/False only).
        low, high: inclusive bounds (``None``: unbounded within the dtype's range).
        dtype: the dtype the value is stored with.
        valid: the valid values in words, for messages.
        default: the value of a ``GridParams`` built without it.
    """

    kind: str
    low: float | None
    high: float | None
    dtype: Any
    valid: str
    default: Any


PARAM_SPECS: dict[str, ParamSpec] = {
    "max_steps_in_episode": ParamSpec(
        "int", 1, INT32_MAX, jnp.int32, f">= 1 and <= {INT32_MAX} (an int number of steps; {INT32_MAX}: no limit)", 50
    ),
    "step_reward": ParamSpec("float", None, None, jnp.float32, "a finite float (float32 range)", -0.04),
    "goal_reward": ParamSpec("float", None, None, jnp.float32, "a finite float (float32 range)", 1.0),
    "lava_reward": ParamSpec("float", None, None, jnp.float32, "a finite float (float32 range)", -1.0),
    "lava_terminates": ParamSpec("bool", None, None, jnp.bool_, "True or False", True),
    "slip_prob": ParamSpec("float", 0.0, 1.0, jnp.float32, "in [0, 1]", 0.0),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_tracer(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def check_param(name: str, value: Any, scalar: bool = True, to_device: bool = True) -> Any:
    """Checks one traced env param on the host and returns it as an array of its dtype.

    Args:
        name: a key of ``PARAM_SPECS``.
        value: a Python number/bool, a NumPy or JAX array; a tracer (inside ``jit``/``vmap``) is
            returned unchanged, its shape is checked when ``step`` is traced.
        to_device: return a ``jax.Array`` (else a NumPy array: a check only).
        scalar: require shape ``()`` (``make``, env construction, ``validate_params``); False
            accepts a batch of values (``params.replace`` for ``vmap`` over params), each checked.

    Returns:
        ``jax.Array`` (NumPy with ``to_device=False``) of the param's dtype (``()`` when ``scalar``).

    Raises:
        ValueError: naming the param, the value, what is wrong and the valid values: wrong type
            (a str, None, a bool where a number is meant, a number where a bool is meant, a
            fractional int), wrong shape, not finite, out of range (int32 range for ints,
            float32 range for floats, and the param's own bounds).
    """
    spec = PARAM_SPECS[name]
    if _is_tracer(value):
        return value

    def fail(problem: str) -> None:
        raise ValueError(f"env param {name} must be {spec.valid}, got {_shown(value)} ({problem})")

    if value is None or isinstance(value, (str, bytes)):
        fail(f"a {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool):  # Python ints have no range limit
        arr = np.asarray(value if abs(value) < 2**62 else float(value))
    else:
        try:
            arr = np.asarray(value)
        except Exception as err:  # ragged lists and other non-arrays
            fail(f"not a number: {err}")
    if scalar and arr.shape != ():
        fail(f"shape {arr.shape}, a scalar of shape () is needed; to vary it across envs, vmap over params")
    dtype = arr.dtype
    if spec.kind == "bool":
        if dtype != np.bool_:
            fail(f"dtype {dtype}" if arr.shape else f"a {type(value).__name__}")
        return jax.device_put(arr) if to_device else arr
    if dtype == np.bool_:
        fail("a bool, a number is needed")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        fail(f"dtype {dtype}, a real number is needed")
    as_float = arr.astype(np.float64)
    if not np.all(np.isfinite(as_float)):
        fail("not finite")
    if spec.kind == "int" and not np.all(as_float == np.round(as_float)):
        fail("not an integer")
    low = spec.low if spec.low is not None else (-INT32_MAX - 1 if spec.kind == "int" else -FLOAT32_MAX)
    high = spec.high if spec.high is not None else (INT32_MAX if spec.kind == "int" else FLOAT32_MAX)
    if np.any(as_float < low) or np.any(as_float > high):
        show = (lambda x: str(int(x))) if spec.kind == "int" else (lambda x: f"{x:g}")
        fail(f"out of range [{show(low)}, {show(high)}]")
    arr = arr.astype(np.dtype(spec.dtype))
    return jax.device_put(arr) if to_device else arr


def check_params_values(params: GridParams, scalar: bool = True) -> None:
    """Runs ``check_param`` on every traced knob of ``params`` (see ``PARAM_SPECS``).

    Raises:
        ValueError: as ``check_param``.
    """
    for name in PARAM_SPECS:
        if hasattr(params, name):
            check_param(name, getattr(params, name), scalar=scalar, to_device=False)


def _checked_replace(self: GridParams, **updates: Any) -> GridParams:
    """Returns a copy with ``updates``; a knob of ``PARAM_SPECS`` is checked by ``check_param``
    (a batch of values is accepted, each value checked; tracers pass unchecked) and stored with
    its dtype. Unknown field names raise TypeError, as ``dataclasses.replace`` does.

    Raises:
        ValueError: a knob value of the wrong type, not finite or out of range.
    """
    fields = {f.name for f in dataclasses.fields(self)}
    unknown = sorted(set(updates) - fields)
    if unknown:
        knobs = [n for n in PARAM_SPECS if n in fields]
        raise TypeError(
            f"{type(self).__name__} has no field(s) {', '.join(map(repr, unknown))}; traced knobs: "
            f"{', '.join(knobs)}" + ("" if "slip_prob" in fields else " (slip_prob needs a slippery env)")
        )
    # NOTE: a tree whose knobs are all None is a structure, not params (e.g. vmap's in_axes built by
    # ``jax.tree.map(lambda _: None, params).replace(step_reward=0)``): replaced unchecked.
    if not all(getattr(self, n) is None for n in PARAM_SPECS if n in fields):
        for name, value in updates.items():
            if name in PARAM_SPECS:
                updates[name] = check_param(name, value, scalar=False)
    return dataclasses.replace(self, **updates)


# NOTE: flax's ``struct.dataclass`` installs a plain ``replace`` on each decorated class; these put
# the checked one in its place (a pytree unflatten does not call ``replace``, so tracing is unaffected).
GridParams.replace = _checked_replace
SlipperyGridParams.replace = _checked_replace
