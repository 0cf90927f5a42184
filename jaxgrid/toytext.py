"""Ports of Gymnasium's toy-text grids, with Gymnasium's rules and keyword arguments:
``FrozenLake-v1``, ``FrozenLake8x8-v1``, ``CliffWalking-v1`` and ``CliffWalkingSlippery-v1``.

Each id is registered here, beside its factory (``jaxgrid.registry.register``);
``tests/jaxgrid/test_gym_parity.py`` steps them in lock-step with Gymnasium's own envs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxgrid.grids import make_grid
from jaxgrid.layouts import BUILTIN_LAYOUTS, LEFT_DOWN_RIGHT_UP
from jaxgrid.registry import check_bool, check_probability, register
from jaxgrid.types import check_param

# Gymnasium's slip: the intended move with probability 1/3, each perpendicular move with 1/3.
GYMNASIUM_SLIP_PROB = 2.0 / 3.0

# CliffWalking has no time limit in Gymnasium; int32 max stands for "never truncates".
NO_TIME_LIMIT = 2**31 - 1

FROZEN_LAKE_CHARS = {"S": "S", "F": ".", "H": "L", "G": "G"}
FROZEN_LAKE_MAPS = {"4x4": "frozen-lake-4x4", "8x8": "frozen-lake-8x8"}


def frozen_lake_text(desc: Any, name: str) -> str:
    """Gymnasium's FrozenLake ``desc`` as a jaxgrid text map (S/F/H/G -> S/./L/G).

    ``desc`` is what Gymnasium's ``FrozenLakeEnv`` takes (it reads it as ``np.asarray(desc, dtype="c")``):
    a list of row strings (str or bytes), a list of character lists, a 2-D NumPy array of
    one-character bytes or str (``gymnasium.make("FrozenLake-v1").unwrapped.desc``), or one string
    with a row per line.

    Raises:
        ValueError: ragged rows, a map that is not 2-D, or a character other than S/F/H/G (naming
            its row and column).
    """
    if isinstance(desc, str):
        rows = desc.split()
    elif isinstance(desc, (list, tuple)):  # bytes rows: NumPy would read b"SF" as the ints 83, 70
        rows = [row.decode("latin-1") if isinstance(row, bytes) else row for row in desc]
    else:
        rows = desc
    try:
        grid = np.asarray(rows, dtype="c")
    except (ValueError, TypeError, UnicodeEncodeError) as err:
        raise ValueError(
            f"{name}: desc must be rows of equal length of 'S', 'F', 'H', 'G' (as Gymnasium's FrozenLake "
            f"takes it), got {desc!r} ({err})"
        ) from None
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(
            f"{name}: desc must be a 2-D map (rows of 'S', 'F', 'H', 'G'), got shape {grid.shape} from {desc!r}"
        )
    out = []
    for r, row in enumerate(grid):
        chars = [cell.decode("latin-1") for cell in row]
        for c, ch in enumerate(chars):
            if ch not in FROZEN_LAKE_CHARS:
                raise ValueError(
                    f"{name}: unknown FrozenLake character {ch!r} at row {r}, column {c}; "
                    "valid: 'S' start, 'F' frozen, 'H' hole, 'G' goal"
                )
        out.append("".join(FROZEN_LAKE_CHARS[ch] for ch in chars))
    return "\n".join(out)


def frozen_lake_defaults(
    max_steps: int, success_rate: float | None, reward_schedule: tuple[float, float, float] | None
) -> dict[str, Any]:
    """FrozenLake's traced param values: Gymnasium's rewards and slip, or its ``success_rate``
    (probability of the intended move when slippery) and ``reward_schedule`` (goal, hole, frozen).

    Raises:
        ValueError: a bad ``success_rate`` or ``reward_schedule``, naming it.
    """
    defaults = {
        "max_steps_in_episode": max_steps,
        "step_reward": 0.0,
        "goal_reward": 1.0,
        "lava_reward": 0.0,
        "lava_terminates": True,
        "slip_prob": GYMNASIUM_SLIP_PROB,
    }
    if success_rate is not None:
        defaults["slip_prob"] = 1.0 - check_probability("success_rate", success_rate)
    if reward_schedule is not None:
        if not isinstance(reward_schedule, (tuple, list)) or len(reward_schedule) != 3:
            raise ValueError(
                f"reward_schedule must be 3 finite floats (goal, hole, frozen), got {reward_schedule!r}"
            )
        names = (("goal", "goal_reward"), ("hole", "lava_reward"), ("frozen", "step_reward"))
        for (label, name), value in zip(names, reward_schedule):
            try:
                defaults[name] = check_param(name, value, to_device=False).item()
            except ValueError as err:
                raise ValueError(f"reward_schedule ({label}, the {name}): {err}") from None
    return defaults


def _frozen_lake_factory(env_id: str, default_map: str, max_steps: int):
    def factory(
        is_slippery: bool = True,
        map_name: str | None = None,
        desc: Any = None,
        success_rate: float | None = None,
        reward_schedule: tuple[float, float, float] | None = None,
        **overrides: Any,
    ):
        """Gymnasium's FrozenLake keyword arguments are accepted with its meaning: ``map_name``
        ("4x4"/"8x8"), ``desc`` (rows of S/F/H/G), ``success_rate`` (probability of the intended move
        when slippery), ``reward_schedule`` (goal, hole, frozen)."""
        slippery = check_bool("is_slippery", is_slippery)
        if map_name is not None and (not isinstance(map_name, str) or map_name not in FROZEN_LAKE_MAPS):
            raise ValueError(f"unknown FrozenLake map_name {map_name!r}; valid: '4x4', '8x8' (or pass desc=)")
        if desc is not None:
            text = frozen_lake_text(desc, env_id)
        else:
            text = BUILTIN_LAYOUTS[FROZEN_LAKE_MAPS.get(map_name, default_map)]
        defaults = frozen_lake_defaults(max_steps, success_rate, reward_schedule)
        return make_grid(
            env_id, text, overrides, action_deltas=LEFT_DOWN_RIGHT_UP, param_defaults=defaults,
            slippery=slippery,
        )

    return factory


def _cliff_walking_factory(env_id: str, default_slippery: bool):
    def factory(is_slippery: bool = default_slippery, **overrides: Any):
        slippery = check_bool("is_slippery", is_slippery)
        defaults = {
            "max_steps_in_episode": NO_TIME_LIMIT,
            "step_reward": -1.0,
            "goal_reward": -1.0,
            "lava_reward": -100.0,
            "lava_terminates": False,
            "slip_prob": GYMNASIUM_SLIP_PROB,
        }
        return make_grid(
            env_id, BUILTIN_LAYOUTS["cliff-walking"], overrides, param_defaults=defaults,
            slippery=slippery,
        )

    return factory


register(
    "FrozenLake-v1",
    _frozen_lake_factory("FrozenLake-v1", "frozen-lake-4x4", 100),
    "Gymnasium's 4x4 FrozenLake: actions left/down/right/up; slippery by default (1/3 intended, "
    "1/3 each side; is_slippery=False for deterministic); +1 at the goal, 0 otherwise; a hole "
    "terminates; 100 steps. Also takes Gymnasium's map_name, desc, success_rate, reward_schedule.",
)
register(
    "FrozenLake8x8-v1",
    _frozen_lake_factory("FrozenLake8x8-v1", "frozen-lake-8x8", 200),
    "Gymnasium's 8x8 FrozenLake: as FrozenLake-v1 on the 8x8 map; 200 steps.",
)
register(
    "CliffWalking-v1",
    _cliff_walking_factory("CliffWalking-v1", False),
    "Gymnasium's 4x12 CliffWalking: actions up/right/down/left; -1 per step (goal included), "
    "-100 for the cliff, which returns the agent to the start without terminating; the goal "
    "terminates; no time limit; is_slippery=True for Gymnasium's slippery rule.",
)
register(
    "CliffWalkingSlippery-v1",
    _cliff_walking_factory("CliffWalkingSlippery-v1", True),
    "Gymnasium's CliffWalkingSlippery-v1: CliffWalking-v1 where a move goes 1/3 as intended, "
    "1/3 to each side.",
)
