"""Truthful status under faults between the tracker and Flink's REST API (a real cluster behind a
fault-injecting proxy): faults shorter than lost_after change nothing, longer ones make LOST, and
the app is RUNNING again soon after the faults end."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.faultproxy import FaultProxy
from tests.helpers import DATAGEN_SQL, events, wait_app, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]


async def state_changes(api: httpx.AsyncClient, app_id: int) -> list[tuple[str, str]]:
    return [(e["from_state"], e["to_state"]) for e in await events(api, app_id) if e["from_state"] != e["to_state"]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_faults_shorter_than_lost_after_change_nothing_longer_ones_make_lost(
    api: httpx.AsyncClient,
    flink: int,
    proxy: FaultProxy,
    platform,  # type: ignore[no-untyped-def]
) -> None:
    cluster = await api.post("/api/v1/clusters", json={"name": "proxied", "kind": "standalone", "rest_url": proxy.url})
    assert cluster.status_code == 201, cluster.text
    resp = await api.post(
        "/api/v1/apps", json={"name": "faulty", "kind": "sql", "cluster_id": cluster.json()["id"], "sql": DATAGEN_SQL}
    )
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    before = await state_changes(api, app_id)
    lost_after = platform.settings.tracking.lost_after_s  # 5 s in tests

    for mode in ("error500", "reset", "truncate", "hang", "slow"):
        proxy.mode = mode
        if mode != "slow":
            app = await wait_app(
                api,
                app_id,
                lambda a: a["status"]["unconfirmed_since"] is not None,
                timeout=lost_after,
                what=f"unconfirmed during {mode}",
            )
            assert app["status"]["state"] == "RUNNING"
        await asyncio.sleep(lost_after / 3)
        proxy.mode = "ok"
        app = await wait_app(
            api,
            app_id,
            lambda a: a["status"]["unconfirmed_since"] is None,
            timeout=lost_after,
            what=f"confirmed again after {mode}",
        )
        assert app["status"]["state"] == "RUNNING"
    assert await state_changes(api, app_id) == before, "a fault shorter than lost_after changed the state"

    proxy.mode = "error500"
    lost = (await wait_state(api, app_id, "LOST", timeout=lost_after * 3))["status"]
    # LOST shows as unknown what is no longer known, and when the job was last seen.
    assert (lost["job_state"], lost["tasks_running"], lost["tasks_total"], lost["config_verified"]) == (
        None,
        None,
        None,
        None,
    )
    assert lost["observed_at"] is not None and lost["unconfirmed_since"] is not None
    proxy.mode = "ok"
    tick = platform.settings.tracking.tick_s
    await wait_state(api, app_id, "RUNNING", timeout=2 * tick + 1.5)
    timeline = [(e["from_state"], e["to_state"], e["cause"]) for e in await events(api, app_id)]
    assert timeline[-2:] == [("RUNNING", "LOST", "observer"), ("LOST", "RUNNING", "observer")]
