"""The registry: each env family registers its ids beside its factories, ``register`` adds an id
that ``make`` and Gymnasium both serve, and bad ids are refused naming the valid ones."""

from __future__ import annotations

import json

import chex
import numpy as np
import pytest

import jaxgrid
from jaxgrid import registry
from tests.conftest import run_python

pytestmark = pytest.mark.timeout(240)

FAMILIES = {
    "jaxgrid.grids": {"GridWorld-4x4-v0", "GridWorld-v0", "FourRooms-v0", "EmptyRoom-v0"},
    "jaxgrid.toytext": {"FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "CliffWalkingSlippery-v1"},
    "jaxgrid.procedural": {"FourRoomsRandom-v0", "FourRoomsRandom-View5-v0", "Maze-9x9-v0", "Maze-15x15-v0",
                           "Maze-v0"},
    "jaxgrid.tmaze": {"TMaze-v0"},
}


def test_registry__each_family_registers_its_ids_beside_its_factories():
    assert set(registry.FAMILY_MODULES) == set(FAMILIES)
    assert set(jaxgrid.registered_ids()) == set().union(*FAMILIES.values())
    for module, ids in FAMILIES.items():
        for env_id in ids:
            assert registry.family_of(env_id) == module, env_id


def test_registry__unknown_id_names_the_closest_and_lists_all():
    with pytest.raises(ValueError, match="Did you mean 'FrozenLake-v1'") as err:
        jaxgrid.make("FrozenLak-v1")
    for env_id in jaxgrid.registered_ids():
        assert env_id in str(err.value)
    with pytest.raises(ValueError, match="unknown env id"):
        registry.family_of("Nope-v0")


def test_registry__an_id_is_registered_once():
    with pytest.raises(ValueError, match="'GridWorld-4x4-v0' is already registered"):
        jaxgrid.register("GridWorld-4x4-v0", lambda **kw: jaxgrid.make("GridWorld-4x4-v0", **kw))


def test_register__a_new_family_is_served_by_make_and_gymnasium():
    # In a fresh interpreter, so the new id does not reach the other tests' registry.
    out = run_python(
        """
import json
import gymnasium, jaxgrid
from jaxgrid.grids import make_grid

def factory(**overrides):
    return make_grid("Corridor-v0", "S...G", overrides, param_defaults={"max_steps_in_episode": 9})

jaxgrid.register("Corridor-v0", factory, "a corridor")
env, params = jaxgrid.make("Corridor-v0", step_reward=-0.5)
genv = gymnasium.make("jaxgrid/Corridor-v0")
obs, _ = genv.reset(seed=0)
print(json.dumps([env.name, int(params.max_steps_in_episode), float(params.step_reward),
                  "Corridor-v0" in jaxgrid.registered_ids(), jaxgrid.registry.describe("Corridor-v0"),
                  jaxgrid.registry.family_of("Corridor-v0"), int(obs)]))
""",
        env={"JAX_PLATFORMS": "cpu"},
    )
    assert json.loads(out.strip().splitlines()[-1]) == ["Corridor-v0", 9, -0.5, True, "a corridor", "__main__", 0]


def test_params_for_layout__keeps_procedural_defaults():
    env, params = jaxgrid.make("Maze-v0", size=7, step_reward=-0.2)
    other = env.params_for_layout(jaxgrid.Layout.from_text("S......\n" + ".......\n" * 5 + "......G"))
    assert int(other.max_steps_in_episode) == 2 * 7 * 7
    for name in env.param_names:
        chex.assert_trees_all_equal(getattr(other, name), getattr(params, name))
    assert not np.array_equal(np.asarray(other.cell_kind), np.asarray(params.cell_kind))
