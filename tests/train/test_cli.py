"""The jaxgrid-train command: its parsing (tyro, presets, resume defaults), its help, and a tiny
run in a subprocess (so it configures jax's devices)."""

import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from train import presets
from train.cli import (
    EvalCommand,
    TrainCommand,
    check_repeated_flags,
    main,
    parse_command,
    parse_env_kwargs,
    parse_seeds,
    parse_train,
)
from train.config import PPOConfig

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
    flags = parse_command(["--seeds", "0", "--seeds", "5-6", "--env-kwargs", "a=1", "--env_kwargs", "b=2"]).config
    assert parse_seeds(list(itertools.chain(*flags.seeds))) == (0, 5, 6)
    assert list(itertools.chain(*flags.env_kwargs)) == ["a=1", "b=2"]
    config = parse_command(["--seeds", "0", "--seeds", "5-6", "--env-kwargs", "max_steps_in_episode=7",
                            "--env_kwargs", "step_reward=-0.5"]).config.to_config()
    assert config.seeds == (0, 5, 6) and config.env_kwargs == {"max_steps_in_episode": 7, "step_reward": -0.5}
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
    _, config = parse_train(argv, parse_command(argv))
    assert config.env_id == env_id and dict(config.env_kwargs) == env_kwargs


# ------------------------------------------------------------------------------------------------
# Presets, resume defaults and subcommands, all parsed by tyro
def test_parse_command__subcommands_and_the_implied_train():
    assert isinstance(parse_command([]), TrainCommand)
    assert parse_command(["train", "--env-id", "EmptyRoom-v0"]) == parse_command(["--env-id", "EmptyRoom-v0"])
    # a --no-X flag first selects train too (tyro 1.0's implicit subcommand would not)
    command = parse_command(["--no-anneal-lr", "--no-cache", "--no-run-dir", "--no-tensorboard", "--quiet"])
    assert command.config.anneal_lr is False and command.devices.cache is False
    assert command.run.run_dir is False and command.run.tensorboard is False and command.run.quiet is True
    assert parse_command(["eval", "runs/x", "--episodes", "3", "--no-gif"]) == EvalCommand("runs/x", 3, False)


def test_parse_command__the_old_flags_and_their_underscore_spellings_still_parse():
    """Every flag of the argparse pre-parser this CLI replaced, as it was spelled."""
    argv = ("--no_cache --no_run_dir --no_tensorboard --checkpoint_every 3 --env_parallel --wandb_project p "
            "--wandb_group g --coordinator h:1 --num_processes 2 --process_id 1 --distributed_timeout 5 "
            "--no_preset --env_kwargs a=1 --quiet --devices 2 --out o --name n --overwrite --track wandb").split()
    command = parse_command(argv)
    assert command.run == dataclasses.replace(
        command.run, out="o", name="n", overwrite=True, checkpoint_every=3, run_dir=False, tensorboard=False,
        track=("wandb",), wandb_project="p", wandb_group="g", quiet=True)
    assert command.devices == dataclasses.replace(
        command.devices, devices=2, env_parallel=True, cache=False, coordinator="h:1", num_processes=2,
        process_id=1, distributed_timeout=5)
    assert command.preset is False and command.config.env_kwargs == (("a=1",),)
    assert parse_command(["--distributed", "auto", "--resume", "r"]).devices.distributed == "auto"


def _config(argv):
    return parse_train(argv, parse_command(argv))[1]


def test_parse_train__a_flag_given_wins_over_the_preset_even_at_ppoconfigs_default():
    preset = presets.PRESETS["FrozenLake-v1"].overrides
    assert _config(["--env-id", "FrozenLake-v1"]) == presets.preset_config("FrozenLake-v1")
    assert _config(["--env-id", "FrozenLake-v1", "--num-envs", "8"]) == presets.preset_config("FrozenLake-v1", num_envs=8)
    # PPOConfig's own default value, given explicitly, is not mistaken for "not given"
    lr = PPOConfig().learning_rate
    assert preset["learning_rate"] != lr
    assert _config(["--env-id", "FrozenLake-v1", "--learning-rate", str(lr)]).learning_rate == lr
    assert _config(["--env-id", "FrozenLake-v1", "--no-preset"]) == PPOConfig(env_id="FrozenLake-v1")
    # a bool the preset turns off, turned on by its flag
    assert presets.PRESETS["FourRooms-v0"].overrides["normalize_advantage"] is False
    assert _config(["--env-id", "FourRooms-v0"]).normalize_advantage is False
    assert _config(["--env-id", "FourRooms-v0", "--normalize-advantage"]).normalize_advantage is True


def test_parse_train__a_presets_env_kwargs_are_used_and_env_kwargs_flags_add_to_them():
    preset = presets.PRESETS["FourRoomsRandom-v0"].overrides["env_kwargs"]
    assert preset["obs"] == "view"
    assert _config(["--env-id", "FourRoomsRandom-v0"]) == presets.preset_config("FourRoomsRandom-v0")
    assert _config(["--env-id", "FourRoomsRandom-v0", "--env-kwargs", "max_steps_in_episode=50"]).env_kwargs == {
        **preset, "max_steps_in_episode": 50}
    assert _config(["--env-id", "FourRoomsRandom-v0", "--env-kwargs", "obs='grid'"]).env_kwargs["obs"] == "grid"
    assert _config(["--env-id", "FourRoomsRandom-v0", "--no-preset"]).env_kwargs == {}


def test_parse_train__resume_takes_the_runs_config_as_defaults(tmp_path):
    from train.runs import CONFIG_FILE, config_to_dict

    saved = PPOConfig(env_id="TMaze-v0", env_kwargs={"length": 3}, seeds=(4, 5), num_envs=8, learning_rate=1e-3)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config_to_dict(saved)))
    assert _config(["--resume", str(tmp_path)]) == saved  # no preset applies on resume
    asked = _config(["--resume", str(tmp_path), "--learning-rate", "3e-4", "--seeds", "4-6"])
    assert asked == dataclasses.replace(saved, learning_rate=3e-4, seeds=(4, 5, 6))
    with pytest.raises(FileNotFoundError, match="is not a run directory: it does not exist"):
        _config(["--resume", str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a run directory: config.json is missing"):
        _config(["--resume", str(tmp_path / "empty")])


def test_parse__bad_input_is_one_clear_error_before_anything_runs(capsys):
    for argv, message in [
        (["--devices", "0"], "argument --devices: must be an int >= 1, got 0"),
        (["--process-id", "-1"], "argument --process-id/--process_id: must be an int >= 0, got -1"),
        (["--quiet", "--quiet"], "--quiet is given more than once"),
        (["eval", "runs/x", "--episodes", "0"], "--episodes must be >= 1, got 0"),
    ]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    for argv in (["--bogus"], ["--num-envs", "many"], ["eval"]):  # tyro's own errors: exit 2
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    with pytest.raises(ValueError, match=r"--seeds: 'a' is not a seed"):
        _config(["--seeds", "a"])


# ------------------------------------------------------------------------------------------------
# The help: generated by tyro from the dataclasses' docstrings, without importing jax
_HELP = """
import sys
from train import cli
try:
    cli.main({argv!r})
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = ("jax", "jaxgrid", "matplotlib", "tensorboardX", "wandb", "gymnax")
print("LOADED", sorted(m for m in heavy if m in sys.modules))
"""


def _help(*argv: str) -> str:
    env = dict(os.environ, PYTHONPATH=REPO, COLUMNS="200")
    proc = subprocess.run([sys.executable, "-c", _HELP.format(argv=list(argv))], env=env, capture_output=True,
                          text=True, timeout=100, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help__every_flag_with_its_docstring_and_nothing_heavy_imported():
    text = _help("--help")
    assert "LOADED []" in text  # neither jax nor jaxgrid, plots or loggers
    for field in dataclasses.fields(PPOConfig):  # every config field, with its docstring's first words
        assert "--" + field.name.replace("_", "-") in text, field.name
    assert "Discount factor γ, in (0, 1]." in text and "Adam step size" in text
    for flag in ("--seeds SEEDS", "--env-kwargs KEY=VALUE", "--no-preset", "--quiet", "--devices N", "--no-cache",
                 "--env-parallel", "--coordinator HOST:PORT", "--num-processes N", "--process-id I",
                 "--distributed auto", "--distributed-timeout SECONDS", "--out", "--name NAME",
                 "--resume RUN_DIR", "--overwrite", "--checkpoint-every N", "--no-tensorboard", "--track TRACKER",
                 "--wandb-project PROJECT", "--wandb-group GROUP", "--no-run-dir"):
        assert flag in text, flag
    assert "jaxgrid-train eval RUN_DIR" in text  # the other subcommand is named
    assert "(default: 16384)" in text  # PPOConfig's default total_timesteps


def test_help__shows_the_presets_defaults_and_eval_has_its_own():
    text = _help("--env-id", "FrozenLake-v1", "--help")
    preset = presets.PRESETS["FrozenLake-v1"].overrides
    assert f"(default: {preset['total_timesteps']})" in text and "(default: 16384)" not in text
    text = _help("eval", "--help")
    assert "RUN_DIR" in text and "--episodes N" in text and "--no-gif" in text and "LOADED []" in text


def _readme_commands() -> list[list[str]]:
    """Every ``jaxgrid-train`` command of the README's code blocks, and of its inline code where
    that is a whole command (a flag, no placeholder such as ``ID`` or ``...``), as argv."""
    text = open(os.path.join(REPO, "README.md")).read()
    lines, in_block = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
        elif in_block:
            lines.append(re.split(r"(?:^|\s)#", line)[0])  # without the comment
    inline = [span.split() for span in re.findall(r"`(jaxgrid-train [^`\n]*)`", text)]
    commands = [words[words.index("jaxgrid-train") + 1:] for words in map(str.split, lines)
                if "jaxgrid-train" in words]
    commands += [words[1:] for words in inline if any(w.startswith("--") for w in words)
                 and not any(w.isupper() or w == "..." for w in words)]
    return commands


def test_readme_commands_parse_verbatim_into_valid_configs():
    commands = _readme_commands()
    assert len(commands) >= 15 and [] in commands and ["eval", "runs/long"] in commands
    for argv in commands:
        if "--help" in argv:
            continue
        command = parse_command(argv)
        if isinstance(command, TrainCommand) and command.run.resume is None:
            config = command.config.to_config()  # PPOConfig's validation: a valid config
            assert config.env_id == command.config.env_id, argv


@pytest.mark.parametrize("error", ["interrupted", "bad_config"])
def test_train__progress_bar_is_closed_before_a_stop_or_error_message(monkeypatch, tmp_path, error):
    """The interrupted (or error) line is printed after the progress bar is closed, so it starts a
    line of its own instead of following the bar's last drawing."""
    import types
    from pathlib import Path

    from train import cli, runs

    events = []

    class Bar:
        def close(self):
            events.append("close")

    def stop(*args, **kwargs):
        if error == "interrupted":
            raise runs.RunInterrupted(Path("runs/x"), 7)
        raise ValueError("a bad config")

    class Stderr:
        def write(self, text):
            if text.strip():
                events.append(text.strip())

        def flush(self):
            pass

    monkeypatch.setattr(runs, "train_in_run_dir", stop)
    monkeypatch.setattr(sys, "stderr", Stderr())
    run = types.SimpleNamespace(run_dir=True, out=tmp_path, name="x", resume=None, overwrite=False, checkpoint_every=None)
    command = types.SimpleNamespace(run=run, devices=types.SimpleNamespace(env_parallel=False))
    code = cli._train(PPOConfig(), command, 1, Bar(), [], types.SimpleNamespace(loggers=[]))
    assert code == (130 if error == "interrupted" else 2)
    assert events[0] == "close", events
    assert ("interrupted at update 7" if error == "interrupted" else "a bad config") in events[1]
