"""The jaxgrid-train command on a tiny run, in a subprocess (so it configures jax's devices)."""

import os
import subprocess
import sys

import pytest

from train.cli import _split_extras, check_repeated_flags, parse_env_kwargs, parse_seeds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_parse_seeds_ranges():
    assert parse_seeds(["0-3,8"]) == (0, 1, 2, 3, 8)
    assert parse_seeds(["0", "2", "5-6"]) == (0, 2, 5, 6)
    assert parse_seeds(["0-15"]) == tuple(range(16))
    with pytest.raises(ValueError, match="empty"):
        parse_seeds(["5-2"])


@pytest.mark.parametrize("token", ["a", "1.5", "0-x", "3-", "--"])
def test_parse_seeds__a_non_seed_is_an_error_naming_the_flag(token):
    with pytest.raises(ValueError, match=rf"--seeds: {token!r} is not a seed; give non-negative ints or ranges"):
        parse_seeds([token])


def test_repeated_seeds_and_env_kwargs_add_up_and_other_repeated_flags_are_refused():
    extras, _ = _split_extras(["--seeds", "0", "--seeds", "5-6", "--env-kwargs", "a=1", "--env_kwargs", "b=2"])
    assert parse_seeds(extras.seeds) == (0, 5, 6)
    assert extras.env_kwargs == ["a=1", "b=2"]
    check_repeated_flags(["--seeds", "0", "--seeds", "5", "--env-kwargs", "a=1", "--env-kwargs", "b=2"])
    for argv, flag in [(["--name", "a", "--name", "b"], "--name"), (["--out=x", "--out", "y"], "--out"),
                       (["--learning-rate", "1", "--learning_rate", "2"], "--learning-rate"),
                       (["--devices", "1", "--devices", "2"], "--devices")]:
        with pytest.raises(ValueError, match=f"{flag} is given more than once"):
            check_repeated_flags(argv)


def test_parse_env_kwargs():
    assert parse_env_kwargs(["max_steps_in_episode=100", "name=abc"]) == {
        "max_steps_in_episode": 100,
        "name": "abc",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env_kwargs(["oops"])


def _run(*args, timeout=200):
    env = dict(os.environ, PYTHONPATH=REPO, XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", "/tmp"))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return subprocess.run(
        [sys.executable, "-m", "train.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


@pytest.mark.timeout(240)
def test_cli__tiny_run_prints_the_seed_table(tmp_path):
    proc = _run(
        "--seeds", "0-2", "--total-timesteps", "1024", "--num-envs", "8", "--num-steps", "32",
        "--sweep", "learning_rate", "0.001", "0.01", "--no-cache", "--out", str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    # The progress bar (stderr) reached the last of the 4 updates, fed from the host per chunk.
    assert "4/4" in proc.stderr and "upd" in proc.stderr
    out = proc.stdout
    assert "IQM [95% CI]" in out
    assert "learning_rate=0.001" in out and "learning_rate=0.01" in out
    assert "0:" in out and "2:" in out and "3:" not in out.split("per seed")[1].split("\n")[0]
    assert "env steps/s" in out
    assert "host CPU devices" in proc.stderr  # one device per core, said out loud


@pytest.mark.timeout(240)
def test_cli__no_run_dir_is_one_program_with_the_in_program_progress_bar(tmp_path):
    proc = _run(
        "--seeds", "0-1", "--total-timesteps", "1024", "--num-envs", "8", "--num-steps", "32",
        "--no-run-dir", "--no-cache",
    )
    assert proc.returncode == 0, proc.stderr
    assert "IQM [95% CI]" in proc.stdout and "run directory" not in proc.stdout
    # Fed by the host callback inside the fused scan: it reached the last update.
    assert "4/4" in proc.stderr and "upd" in proc.stderr


@pytest.mark.timeout(60)
def test_cli__bad_config_is_a_clear_error():
    proc = _run("--num-minibatches", "3", "--no-cache", timeout=50)
    assert proc.returncode == 2
    assert "num_minibatches=3" in proc.stderr and "must divide" in proc.stderr


@pytest.mark.parametrize("argv, env_id, env_kwargs", [
    (["--env-id", "Maze-v0", "--env-kwargs", "size=9"], "Maze-v0", {"size": 9}),  # no preset
    (["--env-id", "TMaze-v0", "--env-kwargs", "length=3", "--no-preset"], "TMaze-v0", {"length": 3}),
    (["--env-id=TMaze-v0", "--env-kwargs", "length=3"], "TMaze-v0", {"length": 3}),  # its preset
])
def test_parse_config__env_kwargs_are_checked_against_the_given_env_id(argv, env_id, env_kwargs):
    """--env-kwargs are validated before tyro parses --env-id; they must be checked against that
    id's env, not the default GridWorld-4x4-v0's (which has no ``size``/``length``)."""
    from train.cli import _parse_config

    extras, rest = _split_extras(argv)
    config = _parse_config(extras, rest)
    assert not isinstance(config, int), config  # an int is the exit code of a refused config
    assert config.env_id == env_id and dict(config.env_kwargs) == env_kwargs
