"""A Flink SQL application's whole lifecycle against the real local Flink cluster."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.helpers import DATAGEN_SQL, act, events, wait_app, wait_state

pytestmark = [pytest.mark.flink]


async def create_sql_app(api: httpx.AsyncClient, cluster_id: int, name: str = "orders", **extra: object) -> int:
    body = {
        "name": name,
        "kind": "sql",
        "cluster_id": cluster_id,
        "sql": DATAGEN_SQL,
        "checkpointing": {"interval_s": 0.5},
        **extra,
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def test_run_checkpoint_savepoint_stop_restore_cancel(api: httpx.AsyncClient, flink: int) -> None:
    app_id = await create_sql_app(
        api,
        flink,
        restart_strategy={"type": "failure-rate", "max_failures": 3, "interval_s": 300, "delay_s": 2},
    )
    started = await act(api, app_id, "start", {"restore": "none"})
    job1 = started["result"]["job_id"]
    assert started["result"]["state"] == "RUNNING"
    assert any(s["text"].startswith(f"submitting job {job1}") for s in started["steps"])

    app = await wait_state(api, app_id, "RUNNING")
    assert app["status"]["job_id"] == job1
    assert app["status"]["tasks_running"] == app["status"]["tasks_total"] > 0

    # Checkpoints complete, and the settings are verified from Flink's readback.
    app = await wait_app(
        api,
        app_id,
        lambda a: (
            (a["status"]["last_checkpoint"] or {}).get("completed", 0) >= 2
            and a["status"]["config_verified"] is not None
        ),
        what="checkpoints and verification",
    )
    assert app["status"]["config_verified"] is True, app["status"]["config_mismatches"]

    launch = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()
    assert launch["submitted"]["restart-strategy.type"] == "failure-rate"
    assert launch["submitted"]["pipeline.name"] == "orders"

    checkpoints = (await api.get(f"/api/v1/apps/{app_id}/checkpoints")).json()
    assert checkpoints["job"]["counts"]["completed"] >= 2
    assert checkpoints["retained"] and checkpoints["retained"][0]["kind"] == "checkpoint"
    assert (await api.get(f"/api/v1/apps/{app_id}/exceptions")).json() == []

    manual = (await act(api, app_id, "savepoint"))["result"]["path"]
    assert Path(urlparse(manual).path, "_metadata").exists()

    stopped = await act(api, app_id, "stop", {"savepoint": True, "drain": False})
    assert stopped["result"]["state"] == "FINISHED"
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["state"] == "FINISHED"
    saved = [s["path"] for s in (await api.get(f"/api/v1/apps/{app_id}/savepoints")).json()]
    assert saved[1] == manual and len(saved) == 2
    stop_savepoint = saved[0]

    job2 = (await act(api, app_id, "start", {"restore": "latest"}))["result"]["job_id"]
    assert job2 != job1
    await wait_state(api, app_id, "RUNNING")
    app = await wait_app(
        api,
        app_id,
        lambda a: (a["status"]["last_checkpoint"] or {}).get("restored_from") is not None,
        what="restore reported by Flink",
    )
    assert app["status"]["last_checkpoint"]["restored_from"] == stop_savepoint

    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"

    timeline = [(e["from_state"], e["to_state"], e["cause"]) for e in await events(api, app_id)]
    assert (None, "CREATED", "user") in timeline
    assert ("CREATED", "STARTING", "user") in timeline
    assert ("STARTING", "RUNNING", "observer") in timeline
    assert ("RUNNING", "STOPPING", "user") in timeline
    assert ("STOPPING", "FINISHED", "observer") in timeline
    assert ("FINISHED", "STARTING", "user") in timeline
    assert ("STOPPING", "CANCELED", "observer") in timeline


async def test_second_start_while_starting_is_409_and_one_job(
    api: httpx.AsyncClient, flink: int, flink_cluster
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    app_id = await create_sql_app(api, flink, name="twice")
    first, second = await asyncio.gather(
        api.post(f"/api/v1/apps/{app_id}/start", json={}), api.post(f"/api/v1/apps/{app_id}/start", json={})
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [202, 409], (first.text, second.text)
    refused = first if first.status_code == 409 else second
    assert "in progress" in refused.json()["detail"] or "STARTING" in refused.json()["detail"]
    await wait_state(api, app_id, "RUNNING")
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    assert len([j for j in jobs if j["name"] == "twice" and j["state"] == "RUNNING"]) == 1

    # Deleting a running app is refused; after cancel it works.
    resp = await api.delete(f"/api/v1/apps/{app_id}")
    assert resp.status_code == 409
    await act(api, app_id, "cancel")
    assert (await api.delete(f"/api/v1/apps/{app_id}")).status_code == 204
    assert (await api.get(f"/api/v1/apps/{app_id}")).status_code == 404
