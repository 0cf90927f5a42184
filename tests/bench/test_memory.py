"""The memory benchmark runs end to end on a tiny budget and writes its JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_memory_quick__both_policies_scored_timed_and_written(tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "memory.py"), "--quick", "--tasks", "TMaze-v0", "--out", str(out)],
        capture_output=True, text=True, timeout=580,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert payload["quick"] and payload["seeds"] == [0, 1]
    rows = payload["tasks"]["TMaze-v0"]
    assert set(rows) == {"feedforward", "recurrent"}
    assert rows["feedforward"]["config"]["rnn_hidden_size"] == 0
    assert rows["recurrent"]["config"]["rnn_hidden_size"] > 0
    for row in rows.values():
        assert row["metric"] == "success" and len(row["scores"]) == 2
        assert all(0.0 <= s <= 1.0 for s in row["scores"])  # (return + 1) / 2 of a +-1 task
        lo, hi = row["iqm_ci95"]
        assert lo <= row["iqm"] <= hi
        assert len(row["curve_return_iqm"]) == len(row["curve_env_steps"]) == 4
        assert row["wall_s"] >= row["run_s"] > 0 and row["steps_per_s"] > 0
    for obs in ("view", "onehot"):
        row = payload["throughput"][obs]
        assert row["ratio_recurrent_over_feedforward"] == pytest.approx(
            row["recurrent"]["steps_per_s"] / row["feedforward"]["steps_per_s"]
        )
        assert row["ratio_recurrent_bptt_over_feedforward"] == pytest.approx(
            row["recurrent_bptt"]["steps_per_s"] / row["feedforward"]["steps_per_s"]
        )
        macs = {p: row[p]["multiply_adds_per_sample"] for p in ("feedforward", "recurrent", "recurrent_bptt")}
        assert macs["recurrent"] == macs["recurrent_bptt"] > 0 and macs["feedforward"] > 0
        assert row["arithmetic_ratio_recurrent_over_feedforward"] == pytest.approx(
            macs["recurrent"] / macs["feedforward"])
        wide = row["feedforward_wide"]
        assert wide["multiply_adds_per_sample"] >= macs["recurrent"]
        assert row["ratio_feedforward_wide_over_feedforward"] == pytest.approx(
            wide["steps_per_s"] / row["feedforward"]["steps_per_s"])
    assert payload["throughput"]["bptt_length"] == 2  # the quick config's 16 steps / 8
    assert out.with_suffix(".png").stat().st_size > 1000


def test_multiply_adds_per_sample__counted_by_hand():
    """TMaze-v0's preset shapes: a 27-wide view (3x3x3), towers of (64,), 4 actions + 1 value.
    Feedforward: 2 towers x 27 x 64, heads 64 x 5. Recurrent: the GRU's 3 gates over the input
    and the 64-wide hidden state, 3 x 64 x (27 + 64), then the towers from 64 wide."""
    sys.path.insert(0, str(BENCH))
    try:
        from memory import equal_arithmetic_sizes, multiply_adds_per_sample
    finally:
        sys.path.remove(str(BENCH))
    from train import PPOConfig

    config = PPOConfig(env_id="TMaze-v0", hidden_sizes=(64,), rnn_hidden_size=64)
    assert multiply_adds_per_sample(config.replace(rnn_hidden_size=0), 27) == 2 * 27 * 64 + 64 * 5
    assert multiply_adds_per_sample(config, 27) == 3 * 64 * (27 + 64) + 2 * 64 * 64 + 64 * 5
    # The control: the narrowest (h, h) towers with at least the recurrent network's arithmetic.
    h, h2 = equal_arithmetic_sizes(config, 27)
    towers = lambda w: 2 * (27 * w + w * w) + w * 5  # noqa: E731
    assert h == h2 and towers(h) >= 25984 > towers(h - 1)
