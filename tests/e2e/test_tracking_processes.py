"""Truthful status when Flink's own processes die: a TaskManager, then the JobManager.

These tests own a local cluster of their own (killing the shared cluster's JobManager would break
other tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from streampilot.flink.homes import bundled_home_path, inspect_home
from streampilot.flink.local import LocalCluster, LocalClusterLayout, free_port
from tests.helpers import DATAGEN_SQL, events, wait_app, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    home = bundled_home_path()
    assert home is not None
    cluster = LocalCluster(
        LocalClusterLayout(
            home=inspect_home(home),
            root=tmp_path_factory.mktemp("own"),
            rest_port=free_port(),
            rpc_port=free_port(),
            slots=4,
        )
    )
    asyncio.run(cluster.start(timeout_s=90))
    yield cluster
    asyncio.run(cluster.stop())


async def start_app(api: httpx.AsyncClient, cluster: LocalCluster, name: str) -> int:
    c = await api.post(
        "/api/v1/clusters", json={"name": "own", "kind": "standalone", "rest_url": cluster.layout.rest_url}
    )
    assert c.status_code == 201, c.text
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": name,
            "kind": "sql",
            "cluster_id": c.json()["id"],
            "sql": DATAGEN_SQL,
            "restart_strategy": {"type": "fixed-delay", "attempts": 1000, "delay_s": 0.5},
        },
    )
    assert resp.status_code == 201, resp.text
    app_id = int(resp.json()["id"])
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    return app_id


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_taskmanager_killed_then_replaced(
    api: httpx.AsyncClient,
    own_cluster: LocalCluster,
    platform,  # type: ignore[no-untyped-def]
) -> None:
    platform.start_loops()
    app_id = await start_app(api, own_cluster, "tm-victim")
    assert own_cluster.kill("taskmanager")
    app = await wait_app(
        api,
        app_id,
        lambda a: a["status"]["state"] in ("RESTARTING", "STARTING"),
        timeout=30,
        what="RESTARTING after the TaskManager died",
    )
    assert app["status"]["tasks_running"] < app["status"]["tasks_total"] or app["status"]["job_state"] != "RUNNING"
    await own_cluster.start_taskmanager()
    await wait_state(api, app_id, "RUNNING", timeout=60)
    changes = [
        (e["from_state"], e["to_state"], e["cause"])
        for e in await events(api, app_id)
        if e["from_state"] != e["to_state"]
    ]
    assert ("RUNNING", "RESTARTING", "observer") in changes
    assert changes[-1] == ("RESTARTING", "RUNNING", "observer")
    await api.post(f"/api/v1/apps/{app_id}/cancel")
    await platform.stop_loops()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_jobmanager_killed_unconfirmed_then_lost_then_gone(
    api: httpx.AsyncClient,
    own_cluster: LocalCluster,
    platform,  # type: ignore[no-untyped-def]
) -> None:
    platform.start_loops()
    app_id = await start_app(api, own_cluster, "jm-victim")
    lost_after = platform.settings.tracking.lost_after_s
    assert own_cluster.kill("jobmanager")
    app = await wait_app(
        api,
        app_id,
        lambda a: a["status"]["unconfirmed_since"] is not None,
        timeout=10,
        what="unconfirmed after the JobManager died",
    )
    assert app["status"]["state"] == "RUNNING"  # unknown is not gone
    await asyncio.sleep(lost_after * 0.6)
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["state"] == "RUNNING"
    await wait_state(api, app_id, "LOST", timeout=lost_after * 2)

    await own_cluster.start(timeout_s=90)  # a fresh JobManager without HA: the job is gone
    await wait_app(
        api, app_id, lambda a: a["status"]["unconfirmed_since"] is None, timeout=30, what="cluster answering again"
    )
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["state"] == "LOST"
    details = [e["detail"] for e in await events(api, app_id)]
    assert any("job is gone" in d for d in details), details
    await platform.stop_loops()
