"""bench/slip_profile.py runs every program and quotes each against the deterministic step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.timeout(300)
def test_slip_profile__quotes_every_program_against_the_deterministic_step():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "slip_profile.py"), "--sizes", "8", "--rounds", "1", "--target-s", "0.002"],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = dict(re.findall(r"N=\s+8 (\S+)\s+/ deterministic step: (\S+)", proc.stdout))
    assert set(found) == {"vec", "v2", "key", "key+word"}, proc.stdout
    # A quoted ratio (its size is timing, which a test does not judge: bench/results has them).
    assert all(float(v) >= 0 for v in found.values()), found
