"""bench/harness.py: a ``--quick`` smoke run never writes over the committed results."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402

sys.path.remove(str(BENCH))


def test_quick_out__a_quick_run_at_the_default_path_writes_aside():
    default = harness.RESULTS_DIR / "peers.json"
    assert harness.quick_out(default, True, default) == harness.QUICK_RESULTS_DIR / "peers.json"
    assert harness.quick_out(default, False, default) == default  # the full run writes the results
    mine = Path("/tmp/mine.json")
    assert harness.quick_out(mine, True, default) == mine  # an explicit --out is kept
    assert harness.QUICK_RESULTS_DIR != harness.RESULTS_DIR


def test_every_bench_script_with_quick_routes_its_output_through_quick_out():
    """Every script that has both ``--quick`` and ``--out`` calls ``quick_out`` after parsing
    (``rejax_peer.py`` included), so no smoke run rewrites ``bench/results``."""
    scripts = [p for p in BENCH.glob("*.py") if '"--quick"' in p.read_text() and '"--out"' in p.read_text()]
    assert len(scripts) >= 6
    missing = [p.name for p in scripts if "quick_out(args.out, args.quick" not in p.read_text()]
    assert not missing, missing
