"""A short soak (``make soak`` for 3 minutes, a fixed seed): random faults, every invariant held."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flink, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_three_minutes_of_faults_break_no_invariant() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "3", "--seed", "20261122", "--gap", "15,25"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "violations: 0" in proc.stdout
    assert "faults by kind" in proc.stdout
