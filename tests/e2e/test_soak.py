"""A short soak (``make soak`` for 3 minutes, a fixed seed): random faults, every invariant held.

The soak is a program of its own (a server, its supervised local cluster, a fault proxy), so it
starts in the background as soon as the session has collected it (``start_soak`` from the root
conftest) and runs beside the other tests: more load on the machine than a soak alone, and three
minutes off the suite. This test, moved to the end of the session, waits for it and reads its report.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

pytestmark = [pytest.mark.flink, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
COMMAND = ["-m", "bench.soak", "--minutes", "3", "--seed", "20261122", "--gap", "15,25"]
TEST_NAME = "test_three_minutes_of_faults_break_no_invariant"


@dataclass
class BackgroundSoak:
    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    started: float

    def report(self, timeout: float) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        self.out.seek(0)
        return code, self.out.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # the session ended before the test read it (an interrupted run)
            self.proc.wait(timeout=30)
        self.out.close()


def start_soak() -> BackgroundSoak:
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the soak writes to it until stop() closes it
    proc = subprocess.Popen([sys.executable, *COMMAND], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return BackgroundSoak(proc, out, time.monotonic())


@pytest.mark.timeout(1200)  # its report is awaited up to 900 s
def test_three_minutes_of_faults_break_no_invariant(background_soak: BackgroundSoak) -> None:
    code, output = background_soak.report(timeout=900)
    print(f"the soak started {time.monotonic() - background_soak.started:.0f} s before this test read its report")
    print(output[-4000:])
    assert code == 0, output[-6000:]
    assert "violations: 0" in output
    assert "faults by kind" in output
