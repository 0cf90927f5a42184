"""Registered env ids and ``make``, the gymnax-style constructor: ``env, params = make(env_id)``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from gymnax.environments import environment

from jaxgrid.env import GridWorld
from jaxgrid.layouts import BUILTIN_LAYOUTS, UP_RIGHT_DOWN_LEFT, Layout

EnvFactory = Callable[..., tuple[environment.Environment, Any]]

_REGISTRY: dict[str, EnvFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}

ENV_KWARGS = ("obs", "view_size")


def register(env_id: str, factory: EnvFactory, description: str = "") -> None:
    """Registers ``factory(**overrides) -> (env, params)`` under ``env_id``."""
    if env_id in _REGISTRY:
        raise ValueError(f"env id {env_id!r} is already registered")
    _REGISTRY[env_id] = factory
    _DESCRIPTIONS[env_id] = description


def registered_ids() -> tuple[str, ...]:
    """All registered env ids, sorted."""
    return tuple(sorted(_REGISTRY))


def describe(env_id: str) -> str:
    check_env_id(env_id)
    return _DESCRIPTIONS[env_id]


def check_env_id(env_id: str) -> None:
    """Raises ValueError naming the closest registered ids (and listing all) for an unknown id."""
    if env_id in _REGISTRY:
        return
    close = difflib.get_close_matches(str(env_id), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown env id {env_id!r}.{hint} Registered ids: {', '.join(registered_ids())}"
    )


def make(env_id: str, **overrides: Any) -> tuple[environment.Environment, Any]:
    """Builds a registered env and its default params, like ``gymnax.make``.

    Args:
        env_id: a registered id (see ``registered_ids()``).
        **overrides: env options (``obs``, ``view_size``, ``layout`` where the id takes one) and
            traced param values (``max_steps_in_episode``, ``step_reward``, ``slip_prob``, ...).

    Raises:
        ValueError: unknown id (naming the closest ids) or an unknown / invalid override.
    """
    check_env_id(env_id)
    return _REGISTRY[env_id](**overrides)


def make_grid(
    env_id: str,
    layout: Layout | str,
    overrides: dict[str, Any],
    action_deltas=UP_RIGHT_DOWN_LEFT,
    param_defaults: dict[str, Any] | None = None,
    slippery: bool = False,
) -> tuple[GridWorld, Any]:
    """Shared factory of the fixed-layout grid ids: splits overrides into env options and params."""
    if isinstance(layout, str):
        layout = Layout.from_text(layout, name=env_id)
    env_kwargs = {k: overrides.pop(k) for k in ENV_KWARGS if k in overrides}
    values = {**(param_defaults or {}), **overrides}
    if "slip_prob" in overrides:
        slip = float(overrides["slip_prob"])
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip_prob must be in [0, 1], got {slip}")
        slippery = True
    valid = ENV_KWARGS + GridWorld.PARAM_NAMES
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown override(s) {', '.join(map(repr, unknown))} for {env_id!r}; valid: {', '.join(valid)}"
        )
    if "max_steps_in_episode" in values and int(values["max_steps_in_episode"]) < 1:
        raise ValueError(f"max_steps_in_episode must be >= 1, got {values['max_steps_in_episode']}")
    if not slippery:
        values.pop("slip_prob", None)
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
            "GridWorld-v0 needs a layout: make('GridWorld-v0', layout=TEXT_MAP) "
            "(alphabet: # wall, . floor, S start, G goal, L lava)"
        )
    return make_grid("GridWorld-v0", layout, overrides)


register(
    "GridWorld-4x4-v0",
    _gridworld_4x4,
    "The lesson's 4x4 grid: start 0, wall 5, goal 15; -0.04 per step, +1 at the goal; 50 steps.",
)
register("GridWorld-v0", _gridworld_custom, "Any text layout: make('GridWorld-v0', layout=MAP).")
