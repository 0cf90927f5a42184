"""Registered env ids and ``make``, the gymnax-style constructor: ``env, params = make(env_id)``."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxgrid.gymnax_base import environment

from jaxgrid import layouts
from jaxgrid.env import GridWorld, host_only
from jaxgrid.layouts import BUILTIN_LAYOUTS, LEFT_DOWN_RIGHT_UP, UP_RIGHT_DOWN_LEFT, Layout
from jaxgrid.procedural import (
    Generator,
    ProceduralGridWorld,
    maze_generator,
    maze_template,
    random_start_goal_generator,
)
from jaxgrid.types import check_param

EnvFactory = Callable[..., tuple[environment.Environment, Any]]

_REGISTRY: dict[str, EnvFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}
_REGISTER_HOOKS: list[Callable[[str], None]] = []

ENV_KWARGS = ("obs", "view_size", "debug")


def register(env_id: str, factory: EnvFactory, description: str = "") -> None:
    """Registers ``factory(**overrides) -> (env, params)`` under ``env_id``."""
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
    return tuple(sorted(_REGISTRY))


def describe(env_id: str) -> str:
    """The one-line rules of a registered id."""
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


def _split_overrides(
    env_id: str,
    overrides: dict[str, Any],
    param_defaults: dict[str, Any] | None,
    slippery: bool,
    env_defaults: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Validates ``overrides`` and splits them into env options and traced param values.

    Returns ``(env_kwargs, param_values, slippery)``; a ``slip_prob`` override makes the env slippery.
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
    elif not isinstance(layout, Layout):
        raise ValueError(f"layout must be a text map (str) or a Layout, got {type(layout).__name__}")
    env_kwargs, values, slippery = _split_overrides(env_id, overrides, param_defaults, slippery)
    env = GridWorld(
        layout,
        action_deltas=action_deltas,
        slippery=slippery,
        param_defaults=values,
        env_id=env_id,
        **env_kwargs,
    )
    return env, env.default_params


def make_procedural(
    env_id: str,
    template: Layout,
    generator: Generator,
    overrides: dict[str, Any],
    param_defaults: dict[str, Any] | None = None,
    slippery: bool = False,
) -> tuple[ProceduralGridWorld, Any]:
    """Shared factory of the ids whose layout is drawn at reset; their default obs is ``"grid"``."""
    env_kwargs, values, slippery = _split_overrides(
        env_id, overrides, param_defaults, slippery, env_defaults={"obs": "grid"}
    )
    env = ProceduralGridWorld(
        template, generator, slippery=slippery, param_defaults=values, env_id=env_id, **env_kwargs
    )
    return env, env.default_params


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_size(env_id: str, size: Any) -> tuple[int, int]:
    """``size=N`` or ``size=(H, W)`` of a sized family as ``(H, W)`` (ints; ranges are the family's)."""
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{env_id}: size must be an int N or a pair of ints (H, W), got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (a float probability), got {value!r}")
    return float(value)


def _gridworld_4x4(**overrides: Any):
    return make_grid("GridWorld-4x4-v0", BUILTIN_LAYOUTS["4x4"], overrides)


def _gridworld_custom(layout: Layout | str | None = None, **overrides: Any):
    if layout is None:
        raise ValueError(
            "GridWorld-v0 needs a layout: make('GridWorld-v0', layout=TEXT_MAP) "
            "(alphabet: # wall, . floor, S start, G goal, L lava)"
        )
    return make_grid("GridWorld-v0", layout, overrides)


# Gymnasium's slip: the intended move with probability 1/3, each perpendicular move with 1/3.
GYMNASIUM_SLIP_PROB = 2.0 / 3.0


FROZEN_LAKE_CHARS = {"S": "S", "F": ".", "H": "L", "G": "G"}


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
        slippery = _check_bool("is_slippery", is_slippery)
        maps = {"4x4": "frozen-lake-4x4", "8x8": "frozen-lake-8x8"}
        if map_name is not None and (not isinstance(map_name, str) or map_name not in maps):
            raise ValueError(f"unknown FrozenLake map_name {map_name!r}; valid: '4x4', '8x8' (or pass desc=)")
        if desc is not None:
            text = frozen_lake_text(desc, env_id)
        else:
            text = BUILTIN_LAYOUTS[maps.get(map_name, default_map)]
        defaults = {
            "max_steps_in_episode": max_steps,
            "step_reward": 0.0,
            "goal_reward": 1.0,
            "lava_reward": 0.0,
            "lava_terminates": True,
            "slip_prob": GYMNASIUM_SLIP_PROB,
        }
        if success_rate is not None:
            defaults["slip_prob"] = 1.0 - _check_probability("success_rate", success_rate)
        if reward_schedule is not None:
            if not isinstance(reward_schedule, (tuple, list)) or len(reward_schedule) != 3:
                raise ValueError(
                    f"reward_schedule must be 3 finite floats (goal, hole, frozen), got {reward_schedule!r}"
                )
            for label, name, value in zip(("goal", "hole", "frozen"), ("goal_reward", "lava_reward", "step_reward"),
                                          reward_schedule):
                try:
                    defaults[name] = check_param(name, value, to_device=False).item()
                except ValueError as err:
                    raise ValueError(f"reward_schedule ({label}, the {name}): {err}") from None
        return make_grid(
            env_id, text, overrides, action_deltas=LEFT_DOWN_RIGHT_UP, param_defaults=defaults,
            slippery=slippery,
        )

    return factory


# CliffWalking has no time limit in Gymnasium; int32 max stands for "never truncates".
NO_TIME_LIMIT = 2**31 - 1


def _cliff_walking_factory(env_id: str, default_slippery: bool):
    def factory(is_slippery: bool = default_slippery, **overrides: Any):
        slippery = _check_bool("is_slippery", is_slippery)
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


SPARSE_DEFAULTS = {"step_reward": 0.0, "goal_reward": 1.0}


def _four_rooms(**overrides: Any):
    return make_grid(
        "FourRooms-v0", BUILTIN_LAYOUTS["four-rooms"], overrides,
        param_defaults={**SPARSE_DEFAULTS, "max_steps_in_episode": 100},
    )


def _four_rooms_random(**overrides: Any):
    template = Layout.from_text(BUILTIN_LAYOUTS["four-rooms"], name="FourRoomsRandom-v0")
    return make_procedural(
        "FourRoomsRandom-v0", template, random_start_goal_generator, overrides,
        param_defaults={**SPARSE_DEFAULTS, "max_steps_in_episode": 100},
    )


def _four_rooms_random_view5(**overrides: Any):
    # The partially observed variant: an egocentric 5x5 window (obs/view_size may still be overridden).
    template = Layout.from_text(BUILTIN_LAYOUTS["four-rooms"], name="FourRoomsRandom-View5-v0")
    return make_procedural(
        "FourRoomsRandom-View5-v0", template, random_start_goal_generator,
        {"obs": "view", "view_size": 5, **overrides},
        param_defaults={**SPARSE_DEFAULTS, "max_steps_in_episode": 100},
    )


def _empty_room(size: int | tuple[int, int] = 8, **overrides: Any):
    height, width = _check_size("EmptyRoom-v0", size)
    layout = layouts.empty_room(height, width)
    defaults = {"step_reward": -0.01, "goal_reward": 1.0, "max_steps_in_episode": 4 * height * width}
    return make_grid("EmptyRoom-v0", layout, overrides, param_defaults=defaults)


def _maze_factory(env_id: str, size: int):
    def factory(**overrides: Any):
        return make_procedural(
            env_id, maze_template(size, size), maze_generator(size, size), overrides,
            param_defaults={"step_reward": -0.01, "goal_reward": 1.0, "max_steps_in_episode": 2 * size * size},
        )

    return factory


def _maze_any(size: int | tuple[int, int] = 9, **overrides: Any):
    height, width = _check_size("Maze-v0", size)
    return make_procedural(
        "Maze-v0", maze_template(height, width), maze_generator(height, width), overrides,
        param_defaults={"step_reward": -0.01, "goal_reward": 1.0, "max_steps_in_episode": 2 * height * width},
    )


register(
    "GridWorld-4x4-v0",
    _gridworld_4x4,
    "The lesson's 4x4 grid: start 0, wall 5, goal 15; -0.04 per step, +1 at the goal; 50 steps.",
)
register("GridWorld-v0", _gridworld_custom, "Any text layout: make('GridWorld-v0', layout=MAP).")
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
register(
    "FourRooms-v0",
    _four_rooms,
    "Sutton-Precup-Singh four rooms (13x13 with walls, 104 open cells): start top-left corner, "
    "goal bottom-right corner; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "FourRoomsRandom-v0",
    _four_rooms_random,
    "Four rooms with a start and goal drawn uniformly (distinct open cells) at every reset; "
    "obs='grid' by default; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "FourRoomsRandom-View5-v0",
    _four_rooms_random_view5,
    "FourRoomsRandom-v0 seen through an egocentric 5x5 window (obs='view', view_size=5): "
    "partially observed; +1 at the goal, 0 otherwise; 100 steps.",
)
register(
    "EmptyRoom-v0",
    _empty_room,
    "An open room, size=8 by default (size=N or size=(H, W)): start top-left, goal bottom-right; "
    "-0.01 per step, +1 at the goal; 4*H*W steps.",
)
register(
    "Maze-9x9-v0",
    _maze_factory("Maze-9x9-v0", 9),
    "A new perfect maze (randomized Kruskal, 5x5 rooms) with a random start and goal at every reset, "
    "generated on device; obs='grid' by default; -0.01 per step, +1 at the goal; 162 steps.",
)
register(
    "Maze-v0",
    _maze_any,
    "A procedural maze of any odd size: make('Maze-v0', size=21) or size=(H, W); rules as Maze-9x9-v0, "
    "2*H*W steps.",
)
register(
    "Maze-15x15-v0",
    _maze_factory("Maze-15x15-v0", 15),
    "As Maze-9x9-v0 on a 15x15 grid (8x8 rooms); 450 steps.",
)

# Env families in modules of their own register their ids on import (they import ``register``).
from jaxgrid import tmaze  # noqa: E402,F401  (TMaze-v0)
