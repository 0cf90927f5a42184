"""The fixed-layout grid ids and their shared factory ``make_grid``: ``GridWorld-4x4-v0`` (the
lesson's grid), ``GridWorld-v0`` (any text map), ``FourRooms-v0`` and ``EmptyRoom-v0``.

Each id is registered here, beside its factory (``jaxgrid.registry.register``).
"""

from __future__ import annotations

from typing import Any

from jaxgrid import layouts
from jaxgrid.env import GridWorld
from jaxgrid.layouts import BUILTIN_LAYOUTS, UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.registry import check_size, register, split_overrides

# Rewards of the sparse ids: +1 at the goal, nothing else.
SPARSE_DEFAULTS = {"step_reward": 0.0, "goal_reward": 1.0}


def make_grid(
    env_id: str,
    layout: Layout | str,
    overrides: dict[str, Any],
    action_deltas: tuple[tuple[int, int], ...] = UP_RIGHT_DOWN_LEFT,
    param_defaults: dict[str, Any] | None = None,
    slippery: bool = False,
) -> tuple[GridWorld, Any]:
    """The shared factory of the fixed-layout ids: ``(env, env.default_params)``.

    Args:
        env_id: the id (the env's ``name``).
        layout: a text map or a ``Layout``.
        overrides: ``make``'s env options and traced params (``registry.split_overrides``).
        action_deltas: (row, col) move of each action, in action order.
        param_defaults: the id's traced param values.
        slippery: whether the id is slippery by default.

    Raises:
        ValueError: a bad layout or override, naming it and the valid values.
    """
    if isinstance(layout, str):
        layout = Layout.from_text(layout, name=env_id)
    elif not isinstance(layout, Layout):
        raise ValueError(f"layout must be a text map (str) or a Layout, got {type(layout).__name__}")
    env_kwargs, values, slippery = split_overrides(env_id, overrides, param_defaults, slippery)
    env = GridWorld(
        layout,
        action_deltas=action_deltas,
        slippery=slippery,
        param_defaults=values,
        env_id=env_id,
        **env_kwargs,
    )
    return env, env.default_params


def _gridworld_4x4(**overrides: Any):
    return make_grid("GridWorld-4x4-v0", BUILTIN_LAYOUTS["4x4"], overrides)


def _gridworld_custom(layout: Layout | str | None = None, **overrides: Any):
    if layout is None:
        raise ValueError(
            "GridWorld-v0 needs a layout: make('GridWorld-v0', layout=TEXT_MAP), or on the command "
            "line --layout FILE (or an inline map, e.g. --layout 'S.#\\n..G') "
            "(alphabet: # wall, . floor, S start, G goal, L lava)"
        )
    return make_grid("GridWorld-v0", layout, overrides)


def _four_rooms(**overrides: Any):
    return make_grid(
        "FourRooms-v0", BUILTIN_LAYOUTS["four-rooms"], overrides,
        param_defaults={**SPARSE_DEFAULTS, "max_steps_in_episode": 100},
    )


def _empty_room(size: int | tuple[int, int] = 8, **overrides: Any):
    height, width = check_size("EmptyRoom-v0", size)
    layout = layouts.empty_room(height, width)
    defaults = {"step_reward": -0.01, "goal_reward": 1.0, "max_steps_in_episode": 4 * height * width}
    return make_grid("EmptyRoom-v0", layout, overrides, param_defaults=defaults)


register(
    "GridWorld-4x4-v0",
    _gridworld_4x4,
    "The lesson's 4x4 grid: start 0, wall 5, goal 15; -0.04 per step, +1 at the goal; 50 steps.",
)
register("GridWorld-v0", _gridworld_custom, "Any text layout: make('GridWorld-v0', layout=MAP).")
register(
    "FourRooms-v0",
    _four_rooms,
    "Sutton-Precup-Singh four rooms (13x13 with walls, 104 open cells): start top-left corner, "
    "goal bottom-right corner; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "EmptyRoom-v0",
    _empty_room,
    "An open room, size=8 by default (size=N or size=(H, W)): start top-left, goal bottom-right; "
    "-0.01 per step, +1 at the goal; 4*H*W steps.",
)
