"""Three instances on one PostgreSQL (and MariaDB) database (fake target): clusters shared out by leases, a dead
instance's clusters taken over within the lease's time, a paused one fenced off, every alert once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from streampilot.api.app import create_app
from streampilot.domain.apps import AppKind, AppSpec, AutoRestart
from streampilot.services.leases import instances
from streampilot.services.platform import Platform
from streampilot.services.push import push_token
from streampilot.settings import TrackingSettings
from streampilot.store.orm import AlertChannel, AlertDelivery, AppEvent, Cluster, ClusterStamp, PushedStatus
from streampilot.targets.fake import KIND, FakeFleet
from tests.conftest import test_settings as settings_for
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished

pytestmark = pytest.mark.parametrize("db_url", ["postgresql", "mysql"], indirect=True)
TICK, TTL = 0.2, 2.0


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@asynccontextmanager
async def instances_of(tmp_path: Path, db_url: str, fleet: FakeFleet, tick: float) -> AsyncIterator[list[Platform]]:
    platforms = []
    for i in range(3):
        settings = settings_for(tmp_path / f"home{i}", db_url).with_(
            tracking=TrackingSettings(
                tick_s=tick, lost_after_s=30, submit_grace_s=10, detail_every_s=0.5, lease_ttl_s=TTL
            )
        )
        p = Platform(settings)
        p.ctx.target_factories[KIND] = fleet.target
        await p.open()
        platforms.append(p)
    async with platforms[0].ctx.sessions() as s, s.begin():
        for name in ("east", "west", "north"):
            s.add(Cluster(team_id=1, name=name, kind=KIND, rest_url=None, options={}))
    for p in platforms:
        p.start_loops()
    try:
        yield platforms
    finally:
        for p in platforms:
            await p.stop_loops()
            await p.close()


@pytest.fixture
async def trio(tmp_path: Path, db_url: str, fleet: FakeFleet) -> AsyncIterator[list[Platform]]:
    async with instances_of(tmp_path, db_url, fleet, TICK) as platforms:
        yield platforms


async def test_clusters_are_shared_and_taken_over(trio: list[Platform], fleet: FakeFleet) -> None:
    p0 = trio[0]

    async def balanced() -> bool:
        listed = await instances(p0.ctx)
        return len(listed) == 3 and sorted(len(i["cluster_ids"]) for i in listed) == [1, 1, 1]  # type: ignore[arg-type]

    await until(balanced, 10, "each instance watches one cluster")
    clusters = {c.name: c.id for c in await p0.clusters.list_clusters()}
    app = await p0.apps.create("orders", clusters["east"], AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL))
    op = await p0.lifecycle.start(app.id)
    assert (await finished(p0, op.id)).state == "succeeded"
    holder = next(p for p in trio if p.ctx.leases is not None and p.ctx.leases.holds(clusters["east"]))

    async def stamped() -> bool:
        async with p0.ctx.sessions() as s:
            return await s.get(ClusterStamp, clusters["east"]) is not None

    await until(stamped, 5, "the holder stamps its cluster as observed")

    # The holder dies without a word (its loops stop, its leases stay until they expire).
    for loop in holder.loops:
        await loop.stop()
    dead_token = holder.ctx.leases.held[clusters["east"]] if holder.ctx.leases else 0
    job_id = (await p0.apps.get(app.id)).job_id
    assert job_id is not None
    fleet.jobs[job_id].state = "CANCELED"  # cancelled from Flink's own UI meanwhile

    async def seen() -> bool:
        return (await p0.apps.get(app.id)).state == "CANCELED"

    took = await until(seen, TTL + 3 * TICK + 3, "another instance shows the cancel")
    assert took <= TTL + 2 * TICK + 1.5, took  # lease time + two ticks (+ slack for a busy machine)
    others = [p for p in trio if p is not holder]
    new_holder = next(p for p in others if p.ctx.leases is not None and p.ctx.leases.holds(clusters["east"]))
    assert new_holder.ctx.leases is not None and new_holder.ctx.leases.held[clusters["east"]] > dead_token

    # The dead one wakes up (it was only paused) and acts on what it believed it held: fenced off.
    async with p0.ctx.sessions() as s:
        events_before = len(list((await s.execute(AppEvent.__table__.select().where(AppEvent.app_id == app.id))).all()))
    fleet.jobs[job_id].state = "RUNNING"  # what the stale instance would now write
    for p in others:
        for loop in p.loops:
            await loop.stop()
    async with p0.ctx.sessions() as s:
        stamp_before = (await s.get_one(ClusterStamp, clusters["east"])).observed_at
    assert holder.ctx.leases is not None and holder.ctx.leases.holds(clusters["east"])  # as far as it knows
    await holder.tracker.run_once()
    assert (await p0.apps.get(app.id)).state == "CANCELED"
    async with p0.ctx.sessions() as s:
        events_after = len(list((await s.execute(AppEvent.__table__.select().where(AppEvent.app_id == app.id))).all()))
        stamp_after = (await s.get_one(ClusterStamp, clusters["east"])).observed_at
    assert events_after == events_before
    assert stamp_after == stamp_before  # nor does it stamp "observed now" on the cluster it lost
    assert holder.ctx.leases is not None and not holder.ctx.leases.holds(clusters["east"])


async def test_each_alert_is_delivered_once(trio: list[Platform], fleet: FakeFleet, receiver: object) -> None:
    p0 = trio[0]
    url = receiver.url  # type: ignore[attr-defined]
    channel = await p0.channels.create("hook", "webhook", {"url": f"{url}/hook"})
    clusters = await p0.clusters.list_clusters()
    apps = []
    for i, cluster in enumerate(clusters):
        spec = AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL, alert_channel_ids=[channel.id])
        app = await p0.apps.create(f"app{i}", cluster.id, spec)
        op = await p0.lifecycle.start(app.id)
        assert (await finished(p0, op.id)).state == "succeeded"
        apps.append(app)
    for app in apps:
        job_id = (await p0.apps.get(app.id)).job_id
        assert job_id is not None
        fleet.jobs[job_id].state = "FAILED"

    async def delivered() -> bool:
        async with p0.ctx.sessions() as s:
            rows = (await s.execute(AlertDelivery.__table__.select())).all()
        return len(rows) >= 3 and all(r.status == "sent" for r in rows)

    await until(delivered, 15, "every failure alert delivered")
    await asyncio.sleep(1.0)  # time for a second (wrong) delivery to show
    async with p0.ctx.sessions() as s:
        rows = (await s.execute(AlertDelivery.__table__.select())).all()
        channels = (await s.execute(AlertChannel.__table__.select())).all()
    assert len(channels) == 1
    assert len(rows) == 3, rows  # one per failed app, not one per instance
    assert len(receiver.requests) == 3  # type: ignore[attr-defined]


async def test_a_failure_during_a_takeover_is_restarted_once(
    trio: list[Platform], fleet: FakeFleet, receiver: object
) -> None:
    p0 = trio[0]
    url = receiver.url  # type: ignore[attr-defined]
    channel = await p0.channels.create("hook", "webhook", {"url": f"{url}/hook"})
    cluster = (await p0.clusters.list_clusters())[0]
    spec = AppSpec(
        kind=AppKind.SQL,
        sql=DATAGEN_SQL,
        alert_channel_ids=[channel.id],
        auto_restart=AutoRestart(max_restarts=3, window_s=600, initial_backoff_s=0.1),
    )
    app = await p0.apps.create("payments", cluster.id, spec)
    assert (await finished(p0, (await p0.lifecycle.start(app.id)).id)).state == "succeeded"

    async def held() -> bool:
        return any(p.ctx.leases is not None and p.ctx.leases.holds(cluster.id) for p in trio)

    await until(held, 10, "an instance watches the cluster")
    holder = next(p for p in trio if p.ctx.leases is not None and p.ctx.leases.holds(cluster.id))
    for loop in holder.loops:  # it dies
        await loop.stop()
    first_job = (await p0.apps.get(app.id)).job_id
    assert first_job is not None
    fleet.jobs[first_job].state = "FAILED"  # and the job fails meanwhile

    async def restarted() -> bool:
        now = await p0.apps.get(app.id)
        return now.state == "RUNNING" and now.job_id != first_job

    await until(restarted, TTL + 10, "the job restarted by the instance that took over")
    await asyncio.sleep(3 * TICK + 0.5)  # time for a second (wrong) restart to begin
    ops = [o for o in await p0.lifecycle.operations_of(app.id, 50) if o.verb == "restart"]
    assert len(ops) == 1, [(o.verb, o.state) for o in ops]
    assert sum(1 for j in fleet.jobs.values() if j.name and "payments" in j.name) == 2  # the first and one more

    async def alerted() -> bool:
        return len(receiver.requests) >= 1  # type: ignore[attr-defined]

    await until(alerted, 10, "the failure alert delivered")
    await asyncio.sleep(1.0)
    alerts = [a for a, _ in await p0.channels.alerts(app.id, 50)]
    assert "job_failed" in {a.reason for a in alerts}
    assert len({a.reason for a in alerts}) == len(alerts), [a.reason for a in alerts]  # each alert raised once
    assert len(receiver.requests) == len(alerts)  # type: ignore[attr-defined]  # and delivered once


async def test_a_push_to_an_instance_not_watching_the_cluster_reaches_the_one_that_does(
    trio: list[Platform], fleet: FakeFleet
) -> None:
    p0 = trio[0]
    cluster = (await p0.clusters.list_clusters())[0]
    app = await p0.apps.create("orders", cluster.id, AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL))
    assert (await finished(p0, (await p0.lifecycle.start(app.id)).id)).state == "succeeded"

    async def balanced() -> bool:
        listed = await instances(p0.ctx)
        return len(listed) == 3 and sorted(len(i["cluster_ids"]) for i in listed) == [1, 1, 1]  # type: ignore[arg-type]

    await until(balanced, 10, "each instance watches one cluster")
    for p in trio:  # no poll sees the change from now on: only the handed push can
        for loop in p.loops:
            if loop.name in ("tracker", "details", "policies"):
                await loop.stop()
    other = next(p for p in trio if p.ctx.leases is not None and not p.ctx.leases.holds(cluster.id))
    job_id = (await p0.apps.get(app.id)).job_id
    assert job_id is not None
    fleet.jobs[job_id].state = "CANCELED"  # cancelled from Flink's UI; the JobManager pushes it
    event = {"kind": "status", "job_id": job_id, "old_status": "RUNNING", "new_status": "CANCELED"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(other)), base_url="http://streampilot"
    ) as client:
        resp = await client.post(
            f"/api/v1/push/{cluster.id}", json=event, headers={"X-Streampilot-Push": push_token(other.ctx, cluster.id)}
        )
    assert resp.status_code == 202, resp.text
    assert resp.json()["result"].startswith("handed to the instance watching this cluster"), resp.json()

    async def seen() -> bool:
        return (await p0.apps.get(app.id)).state == "CANCELED"

    took = await until(seen, 5, "the holder observes the handed push")
    assert took < 2.0, took  # within a few handoff passes (0.1 s each)
    async with p0.ctx.sessions() as s:
        left = (await s.execute(sa.select(sa.func.count()).select_from(PushedStatus))).scalar_one()
        canceled = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(AppEvent)
                .where(AppEvent.app_id == app.id, AppEvent.to_state == "CANCELED")
            )
        ).scalar_one()
    assert left == 0  # taken once
    assert canceled == 1
