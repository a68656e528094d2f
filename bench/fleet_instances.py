"""Several instances on one PostgreSQL database sharing a simulated fleet: 40,000 apps on 800 fake
clusters over 4 instances at a 2 s tick (``--instances``, ``--clusters`` to change it).

Each instance is a process of its own running the lease keeper and the tracker (as the platform does);
each prints its CPU over the same window (goal <= 25 % of one core each), the clusters it watched and
its passes; the bench's watcher of stored events runs in another process and gives the detection
latency of one job state change per cluster. Run: ``make bench-fleet-instances``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from bench.fakeflink import flip_at, job_id
from streampilot.services.leases import LeaseKeeper
from streampilot.services.loops import Loop
from streampilot.services.platform import Platform
from streampilot.settings import Settings, TrackingSettings
from streampilot.store.db import create_engine, migrate
from streampilot.store.orm import App, AppVersion, Cluster, utcnow

JOBS, TICK, TTL, BASE_PORT = 50, 2.0, 6.0, 22000  # 800 ports below the ephemeral range (32768-)
PG = os.environ.get("STREAMPILOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SPEC = {"kind": "sql", "sql": "INSERT INTO b SELECT 1"}


async def populate(url: str, clusters: int) -> None:
    engine = create_engine(url)
    await migrate(engine)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(Cluster),
            [
                {
                    "team_id": 1,
                    "id": c + 1,
                    "name": f"fake-{c}",
                    "kind": "standalone",
                    "rest_url": f"http://127.0.0.1:{BASE_PORT + c}",
                    "flink_version": "2.3.0",
                    "options": {},
                    "desired_running": False,
                    "created_at": now,
                }
                for c in range(clusters)
            ],
        )
        for c0 in range(0, clusters, 100):
            apps, versions = [], []
            for c in range(c0, min(clusters, c0 + 100)):
                for k in range(JOBS):
                    app_id = c * JOBS + k + 1
                    apps.append(
                        {
                            "team_id": 1, "id": app_id, "name": f"app-{c}-{k}", "cluster_id": c + 1,
                            "state": "RUNNING", "job_state": "RUNNING", "job_id": job_id(c, k),
                            "tasks_running": 2, "tasks_total": 2, "desired_state": "RUNNING", "current_version": 1,
                            "running_version": 1, "observed_at": now, "submitted_at": now,
                            "created_at": now, "updated_at": now,
                        }
                    )  # fmt: skip
                    versions.append({"app_id": app_id, "version": 1, "spec": SPEC, "created_at": now})
            await conn.execute(sa.insert(App), apps)
            await conn.execute(sa.insert(AppVersion), versions)
        await conn.execute(sa.text("SELECT setval('apps_id_seq', (SELECT max(id) FROM apps))"))
    await engine.dispose()


async def instance(url: str, home: Path, start: float, until: float) -> None:
    """One instance: the lease keeper and the tracker; prints its figures as one JSON line."""
    settings = Settings().with_(
        home=home, database_url=url, tracking=TrackingSettings(tick_s=TICK, lost_after_s=60, lease_ttl_s=TTL)
    )
    platform = Platform(settings)
    await platform.open()
    keeper = platform.ctx.leases = LeaseKeeper(platform.ctx, platform.instance_id)
    loops = [Loop("leases", TICK, keeper.run_once), Loop("tracker", TICK, platform.tracker.run_once)]
    for loop in loops:
        loop.start()
    await asyncio.sleep(max(0.0, start - time.time()))
    cpu0, wall0, passes0 = time.process_time(), time.monotonic(), loops[1].passes
    await asyncio.sleep(max(0.0, until - time.time()))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    print(
        json.dumps(
            {
                "instance": platform.instance_id,
                "cpu_pct": round(100 * cpu / wall, 1),
                "passes": loops[1].passes - passes0,
                "overruns": loops[1].overruns,
                "clusters": len(keeper.held),
            }
        ),
        flush=True,
    )
    for loop in loops:
        await loop.stop()
    await platform.close()


async def watch(url: str, until: float) -> dict[int, float]:
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
    seen: dict[int, float] = {}
    last = 0
    try:
        while time.time() < until:
            rows = await conn.fetch("SELECT id, app_id FROM app_events WHERE id > $1 AND to_state = 'RESTARTING'", last)
            now = time.time()
            for row in rows:
                seen.setdefault(row["app_id"], now)
                last = max(last, row["id"])
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return seen


async def run(instances: int, clusters: int) -> None:
    name = f"fleetbench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG.replace("postgresql://", "postgres://") + "/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.time()
        await populate(url, clusters)
        print(f"{clusters * JOBS} apps on {clusters} clusters stored in {time.time() - started:.0f} s", flush=True)
        t0 = time.time() + 20  # instances up and their leases balanced before the first change
        fleet = subprocess.Popen(
            [sys.executable, "-m", "bench.fakeflink", "--clusters", str(clusters), "--jobs", str(JOBS),
             "--base-port", str(BASE_PORT), "--t0", str(t0)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        procs.append(fleet)
        assert fleet.stdout is not None and fleet.stdout.readline().strip() == b"ready"
        until = t0 + 55
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(instances):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.fleet_instances", "--instance", "--url", url,
                         "--home", str(Path(tmp) / f"i{i}"), "--start", str(t0), "--until", str(until)],
                        stdout=subprocess.PIPE,
                    )
                )  # fmt: skip
            seen = await watch(url, until + 3)
            rows = []
            for proc in procs[1:]:
                out, _ = await asyncio.to_thread(proc.communicate, None, 60)
                rows.append(json.loads(out.decode().strip().splitlines()[-1]))
        latencies = sorted(seen[c * JOBS + 1] - flip_at(t0, c) for c in range(clusters) if c * JOBS + 1 in seen)
        print(
            f"{instances} instances, tick {TICK} s, lease {TTL} s, one PostgreSQL database; window {until - t0:.0f} s"
        )
        print(f"{'instance':<40} {'CPU (% of a core)':>18} {'clusters':>9} {'passes':>7} {'overruns':>9}")
        for r in rows:
            print(f"{r['instance']:<40} {r['cpu_pct']:>18.1f} {r['clusters']:>9} {r['passes']:>7} {r['overruns']:>9}")
        if latencies:
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"detection latency over {len(latencies)} changes: median {statistics.median(latencies):.2f} s, "
                f"p99 {p99:.2f} s; not detected: {clusters - len(latencies)}"
            )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--clusters", type=int, default=800)
    parser.add_argument("--instance", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--until", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instance:
        asyncio.run(instance(args.url, Path(args.home), args.start, args.until))
    else:
        asyncio.run(run(args.instances, args.clusters))


if __name__ == "__main__":
    main()
