"""How fast a job's change reaches its app's state, with the JobManager's push and without it.

A real local Flink 2.3 cluster per mode (started by the platform; with push, it carries streampilot's
status listener), the tracker's tick at 10 s. Each round starts an app and makes one change happen in
Flink: a cancel from Flink's own REST API, a task that fails (a cast that cannot succeed, no restarts),
or a bounded job that finishes. The delay is from Flink's own timestamp of the job's new state (its
REST API's ``timestamps``) to the moment the platform stored the app's new state (its timeline).
Run: ``make bench-push`` (ROUNDS=30 by default; ``ARGS="--rounds 9"`` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from streampilot.api.app import create_app
from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.restart import NoRestart
from streampilot.flink.local import free_port
from streampilot.services.platform import Platform
from streampilot.settings import Settings, TrackingSettings

STREAMING = """CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '50');
CREATE TABLE snk (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT id FROM src;
"""
FAILING = """CREATE TABLE src (id BIGINT, s STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '5',
  'fields.s.length' = '3');
CREATE TABLE snk (n INT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT CAST(s AS INT) FROM src;
"""
BOUNDED = """CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '200');
CREATE TABLE snk (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT id FROM src;
"""
KINDS = {"cancel": (STREAMING, "CANCELED"), "fail": (FAILING, "FAILED"), "finish": (BOUNDED, "FINISHED")}


async def until(check, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.005)


async def run_mode(push: bool, rounds: int, root: Path) -> list[tuple[str, float]]:
    port = free_port()
    settings = Settings().with_(
        home=root / ("push" if push else "poll"),
        port=port,
        push=push,
        tracking=TrackingSettings(tick_s=10, lost_after_s=120, submit_grace_s=60, detail_every_s=30),
    )
    platform = Platform(settings)
    await platform.open()
    server = uvicorn.Server(uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    delays: list[tuple[str, float]] = []
    try:
        platform.start_loops()
        cluster = await platform.clusters.add("bench", "local", slots=8)
        await platform.clusters.start(cluster.id)
        rest = cluster.rest_url
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(rounds):
                kind = list(KINDS)[i % len(KINDS)]
                sql, final = KINDS[kind]
                spec = AppSpec(kind=AppKind.SQL, sql=sql, restart_strategy=NoRestart(type="none"))
                app = await platform.apps.create(f"{kind}-{i}", cluster.id, spec)
                op = await platform.lifecycle.start(app.id)
                await until(lambda: _ended(platform, op.id), 120)  # noqa: B023
                job_id = (await platform.apps.get(app.id)).job_id
                if kind == "cancel":
                    await http.patch(f"{rest}/jobs/{job_id}", params={"mode": "cancel"})
                await until(lambda: _state_is(platform, app.id, final), 60)  # noqa: B023
                stored = max(e.at for e in await platform.apps.events(app.id) if e.to_state == final)
                flink_ms = await _flink_time(http, f"{rest}", str(job_id), final)
                if flink_ms is None:
                    print(f"round {i}: Flink no longer tells when job {job_id} became {final}; left out")
                    continue
                delays.append((kind, stored.timestamp() - flink_ms / 1000))
    finally:
        await platform.stop_loops()
        await platform.stop_local_clusters()
        server.should_exit = True
        await serving
        await platform.close()
    return delays


async def _flink_time(http: httpx.AsyncClient, rest: str, job_id: str, final: str) -> float | None:
    """When Flink says the job reached ``final`` (its job details' timestamps, else the overview's end)."""
    details = (await http.get(f"{rest}/jobs/{job_id}")).json()
    at = (details.get("timestamps") or {}).get(final)
    if at:
        return float(at)
    for job in (await http.get(f"{rest}/jobs/overview")).json().get("jobs", []):
        if job.get("jid") == job_id and job.get("end-time", -1) > 0:
            return float(job["end-time"])
    return None


async def _ended(platform: Platform, op_id: int) -> bool:
    return (await platform.lifecycle.get_operation(op_id)).state in ("succeeded", "failed")


async def _state_is(platform: Platform, app_id: int, state: str) -> bool:
    return (await platform.apps.get(app_id)).state == state


def report(name: str, delays: list[tuple[str, float]]) -> None:
    values = sorted(d for _, d in delays)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    print(
        f"{name:>9}: {len(values)} changes  p50 {statistics.median(values) * 1000:7.0f} ms  "
        f"p99 {p99 * 1000:7.0f} ms  max {values[-1] * 1000:7.0f} ms"
    )
    for kind in KINDS:
        mine = [d for k, d in delays if k == kind]
        if mine:
            print(f"{'':>11}{kind:>7}: median {statistics.median(mine) * 1000:6.0f} ms over {len(mine)}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print("tick 10 s; delay from Flink's timestamp of the new job state to the app's stored state", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report("push", await run_mode(True, args.rounds, Path(tmp)))
        report("poll only", await run_mode(False, args.rounds, Path(tmp)))


if __name__ == "__main__":
    asyncio.run(main())
