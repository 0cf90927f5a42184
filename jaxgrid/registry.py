"""The env registry: ``register`` an id with its factory, ``make`` it (``env, params = make(env_id)``,
like ``gymnax.make``), list the ids, and the override checks every factory shares.

Each env family registers its own ids beside its factories, in its own module
(``FAMILY_MODULES``): ``grids.py`` (fixed layouts: GridWorld-4x4-v0, GridWorld-v0, FourRooms-v0,
EmptyRoom-v0), ``toytext.py`` (Gymnasium's FrozenLake and CliffWalking ports), ``procedural.py``
(layouts drawn at reset: FourRoomsRandom, Maze) and ``tmaze.py`` (TMaze-v0). ``import jaxgrid``
imports them all; the functions here that read the registry load them first as well, so the
registry is complete however this module was reached.
"""

from __future__ import annotations

import ast
import difflib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxgrid.env import GridWorld, host_only
from jaxgrid.gymnax_base import environment
from jaxgrid.types import check_param

EnvFactory = Callable[..., tuple[environment.Environment, Any]]

# The modules that register ids, in registration order (a new family adds its module here).
FAMILY_MODULES = ("jaxgrid.grids", "jaxgrid.toytext", "jaxgrid.procedural", "jaxgrid.tmaze")

_REGISTRY: dict[str, EnvFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}
_REGISTER_HOOKS: list[Callable[[str], None]] = []
_FAMILIES_LOADED = False

# Env options every grid factory takes (the rest of its overrides are traced params).
ENV_KWARGS = ("obs", "view_size", "debug")


def load_families() -> None:
    """Imports every module of ``FAMILY_MODULES`` (each registers its ids on import); idempotent."""
    global _FAMILIES_LOADED
    if _FAMILIES_LOADED:
        return
    _FAMILIES_LOADED = True  # first: a family's import may reach back here
    try:
        for name in FAMILY_MODULES:
            importlib.import_module(name)
    except BaseException:
        _FAMILIES_LOADED = False
        raise


def register(env_id: str, factory: EnvFactory, description: str = "") -> None:
    """Registers ``factory(**overrides) -> (env, params)`` under ``env_id`` with a one-line
    ``description`` of its rules (``jaxgrid list`` prints it).

    Raises:
        ValueError: ``env_id`` is already registered.
    """
    if env_id in _REGISTRY:
        raise ValueError(f"env id {env_id!r} is already registered")
    _REGISTRY[env_id] = factory
    _DESCRIPTIONS[env_id] = description
    for hook in _REGISTER_HOOKS:
        hook(env_id)


def add_register_hook(hook: Callable[[str], None]) -> None:
    """Calls ``hook(env_id)`` for every id registered from now on (the Gymnasium adapter uses it)."""
    if hook not in _REGISTER_HOOKS:
        _REGISTER_HOOKS.append(hook)


def registered_ids() -> tuple[str, ...]:
    """All registered env ids, sorted."""
    load_families()
    return tuple(sorted(_REGISTRY))


def describe(env_id: str) -> str:
    """The one-line rules of a registered id.

    Raises:
        ValueError: an unknown id (as ``check_env_id``).
    """
    check_env_id(env_id)
    return _DESCRIPTIONS[env_id]


def family_of(env_id: str) -> str:
    """The module that registered ``env_id`` (where its factory is), e.g. ``"jaxgrid.toytext"``.

    Raises:
        ValueError: an unknown id (as ``check_env_id``).
    """
    check_env_id(env_id)
    return _REGISTRY[env_id].__module__


def check_env_id(env_id: str) -> None:
    """Raises ValueError naming the closest registered ids (and listing all) for an unknown id."""
    load_families()
    if env_id in _REGISTRY:
        return
    close = difflib.get_close_matches(str(env_id), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown env id {env_id!r}.{hint} Registered ids: {', '.join(registered_ids())}"
    )


def parse_overrides(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``["is_slippery=False", "max_steps_in_episode=20"]`` -> overrides for ``make``: Python
    literals where the value is one, strings otherwise.

    Raises:
        ValueError: an item without ``=`` (the message names ``flag``).
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def make(env_id: str, **overrides: Any) -> tuple[environment.Environment, Any]:
    """Builds a registered env and its default params, like ``gymnax.make``.

    Args:
        env_id: a registered id (see ``registered_ids()``).
        **overrides: env options (``obs``, ``view_size``, ``layout`` where the id takes one) and
            traced param values (``max_steps_in_episode``, ``step_reward``, ``slip_prob``, ...).

    Every override is checked on the host before anything is built or compiled: traced params
    for type (a bool is a bool, an int is integral), scalar shape, finiteness and range
    (``jaxgrid.types.PARAM_SPECS``); options (``obs``, ``view_size``, ``debug``, ``size``,
    ``is_slippery``, ...) for their valid values.

    Raises:
        ValueError: unknown id (naming the closest ids) or an unknown / invalid override (naming it
            and its valid values).
    """
    check_env_id(env_id)
    env, params = _REGISTRY[env_id](**overrides)
    if isinstance(env, GridWorld):
        env.validate_params(params)
    return env, params


def check_make(env_id: str, **overrides: Any) -> None:
    """Runs every check ``make(env_id, **overrides)`` runs, on the host only: the env is built
    with NumPy arrays and dropped (no device transfer, nothing compiled). ``PPOConfig`` uses it.

    Raises:
        ValueError: as ``make``.
    """
    with host_only():
        make(env_id, **overrides)


# ------------------------------------------------------------------------------------------------
# Checks the families' factories share


def split_overrides(
    env_id: str,
    overrides: dict[str, Any],
    param_defaults: dict[str, Any] | None,
    slippery: bool,
    env_defaults: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Validates a grid factory's ``overrides`` and splits them into env options and traced params.

    Args:
        env_id: the id being made (for messages).
        overrides: ``make``'s keyword arguments left after the factory took its own.
        param_defaults: the id's traced param values (overrides go on top).
        slippery: whether the id is slippery by default.
        env_defaults: the id's env options (``obs``, ``view_size``; overrides go on top).

    Returns:
        ``(env_kwargs, param_values, slippery)``; a ``slip_prob`` override makes the env slippery,
        and a non-slippery env's values carry no ``slip_prob``.

    Raises:
        ValueError: an unknown override (listing the valid ones) or an invalid param value.
    """
    overrides = dict(overrides)
    env_kwargs = {**(env_defaults or {}), **{k: overrides.pop(k) for k in ENV_KWARGS if k in overrides}}
    valid = ENV_KWARGS + GridWorld.PARAM_NAMES
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown override(s) {', '.join(map(repr, unknown))} for {env_id!r}; valid: {', '.join(valid)}"
        )
    values = {**(param_defaults or {}), **overrides}
    for name, value in overrides.items():  # named and checked here, before any env is built
        check_param(name, value, scalar=True, to_device=False)
    if "slip_prob" in overrides:
        slippery = True
    if not slippery:
        values.pop("slip_prob", None)
    return env_kwargs, values, slippery


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool. Raises ValueError unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_size(env_id: str, size: Any) -> tuple[int, int]:
    """``size=N`` or ``size=(H, W)`` of a sized family as ``(H, W)`` (ints; ranges are the family's).

    Raises:
        ValueError: not an int or a pair of ints.
    """
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{env_id}: size must be an int N or a pair of ints (H, W), got {size!r}")
    return int(pair[0]), int(pair[1])


def check_probability(name: str, value: Any) -> float:
    """``value`` as a float. Raises ValueError unless it is a number in [0, 1]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (a float probability), got {value!r}")
    return float(value)
