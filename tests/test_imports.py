"""Time to first result: importing jaxgrid and the trainer's run path loads only what a run uses
(not gymnax's registry of every env, seaborn, scipy.stats, matplotlib, TensorBoard or W&B), and
gymnax's own modules stay the ones jaxgrid loaded when gymnax is imported later."""

from __future__ import annotations

import json

from tests.conftest import run_python

# Heavy modules a plain jaxgrid run never needs at import time (matplotlib and tensorboardX are
# imported later, on loggers' background threads, only when a run writes a plot or event files).
HEAVY = (
    "gymnax.registration",  # imports every gymnax env
    "gymnax.environments.misc",
    "seaborn",
    "pandas",
    "scipy.stats",
    "matplotlib",
    "tensorboardX",
    "torch",
    "wandb",
)

LOADED = """
import json, sys
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def loaded_after(code: str) -> list[str]:
    out = run_python(code + LOADED.format(heavy=HEAVY), env={"JAX_PLATFORMS": "cpu"})
    return json.loads(out.strip().splitlines()[-1])


def test_import_jaxgrid_and_train_load_nothing_heavy():
    assert loaded_after("import jaxgrid\nimport train\n") == []


def test_the_run_path_loads_nothing_heavy_until_it_runs():
    # Everything jaxgrid-train imports before training, and a jaxgrid env built through the trainer.
    code = """
import jaxgrid, train
from train import cli, config, entry, loggers, report, runs, trainer
from train.envs import make_env
env, params = make_env("GridWorld-4x4-v0")
cfg = config.PPOConfig()
loggers.run_dir_loggers(tensorboard=True)
"""
    assert loaded_after(code) == []


def test_a_gymnax_id_does_load_gymnax_registry():
    # The check above can fail: a gymnax id imports gymnax's registry (and with it seaborn).
    loaded = loaded_after("from train.envs import make_env\nmake_env('CartPole-v1')\n")
    assert "gymnax.registration" in loaded


def test_gymnax_imported_after_jaxgrid_shares_its_base_modules():
    out = run_python(
        """
import jaxgrid
from jaxgrid.gymnax_base import environment, spaces
import gymnax
from gymnax.environments import spaces as gymnax_spaces
env, params = gymnax.make("CartPole-v1")
grid, grid_params = jaxgrid.make("GridWorld-4x4-v0")
print(gymnax_spaces is spaces, gymnax.environments.spaces is spaces,
      gymnax.environments.environment is environment,
      isinstance(env, environment.Environment), isinstance(grid, gymnax.environments.environment.Environment),
      isinstance(env.action_space(params), spaces.Discrete))
""",
        env={"JAX_PLATFORMS": "cpu"},
    )
    assert out.split() == ["True"] * 6
