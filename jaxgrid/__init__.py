"""jaxgrid: JAX-native gridworld environments on the gymnax 1.x API.

>>> import jax, jaxgrid
>>> env, params = jaxgrid.make("GridWorld-4x4-v0")
>>> obs, state = env.reset(jax.random.PRNGKey(0), params)

Ids: ``registered_ids()`` (the lesson's 4x4 grid, any text map, Gymnasium's FrozenLake and
CliffWalking ports, four rooms, empty rooms, procedural mazes). Importing jaxgrid also registers every
id with Gymnasium as ``jaxgrid/<id>`` (``gymnasium.make`` / ``gymnasium.make_vec``).
"""

from jaxgrid import gym_adapter
from jaxgrid.env import GridWorld
from jaxgrid.layouts import Layout
from jaxgrid.registry import make, parse_overrides, register, registered_ids
from jaxgrid.types import GridParams, GridState, SlipperyGridParams
from jaxgrid.vec import VecEnv, default_reset_capacity

__all__ = [
    "GridParams",
    "GridState",
    "GridWorld",
    "Layout",
    "SlipperyGridParams",
    "VecEnv",
    "default_reset_capacity",
    "make",
    "parse_overrides",
    "register",
    "registered_ids",
]
__version__ = "0.1.0"

# gymnasium.make("jaxgrid/<id>") and gymnasium.make_vec("jaxgrid/<id>", num_envs=N).
gym_adapter.register_gymnasium_envs()
