"""The tracker reads its apps whole now and then and, in between, only the rows that changed (fake
target): its own "observed at" stamp is not a change, a new job or a cleared one is seen at the next
pass, and what a read missed is caught by the next whole read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from streampilot.services.platform import Platform
from streampilot.services.tracker import Tracker
from streampilot.store.orm import App, Cluster, ClusterStamp, utcnow
from streampilot.targets.fake import KIND, FakeFleet
from tests.conftest import test_settings as settings_for
from tests.services.conftest import finished


@pytest.fixture
async def platform(tmp_path: Path, db_url: str, fleet: FakeFleet) -> AsyncIterator[Platform]:
    """On each database: the reads and the stamps are SQL of their own (dates compared in the database)."""
    p = Platform(settings_for(tmp_path / "home", db_url))
    p.ctx.target_factories[KIND] = fleet.target
    await p.open()
    yield p
    await p.close()


async def started(platform: Platform, app_id: int) -> Tracker:
    """The app started on the fake target, and the tracker after its first (whole) read."""
    assert (await finished(platform, (await platform.lifecycle.start(app_id)).id)).state == "succeeded"
    await platform.tracker.run_once()
    return platform.tracker


async def test_changed_rows_are_read_between_whole_reads(platform: Platform, app_id: int, fleet: FakeFleet) -> None:
    tracker = await started(platform, app_id)  # a whole read
    async with platform.ctx.sessions() as s:
        before = (await s.execute(sa.select(App.updated_at, App.observed_at).where(App.id == app_id))).one()
    await tracker.run_once()  # a read of changed rows only
    async with platform.ctx.sessions() as s:
        after = (await s.execute(sa.select(App.updated_at, App.observed_at).where(App.id == app_id))).one()
    assert after.observed_at > before.observed_at and after.updated_at == before.updated_at  # a stamp only

    # The job is replaced (cancelled and started again): the next pass follows the new job.
    first = (await platform.apps.get(app_id)).job_id
    assert (await finished(platform, (await platform.lifecycle.cancel(app_id)).id)).state == "succeeded"
    assert (await finished(platform, (await platform.lifecycle.start(app_id)).id)).state == "succeeded"
    second = (await platform.apps.get(app_id)).job_id
    assert second != first
    await tracker.run_once()
    assert tracker._rows[app_id].job_id == second
    fleet.jobs[second].state = "FAILED"
    await tracker.run_once()
    assert (await platform.apps.get(app_id)).state == "FAILED"

    # A change stamped long before its commit (beyond the margin) is missed by the reads of changed
    # rows, and caught by the next whole read.
    async with platform.ctx.sessions() as s, s.begin():
        await s.execute(
            sa.update(App).where(App.id == app_id).values(job_id=None, updated_at=utcnow() - timedelta(hours=1))
        )
    await tracker.run_once()
    assert app_id in tracker._rows  # not seen yet
    tracker._full_at -= 3600  # time for a whole read
    await tracker.run_once()
    assert app_id not in tracker._rows


async def test_a_changed_cluster_row_is_a_new_object_and_an_unchanged_one_is_kept(
    platform: Platform, app_id: int, cluster_id: int, fleet: FakeFleet
) -> None:
    tracker = await started(platform, app_id)
    first = tracker._clusters[cluster_id][1]
    await tracker.run_once()
    assert tracker._clusters[cluster_id][1] is first  # the same row: the same object
    async with platform.ctx.sessions() as s, s.begin():
        await s.execute(sa.update(Cluster).where(Cluster.id == cluster_id).values(name="renamed", options={"a": 1}))
    await tracker.run_once()
    now = tracker._clusters[cluster_id][1]
    assert now is not first and (now.name, now.options) == ("renamed", {"a": 1})
    assert platform.ctx.metrics.clusters[cluster_id].name == "renamed"  # what the pass used
    async with platform.ctx.sessions() as s, s.begin():
        await s.execute(sa.delete(App).where(App.cluster_id == cluster_id))
        await s.execute(sa.delete(Cluster).where(Cluster.id == cluster_id))
    await tracker.run_once()
    assert cluster_id not in tracker._clusters


async def test_observed_at_is_the_clusters_stamp_until_the_app_is_unconfirmed(
    platform: Platform, app_id: int, cluster_id: int, fleet: FakeFleet
) -> None:
    tracker = await started(platform, app_id)

    async def read() -> sa.Row[tuple[datetime | None, datetime | None, datetime]]:
        async with platform.ctx.sessions() as s:
            query = sa.select(App.observed_at, App.own_observed_at, App.updated_at).where(App.id == app_id)
            return (await s.execute(query)).one()

    async def stamp() -> datetime:
        async with platform.ctx.sessions() as s:
            return (await s.get_one(ClusterStamp, cluster_id)).observed_at

    first = await read()
    assert first.observed_at == await stamp()
    await tracker.run_once()  # nothing changed: one row of the cluster written, none of the app
    second = await read()
    assert second.observed_at == await stamp() > first.observed_at
    assert (second.own_observed_at, second.updated_at) == (first.own_observed_at, first.updated_at)
    assert (await platform.apps.get(app_id)).observed_at == second.observed_at  # as the API reads it

    # The cluster stops answering: the app is unconfirmed and keeps when it was last seen.
    fleet.unavailable = True
    await tracker.run_once()
    unconfirmed = await read()
    assert unconfirmed.observed_at == unconfirmed.own_observed_at == second.observed_at
    fleet.unavailable = False
    await tracker.run_once()  # seen again: its own observation, then its cluster's stamp
    assert (await read()).observed_at > second.observed_at
    await tracker.run_once()
    assert (await read()).observed_at == await stamp()

    # A job submitted after a pass began is not covered by that pass's stamp.
    async with platform.ctx.sessions() as s, s.begin():
        row = await s.get_one(ClusterStamp, cluster_id)
        await s.execute(sa.update(App).where(App.id == app_id).values(submitted_at=row.pass_started_at))
    assert (await read()).observed_at == (await read()).own_observed_at != await stamp()
