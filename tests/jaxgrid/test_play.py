"""``jaxgrid play`` / ``jaxgrid render``: the session logic, plain output in a subprocess, and the
terminal widget driven through a pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jaxgrid
from jaxgrid import cli
from jaxgrid.layouts import Layout
from jaxgrid.play import PlaySession

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "jaxgrid"
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}
LOG_LINE = re.compile(
    r"^ep \d+ t=\d+\s+action=(\d) \((\w+)\s*\) obs=(\S+) reward=([+-]\d+\.\d\d) "
    r"terminated=(True|False) truncated=(True|False)( final_obs=\S+)?$"
)


def _run(*args: str, timeout: float = 100) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def test_console_script__is_installed():
    assert SCRIPT.exists(), "the `jaxgrid` console script is declared in pyproject.toml; pip install -e ."


def test_play_plain__random_policy_prints_every_step():
    out = _run("play", "GridWorld-4x4-v0", "--policy", "random", "--steps", "20")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    steps = [m for m in map(LOG_LINE.match, lines) if m]
    assert len(steps) == 20
    assert lines[0] == "# jaxgrid play GridWorld-4x4-v0: policy=random steps=20"
    assert lines[1] == "# actions: 0 up, 1 right, 2 down, 3 left"
    assert all(m.group(2) == ("up", "right", "down", "left")[int(m.group(1))] for m in steps)
    assert sum(line.count("A") for line in lines if re.fullmatch(r"[.#GLA]{4}", line)) == 21  # a grid per step
    assert lines[-1].startswith("# episodes finished:")


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """The console script's ``main`` in this process (the subprocess tests above cover the script)."""
    rc = cli.main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_play_plain__greedy_policy_solves_the_4x4_grid_and_cliff(capsys):
    rc, out, _ = _main(capsys, "play", "GridWorld-4x4-v0", "--policy", "greedy", "--steps", "6", "--no-grid")
    assert rc == 0 and out.splitlines()[-1] == "# episodes finished: 1; returns: +0.80"
    assert "terminated=True truncated=False final_obs=15" in out
    rc, out, _ = _main(capsys, "play", "CliffWalking-v1", "--policy", "greedy", "--steps", "13", "--no-grid")
    assert rc == 0 and out.splitlines()[-1] == "# episodes finished: 1; returns: -13.00"


def test_play_plain__overrides_obs_and_layout_from_the_command_line(capsys):
    rc, out, err = _main(capsys, "play", "GridWorld-v0", "--layout", "S.L\\n..G", "--policy", "greedy",
                         "--steps", "3", "--set", "step_reward=-0.5", "--obs", "coords", "--no-grid")
    assert rc == 0, err
    assert "action=1 (right) obs=[0,1] reward=-0.50" in out
    assert out.splitlines()[-1] == "# episodes finished: 1; returns: +0.00"  # -0.5 - 0.5 + 1


def test_play__errors_are_clear(capsys):
    rc, _, err = _main(capsys, "play", "FrozenLak-v1", "--steps", "2")
    assert rc == 2 and "unknown env id 'FrozenLak-v1'. Did you mean 'FrozenLake-v1'" in err
    rc, _, err = _main(capsys, "play", "GridWorld-4x4-v0", "--set", "slip_prob=3", "--steps", "1")
    assert rc == 2 and "slip_prob must be in [0, 1], got 3" in err
    rc, _, err = _main(capsys, "render", "GridWorld-4x4-v0", "--policy", "manual", "--out", "x.png")
    assert rc == 2 and "render needs --policy random or greedy" in err


def test_list__prints_every_id_with_its_rules(capsys):
    rc, out, _ = _main(capsys, "list")
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()] == list(jaxgrid.registered_ids())
    assert "hole terminates" in out


def test_render__writes_png_strip_and_gif(tmp_path):
    png, gif = tmp_path / "ep.png", tmp_path / "ep.gif"
    assert cli.main(["render", "GridWorld-4x4-v0", "--policy", "greedy", "--out", str(png), "--cell-px", "10"]) == 0
    assert cli.main(["render", "GridWorld-4x4-v0", "--policy", "greedy", "--out", str(gif), "--cell-px", "10"]) == 0
    strip = Image.open(png)
    assert strip.size == (7 * 40 + 6 * 2, 40)  # reset frame + 6 steps, 2-px gaps
    anim = Image.open(gif)
    assert anim.n_frames == 7 and anim.size == (40, 40)


def test_session__keys_map_to_the_envs_own_action_order():
    session = PlaySession("FrozenLake-v1", is_slippery=False)
    assert session.action_for_direction("right") == 2 and session.action_for_direction("up") == 3
    assert session.handle_key("right") and session.handle_key("down")
    assert [r.action for r in session.log] == [2, 1] and int(session.state.pos) == 0  # hole (1, 1): reset
    assert session.log[-1].terminated and session.done and session.episode_returns == [0.0]
    assert int(session.final_state.pos) == 5 and session.grid_text(state=session.final_state).splitlines()[1] == ".A.L"
    assert session.handle_key("r") and session.episode == 3 and session.t == 0
    assert session.handle_key("?") and len(session.log) == 2  # unknown keys do nothing
    assert not session.handle_key("q")


def test_session__greedy_policy_walks_shortest_paths_in_mazes():
    """Ten mazes in a row (each auto-reset draws a new one): greedy takes exactly the BFS distance."""
    session = PlaySession("Maze-15x15-v0", seed=3)
    for episode in range(10):
        kind = np.asarray(session.state.cell_kind).reshape(15, 15)
        dist = Layout(kind=kind, start=np.zeros_like(kind, bool)).distance_to_goal()
        shortest = int(dist.reshape(-1)[int(session.state.pos)])
        assert shortest > 0
        for t in range(shortest):
            assert not session.done or t == 0
            session.step(session.greedy_action())
        assert session.done and session.log[-1].terminated, episode
        assert np.isclose(session.episode_returns[-1], 1.0 - 0.01 * (shortest - 1))
    assert len(session.episode_returns) == 10


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_play_widget__arrow_keys_in_a_pseudo_terminal():
    """The curses widget: six arrow keys walk the 4x4 grid to the goal; q quits cleanly."""
    import pty

    # A subprocess on the slave side of a pseudo-terminal (no os.fork of this jax process).
    fd, slave = pty.openpty()
    term_env = {**ENV, "TERM": "xterm", "LINES": "40", "COLUMNS": "140"}
    proc = subprocess.Popen([str(SCRIPT), "play", "GridWorld-4x4-v0"], stdin=slave, stdout=slave,
                            stderr=slave, env=term_env, start_new_session=True)
    os.close(slave)
    out = b""

    def read(seconds: float, until: bytes | None = None) -> None:
        nonlocal out
        end = time.time() + seconds
        while time.time() < end and (until is None or until not in out):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    return

    try:
        read(60, until=b"log (obs")
        assert b"log (obs" in out, out[-500:]
        for key in (b"\x1bOC",) * 3 + (b"\x1bOB",) * 3:  # right x3, down x3 (keypad mode)
            os.write(fd, key)
            read(0.4)
        read(2, until=b"+0.80")
        os.write(fd, b"q")
        read(5)
    finally:
        try:
            returncode = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(fd)
    assert returncode == 0
    assert b"terminated=True" in out and b"+0.80" in out
    assert b"final_obs=15" in out


@pytest.mark.timeout(300)
def test_readme__every_non_interactive_play_command_runs_as_written():
    """The README's ``jaxgrid play ... --policy ...`` commands (no terminal needed) run verbatim:
    exit 0 and print steps (the inline-map example included)."""
    import shlex

    repo = Path(__file__).resolve().parents[2]
    lines = re.findall(r"^jaxgrid play .*--policy.*$", (repo / "README.md").read_text(), flags=re.M)
    assert len(lines) >= 2, lines
    for line in lines:
        argv = shlex.split(line.split("  #")[0])
        proc = subprocess.run([sys.executable, "-m", "jaxgrid.cli", *argv[1:]], capture_output=True, text=True,
                              timeout=120, cwd=repo, env={**os.environ, "TERM": "dumb"})
        assert proc.returncode == 0, (line, proc.stderr[-1500:])
        assert "action=" in proc.stdout, (line, proc.stdout[-500:])
