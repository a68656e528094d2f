"""Job metrics sampling bench: 200 running jobs on one fake Flink cluster (two vertices each, answers
shaped as Flink 2.3's), sampled every 10 s as the platform does; prints the sampler's CPU (goal <= 5 %
of one core), requests and samples per round. Run: ``make bench-metrics``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.fakeflink import job_id
from streampilot.services.loops import Loop
from streampilot.services.platform import Platform
from streampilot.settings import MetricsSettings, Settings
from streampilot.store.orm import App, AppVersion, Cluster, JobMetricSample, utcnow

JOBS, EVERY_S, WINDOW_S, PORT = 200, 10.0, 60.0, 33000
SPEC = {"kind": "sql", "sql": "INSERT INTO b SELECT 1"}


async def populate(platform: Platform) -> None:
    now = utcnow()
    async with platform.ctx.sessions() as s, s.begin():
        s.add(
            Cluster(
                team_id=1, id=1, name="fake", kind="standalone", rest_url=f"http://127.0.0.1:{PORT}",
                flink_version="2.3.0", options={},
            )
        )  # fmt: skip
        await s.flush()
        for k in range(JOBS):
            s.add(
                App(
                    team_id=1, id=k + 1, name=f"app-{k}", cluster_id=1, state="RUNNING", job_state="RUNNING",
                    job_id=job_id(0, k), tasks_running=4, tasks_total=4, desired_state="RUNNING",
                    running_version=1, own_observed_at=now, submitted_at=now,
                )
            )  # fmt: skip
            s.add(AppVersion(app_id=k + 1, version=1, spec=SPEC))


async def run(home: Path) -> None:
    fleet = subprocess.Popen(
        [sys.executable, "-m", "bench.fakeflink", "--clusters", "1", "--jobs", str(JOBS), "--base-port", str(PORT),
         "--t0", str(time.time() + 3600)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert fleet.stdout is not None and fleet.stdout.readline().strip() == b"ready"
    platform = Platform(Settings().with_(home=home, metrics=MetricsSettings(every_s=EVERY_S)))
    try:
        await platform.open()
        await populate(platform)
        loop = Loop("job-metrics", EVERY_S, platform.sampler.run_once)
        loop.start()
        while loop.passes < 1:  # the first round also finds each job's graph and metric names
            await asyncio.sleep(0.01)
        first_requests = platform.sampler.requests
        print(f"first round (each job's graph and metric names found): {first_requests} requests")
        cpu0, wall0, req0, passes0 = time.process_time(), time.monotonic(), platform.sampler.requests, loop.passes
        await asyncio.sleep(WINDOW_S)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        rounds = loop.passes - passes0
        await loop.stop()
        async with platform.ctx.sessions() as s:
            stored = (await s.execute(sa.select(sa.func.count()).select_from(JobMetricSample))).scalar_one()
        print(f"{JOBS} running jobs on one cluster, sampled every {EVERY_S:g} s; {rounds} rounds in {wall:.0f} s")
        print(
            f"requests per round: {(platform.sampler.requests - req0) / max(1, rounds):.0f}   (a vertex: 1; a job's restart count: every 6th round)"
        )
        print(f"samples stored: {stored}   ({JOBS} per round)")
        print(f"sampler CPU: {100 * cpu / wall:.1f} % of one core   (goal <= 5 %)")
    finally:
        await platform.close()
        fleet.terminate()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
