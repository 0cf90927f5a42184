"""``jaxgrid play`` / ``render`` on careless input: bad numbers, a missing layout file, a terminal
curses does not know. Each is a clear error or a graceful fallback, never a crash or a silent no-op."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxgrid import cli

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "jaxgrid"


@pytest.mark.parametrize("args, flag", [
    (("play", "GridWorld-4x4-v0", "--policy", "random", "--steps", "-5"), "--steps"),
    (("play", "GridWorld-4x4-v0", "--policy", "random", "--steps", "0"), "--steps"),
    (("play", "GridWorld-4x4-v0", "--delay", "-1"), "--delay"),
    (("play", "GridWorld-4x4-v0", "--delay", "nan"), "--delay"),
    (("render", "GridWorld-4x4-v0", "--out", "x.png", "--cell-px", "0"), "--cell-px"),
    (("render", "GridWorld-4x4-v0", "--out", "x.png", "--steps", "-1"), "--steps"),
])
def test_bad_numbers_are_errors_naming_the_flag(capsys, args, flag):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be" in err


def test_missing_layout_file_is_reported_as_a_missing_file(capsys, tmp_path):
    missing = str(tmp_path / "maps" / "foo.txt")
    rc = cli.main(["play", "GridWorld-v0", "--layout", missing, "--policy", "random", "--steps", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"--layout file {missing!r} does not exist" in err and "unknown character" not in err
    # a file that exists is read; inline maps (several rows, or one row of map characters) still work
    (tmp_path / "m.txt").write_text("S.G\n")
    for layout in (str(tmp_path / "m.txt"), "S.G", "S.#\\n..G"):
        rc = cli.main(["play", "GridWorld-v0", "--layout", layout, "--policy", "greedy", "--steps", "3", "--no-grid"])
        out, err = capsys.readouterr()
        assert rc == 0, (layout, err)
        assert "terminated=True" in out, layout  # greedy reached the goal of this very map


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_unknown_term_falls_back_to_plain_output():
    """On a real (pseudo-)terminal whose TERM terminfo does not know, play prints plain steps
    instead of dying inside curses."""
    import pty

    fd, slave = pty.openpty()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TERM": "no-such-terminal-xyz"}
    proc = subprocess.Popen([str(SCRIPT), "play", "GridWorld-4x4-v0", "--policy", "random"],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None or select.select([fd], [], [], 0)[0]:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        returncode = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(fd)
    err = proc.stderr.read().decode()
    assert returncode == 0, err
    assert "Traceback" not in err and "the terminal widget is unavailable" in err and "no-such-terminal-xyz" in err
    assert out.decode().count("action=") == 20  # the plain log of 20 random steps
