"""``train.xla_flags``: ``import train`` turns XLA:CPU's concurrency-optimised scheduler off (it made
the trainer's programs 4-7x slower on some calls on a 2-core CPU; ``bench/xla_scheduler.py``),
unless the user's ``XLA_FLAGS`` names the option; the flag reaches XLA (the compiled program's
schedule changes) and changes no result (training is bitwise the same)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from tests.conftest import run_python
from train import xla_flags

REPO = str(Path(__file__).resolve().parents[2])
OPTION = xla_flags.SCHEDULER_OPTION


@pytest.fixture
def no_backend(monkeypatch):
    """As if jax had not started its backend yet (this test process has)."""
    monkeypatch.setattr(xla_flags, "_backend_started", lambda: False)


def test_configure_xla_cpu__adds_the_flag_and_keeps_the_users_other_flags(monkeypatch, no_backend):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert xla_flags.configure_xla_cpu() == (f"--{OPTION}=false",)
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_enable_fast_math=false --{OPTION}=false"
    assert xla_flags.configure_xla_cpu() == ()  # once only
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_flags.configure_xla_cpu() == (f"--{OPTION}=false",)
    assert os.environ["XLA_FLAGS"] == f"--{OPTION}=false"


def test_configure_xla_cpu__a_users_own_setting_of_the_option_wins(monkeypatch, no_backend):
    for own in (f"--{OPTION}=true", f"--xla_dump_to=/tmp/x --{OPTION} ", f"-{OPTION}=true"):
        monkeypatch.setenv("XLA_FLAGS", own)
        assert xla_flags.configure_xla_cpu() == (), own
        assert os.environ["XLA_FLAGS"] == own


@pytest.mark.parametrize("flags", [f"--xla_dump_to=/tmp/{OPTION}", f"--{OPTION}_v2=true", f"--x{OPTION}=true"])
def test_configure_xla_cpu__the_option_name_inside_another_flag_does_not_count(monkeypatch, no_backend, flags):
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert xla_flags.configure_xla_cpu() == (f"--{OPTION}=false",)
    assert os.environ["XLA_FLAGS"] == f"{flags} --{OPTION}=false"


def test_configure_xla_cpu__warns_when_jax_already_started_its_backend(monkeypatch):
    """This test process has started jax's backend (pytest ran jax computations, or does now)."""
    import jax

    jax.devices()
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with pytest.warns(RuntimeWarning, match="backend started before `import train`"):
        assert xla_flags.configure_xla_cpu() == (f"--{OPTION}=false",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xla_flags.configure_xla_cpu() == ()  # already named: nothing added, no warning


_SCRIPT = """
import hashlib, json, os, sys
sys.path.insert(0, {repo!r})
import train  # sets the flag unless XLA_FLAGS names it
import jax, numpy as np
from train import presets
from train.placement import Placement, compile_program, rng_config
from train.ppo import make_train

config = presets.preset_config("Maze-9x9-v0", seeds=(0, 1), num_envs=8, num_steps=16, num_eval_envs=4)
placement = Placement.build(config, 1)
trainer = make_train(config, placement)
keys, hparams = placement.keys(), placement.hparams()
with rng_config():
    state_out, out = placement.out_shardings(jax.eval_shape(trainer.init, keys))
    state = compile_program(trainer.init, keys, out_shardings=state_out)(keys)
    run = compile_program(lambda s, h: trainer.run_updates(s, h, 2), state, hparams, out_shardings=(state_out, out))
    state, metrics = run(state, hparams)
digest = hashlib.sha256()
for x in jax.tree.leaves((state.params, metrics)):
    digest.update(np.asarray(x).tobytes())
print(json.dumps({{"xla_flags": os.environ["XLA_FLAGS"], "results": digest.hexdigest(),
                   "schedule": hashlib.sha256(run.as_text().encode()).hexdigest()}}))
"""


@pytest.mark.timeout(400)
def test_import_train__the_flag_reaches_xla_and_training_is_bitwise_unchanged():
    """A fresh interpreter with no XLA_FLAGS gets the flag from ``import train``; one whose
    XLA_FLAGS turns the scheduler back on keeps it. The two compile the same training program
    with a different schedule (so the flag took effect) and give bitwise the same parameters and
    metrics after 2 PPO updates (Maze-9x9-v0's preset: the dense image network, 2 seeds)."""
    code = _SCRIPT.format(repo=REPO)
    base = {"JAX_NUM_CPU_DEVICES": "1", "PYTHONPATH": REPO}
    ours = json.loads(run_python(code, env={**base, "XLA_FLAGS": ""}, timeout=300).strip().splitlines()[-1])
    xla_default = json.loads(run_python(code, env={**base, "XLA_FLAGS": f"--{OPTION}=true"},
                                        timeout=300).strip().splitlines()[-1])
    assert ours["xla_flags"] == f"--{OPTION}=false"
    assert xla_default["xla_flags"] == f"--{OPTION}=true"
    assert ours["schedule"] != xla_default["schedule"]
    assert ours["results"] == xla_default["results"]
