"""Two local processes joined by ``jax.distributed`` (gloo CPU collectives over localhost).

Each process has one host device, so every mesh spans both processes: seed sharding puts half
the seeds in each process, env-parallel training pmean-s gradients across them. Parameters must be
identical in both processes and equal to a single-process run. Hard timeouts everywhere: a hung
collective fails the test instead of stalling CI.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "dict(total_timesteps=256, num_envs=4, num_steps=32, num_eval_envs=2)"

_WORKER = textwrap.dedent(
    f"""
    import sys
    out, pid, port = sys.argv[1], sys.argv[2], sys.argv[3]
    if pid != "single":
        from train import distributed
        distributed.initialize(f"localhost:{{port}}", 2, int(pid), timeout_seconds=30)
    import jax, numpy as np
    from train import PPOConfig, train
    tiny = {TINY}
    if pid != "single":
        assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    n = 1 if pid == "single" else None
    seeds = train(PPOConfig(seeds=(0, 1, 2), **tiny), num_devices=n)  # padded to 4 over 2
    envs = train(PPOConfig(seeds=(5,), **tiny), num_devices=n, env_parallel=True)
    arrays = {{}}
    for tag, result in (("seeds", seeds), ("envs", envs)):
        for i, leaf in enumerate(jax.tree.leaves(result.params)):
            arrays[f"{{tag}}_param{{i}}"] = np.asarray(leaf)
        arrays[f"{{tag}}_value_loss"] = result.metrics["value_loss"]
        arrays[f"{{tag}}_eval"] = result.eval_returns
    np.savez(f"{{out}}/{{pid}}.npz", **arrays)
    print("WORKER_DONE", pid, flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="1", JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    env.pop("XLA_FLAGS", None)
    return env


def _run_all(commands: list[list[str]], timeout: float, cwd: str | None = None) -> list[tuple[int, str]]:
    """Starts every command at once; kills them all if any is still running at ``timeout``."""
    procs = [
        subprocess.Popen(c, env=_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]
    deadline = time.monotonic() + timeout
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outs.append((p.returncode, out))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"processes still running after {timeout} s (a hang in jax.distributed?)")
    return outs


@pytest.mark.timeout(240)
def test_two_processes__params_identical_and_equal_to_one_process(tmp_path):
    port = str(_free_port())
    commands = [[sys.executable, "-c", _WORKER, str(tmp_path), pid, port] for pid in ("0", "1", "single")]
    for code, out in _run_all(commands, timeout=220):
        assert code == 0 and "WORKER_DONE" in out, out[-4000:]
    p0, p1, single = (np.load(tmp_path / f"{pid}.npz") for pid in ("0", "1", "single"))
    assert sorted(p0.files) == sorted(single.files) and len(p0.files) > 6
    for name in p0.files:
        # Both processes hold the same, whole result.
        np.testing.assert_array_equal(p0[name], p1[name], err_msg=name)
        if name.startswith("seeds"):  # independent seeds: exact
            np.testing.assert_array_equal(p0[name], single[name], err_msg=name)
        else:  # pmean over processes: float rounding only
            np.testing.assert_allclose(p0[name], single[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert p0["seeds_value_loss"].shape == (3, 2)  # the padding seed was dropped


@pytest.mark.timeout(240)
def test_cli_two_processes__only_process_0_writes_the_run_dir(tmp_path):
    port = str(_free_port())
    flags = ["--total-timesteps", "256", "--num-envs", "4", "--num-steps", "32", "--seeds", "0-2",
             "--num-eval-envs", "2", "--name", "run", "--quiet", "--no-cache", "--no-tensorboard"]
    commands = [
        [sys.executable, "-m", "train.cli", *flags, "--out", str(tmp_path / f"out{i}"),
         "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)]
        for i in (0, 1)
    ]
    (code0, out0), (code1, out1) = _run_all(commands, timeout=220, cwd=REPO)
    assert code0 == 0, out0[-4000:]
    assert code1 == 0, out1[-4000:]
    assert "2 cpu device(s) in 2 processes" in out0, out0
    # every process gets the same results (seed table and final evaluation; the --out paths differ)
    table = lambda out, i: out[out.index("greedy return"):out.index("run directory")].replace(  # noqa: E731
        str(tmp_path / f"out{i}"), "OUT")
    assert "evaluation of OUT/run" in table(out0, 0)
    assert table(out0, 0) == table(out1, 1)
    results = json.loads((tmp_path / "out0" / "run" / "results.json").read_text())
    assert len(results["configs"][0]["finals"]) == 3
    assert (tmp_path / "out0" / "run" / "checkpoints").is_dir()
    assert not (tmp_path / "out1").exists()  # process 1 wrote nothing


@pytest.mark.timeout(60)
def test_cli_broken_setup__fails_in_seconds():
    # Process 1 of 2 with nobody serving the coordinator address: jax's own timeout ends it.
    port = str(_free_port())
    cmd = [sys.executable, "-m", "train.cli", "--no-run-dir", "--quiet", "--coordinator",
           f"localhost:{port}", "--num-processes", "2", "--process-id", "1",
           "--distributed-timeout", "2"]
    t0 = time.monotonic()
    [(code, out)] = _run_all([cmd], timeout=50, cwd=REPO)
    elapsed = time.monotonic() - t0
    assert code != 0, out
    assert elapsed < 30, elapsed
    assert "joining 2 processes at localhost:" in out, out
    assert "DEADLINE_EXCEEDED" in out or "Deadline" in out, out[-3000:]


def test_cli_rejects_partial_distributed_flags():
    cmd = [sys.executable, "-m", "train.cli", "--no-run-dir", "--coordinator", "localhost:1234"]
    [(code, out)] = _run_all([cmd], timeout=50, cwd=REPO)
    assert code == 2, out
    assert "num_processes" in out and "process_id" in out, out


def test_initialize__partial_arguments_rejected_before_jax_starts():
    from train import distributed

    with pytest.raises(ValueError, match="num_processes"):
        distributed.initialize("localhost:1234", None, 0)
    with pytest.raises(ValueError, match="process_id=2 is invalid: num_processes=2"):
        distributed.initialize("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="JAXGRID_PROCESS_ID"):
        distributed.initialize_from_env({"JAXGRID_COORDINATOR": "h:1", "JAXGRID_NUM_PROCESSES": "2"})
    assert distributed.initialize_from_env({}) is False  # nothing asked: single process
