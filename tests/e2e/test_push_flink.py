"""A local Flink 2.3 cluster started by the platform pushes its job events: with the tracker's tick at
10 s, a cancel from Flink's own REST API reaches the app's state within a second, and the job's
lineage (its source and sink tables) is stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.flink.local import free_port
from streampilot.services.platform import Platform
from streampilot.settings import TrackingSettings
from tests.conftest import test_settings as settings_for
from tests.helpers import DATAGEN_SQL, serving

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


@pytest.fixture
async def pushing(tmp_path: Path, db_url: str) -> AsyncIterator[Platform]:
    port = free_port()
    settings = settings_for(tmp_path / "home", db_url).with_(
        port=port, tracking=TrackingSettings(tick_s=10, lost_after_s=60, submit_grace_s=30, detail_every_s=10)
    )
    platform = Platform(settings)
    await platform.open()
    async with serving(platform, port):
        platform.start_loops()
        cluster = await platform.clusters.add("pushy", "local", slots=4)
        await platform.clusters.start(cluster.id)
        yield platform
        await platform.stop_loops()
        await platform.stop_local_clusters()
    await platform.close()


async def test_a_cancel_from_flink_arrives_by_push(pushing: Platform) -> None:
    platform = pushing
    cluster = (await platform.clusters.list_clusters())[0]
    conf = (platform.ctx.home / "clusters" / "pushy" / "conf" / "config.yaml").read_text()
    assert "io.streampilot.StreampilotStatusPush" in conf
    app = await platform.apps.create("orders", cluster.id, AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL))
    op = await platform.lifecycle.start(app.id)
    deadline = time.monotonic() + 120
    while (await platform.lifecycle.get_operation(op.id)).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (await platform.lifecycle.get_operation(op.id)).state == "succeeded"
    job_id = (await platform.apps.get(app.id)).job_id
    rest = cluster.rest_url
    assert rest is not None and job_id is not None

    cancelled_at = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.patch(f"{rest}/jobs/{job_id}", params={"mode": "cancel"})
        assert resp.status_code == 202, resp.text
    while (await platform.apps.get(app.id)).state != "CANCELED":
        assert time.monotonic() - cancelled_at < 8, "not pushed: the 10 s tick would have been the first to see it"
        await asyncio.sleep(0.02)
    took = time.monotonic() - cancelled_at
    pushed = [line for line in platform.ctx.metrics.exposition().decode().splitlines() if "push_events_total{" in line]
    assert took < 2.0, (took, pushed, [(e.at, e.to_state, e.detail) for e in await platform.apps.events(app.id)])
    text = platform.ctx.metrics.exposition().decode()
    assert 'streampilot_push_events_total{kind="status"}' in text

    lineage = None
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(
        base_url=platform.settings.server_url,
        headers={"Authorization": f"Bearer {platform.settings.token_file.read_text().strip()}"},
    ) as api:
        while lineage is None and time.monotonic() < deadline:
            lineage = (await api.get(f"/api/v1/apps/{app.id}/lineage")).json()["lineage"]
            await asyncio.sleep(0.2)
    pushed = [line for line in platform.ctx.metrics.exposition().decode().splitlines() if "push_events" in line]
    assert lineage is not None, f"no JobCreatedEvent pushed: {pushed}"
    assert any("src" in name for name in lineage["reads"]), lineage
    assert any("snk" in name for name in lineage["writes"]), lineage
