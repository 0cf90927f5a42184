"""jaxgrid: JAX-native gridworld environments on the gymnax 1.x API.

>>> import jax, jaxgrid
>>> env, params = jaxgrid.make("GridWorld-4x4-v0")
>>> obs, state = env.reset(jax.random.PRNGKey(0), params)

Ids: ``registered_ids()`` (the lesson's 4x4 grid, any text map, four rooms, empty rooms:
``grids.py``; Gymnasium's FrozenLake and CliffWalking ports: ``toytext.py``; random rooms and
procedural mazes: ``procedural.py``; the TMaze-v0 memory task: ``tmaze.py``). Importing
jaxgrid also registers every id with Gymnasium as ``jaxgrid/<id>`` (``gymnasium.make`` / ``gymnasium.make_vec``).
"""

from jaxgrid import gym_adapter, registry
from jaxgrid.env import GridWorld, validate_params
from jaxgrid.layouts import Layout
from jaxgrid.optimal import OptimalReturn, is_deterministic, optimal_return
from jaxgrid.registry import check_make, make, parse_overrides, register, registered_ids
from jaxgrid.replay import Episode, episode_frames, replay_episode
from jaxgrid.types import GridParams, GridState, SlipperyGridParams
from jaxgrid.vec import VecEnv, default_reset_capacity

__all__ = [
    "Episode",
    "GridParams",
    "GridState",
    "GridWorld",
    "Layout",
    "OptimalReturn",
    "SlipperyGridParams",
    "VecEnv",
    "check_make",
    "default_reset_capacity",
    "episode_frames",
    "is_deterministic",
    "make",
    "optimal_return",
    "parse_overrides",
    "register",
    "registered_ids",
    "replay_episode",
    "validate_params",
]
__version__ = "0.1.0"

# Every env family registers its ids on import (jaxgrid/grids.py, toytext.py, procedural.py, tmaze.py).
registry.load_families()
# gymnasium.make("jaxgrid/<id>") and gymnasium.make_vec("jaxgrid/<id>", num_envs=N).
gym_adapter.register_gymnasium_envs()
