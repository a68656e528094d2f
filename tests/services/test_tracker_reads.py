"""The tracker reads its apps whole now and then and, in between, only the rows that changed (fake
target): its own "observed at" stamp is not a change, a new job or a cleared one is seen at the next
pass, and what a read missed is caught by the next whole read."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from streampilot.services.platform import Platform
from streampilot.store.orm import App, utcnow
from streampilot.targets.fake import FakeFleet
from tests.services.conftest import finished


async def test_changed_rows_are_read_between_whole_reads(platform: Platform, app_id: int, fleet: FakeFleet) -> None:
    tracker = platform.tracker
    assert (await finished(platform, (await platform.lifecycle.start(app_id)).id)).state == "succeeded"
    await tracker.run_once()  # a whole read
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
