"""Pushed job events (fake target): one more observation through the same rules, whatever the order,
repeats or losses; a wrong token opens nothing; lineage is stored and joined across apps."""

from __future__ import annotations

import time

import httpx

from streampilot.services.platform import Platform
from streampilot.services.push import push_token
from streampilot.targets.fake import FakeFleet
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished


async def _running(platform: Platform, api: httpx.AsyncClient, app_id: int) -> str:
    resp = await api.post(f"/api/v1/apps/{app_id}/start")
    assert (await finished(platform, resp.json()["operation"]["id"])).state == "succeeded"
    job_id = (await platform.apps.get(app_id)).job_id
    assert job_id is not None
    return job_id


def _status(job_id: str, old: str, new: str, at_ms: float | None = None) -> dict[str, object]:
    return {
        "kind": "status",
        "job_id": job_id,
        "job_name": "orders",
        "old_status": old,
        "new_status": new,
        "at_ms": at_ms or time.time() * 1000,
    }


async def test_pushes_are_observations_whatever_their_order(
    platform: Platform, api: httpx.AsyncClient, app_id: int, cluster_id: int, fleet: FakeFleet
) -> None:
    job_id = await _running(platform, api, app_id)
    headers = {"X-Streampilot-Push": push_token(platform.ctx, cluster_id)}
    # No loops run: only pushes (and what they make the tracker look at) move the app.
    fleet.jobs[job_id].state = "CANCELED"
    for _ in range(2):  # the same event twice
        resp = await api.post(
            f"/api/v1/push/{cluster_id}", json=_status(job_id, "RUNNING", "CANCELED"), headers=headers
        )
        assert resp.status_code == 202, resp.text
    assert (await platform.apps.get(app_id)).state == "CANCELED"
    events = [e for e in await platform.apps.events(app_id) if e.to_state == "CANCELED"]
    assert len(events) == 1  # one transition, not two

    # An old event arriving late says RUNNING: the cluster does not confirm it, nothing changes.
    late = _status(job_id, "CREATED", "RUNNING", at_ms=time.time() * 1000 - 60_000)
    resp = await api.post(f"/api/v1/push/{cluster_id}", json=late, headers=headers)
    assert resp.status_code == 202
    assert (await platform.apps.get(app_id)).state == "CANCELED"

    # A wrong token, another cluster's token, or no token: refused, nothing observed.
    for bad in ({"X-Streampilot-Push": "x" * 32}, {"X-Streampilot-Push": push_token(platform.ctx, cluster_id + 1)}, {}):
        resp = await api.post(f"/api/v1/push/{cluster_id}", json=_status(job_id, "A", "B"), headers=bad)
        assert resp.status_code in (401, 422), resp.text


async def test_a_lost_push_is_caught_up_by_polling(
    platform: Platform, api: httpx.AsyncClient, app_id: int, fleet: FakeFleet
) -> None:
    job_id = await _running(platform, api, app_id)
    fleet.jobs[job_id].state = "FAILED"  # pushed to nowhere (or lost on the way)
    await platform.tracker.run_once()  # the next poll
    assert (await platform.apps.get(app_id)).state == "FAILED"


async def test_lineage_is_stored_and_joined_across_apps(
    platform: Platform, api: httpx.AsyncClient, app_id: int, cluster_id: int
) -> None:
    job_id = await _running(platform, api, app_id)
    headers = {"X-Streampilot-Push": push_token(platform.ctx, cluster_id)}
    created = {
        "kind": "created",
        "job_id": job_id,
        "job_name": "orders",
        "mode": "STREAMING",
        "at_ms": time.time() * 1000,
        "sources": [{"datasets": [{"name": "orders", "namespace": "kafka://broker:9092"}]}],
        "sinks": [{"datasets": [{"name": "orders_clean", "namespace": "kafka://user:pw@broker:9092"}]}],
        "relations": [[0, 0]],
    }
    resp = await api.post(f"/api/v1/push/{cluster_id}", json=created, headers=headers)
    assert resp.status_code == 202 and resp.json()["result"] == "lineage stored"
    lineage = (await api.get(f"/api/v1/apps/{app_id}/lineage")).json()["lineage"]
    assert lineage["reads"] == ["kafka://broker:9092/orders"]
    assert lineage["writes"] == ["kafka://***@broker:9092/orders_clean"]  # credentials never shown
    assert lineage["relations"] == [[0, 0]]

    # A second app reads what the first writes: the fleet's lineage joins them.
    resp = await api.post(
        "/api/v1/apps", json={"name": "billing", "cluster_id": cluster_id, "kind": "sql", "sql": DATAGEN_SQL}
    )
    assert resp.status_code == 201, resp.text
    second = resp.json()
    second_job = await _running(platform, api, second["id"])
    reads = {**created, "job_id": second_job, "sources": created["sinks"], "sinks": [], "relations": []}
    await api.post(f"/api/v1/push/{cluster_id}", json=reads, headers=headers)
    fleet = (await api.get("/api/v1/lineage")).json()
    assert {"from": "orders", "to": "billing", "dataset": "kafka://***@broker:9092/orders_clean"} in fleet["edges"]


async def test_the_push_configuration_is_a_developers(
    platform: Platform, api: httpx.AsyncClient, cluster_id: int
) -> None:
    conf = (await api.get(f"/api/v1/clusters/{cluster_id}/push")).json()
    assert conf["execution.job-status-changed-listeners"] == "io.streampilot.StreampilotStatusPush"
    assert conf["streampilot.push.url"].endswith(f"/api/v1/push/{cluster_id}")
    assert conf["streampilot.push.token"] == push_token(platform.ctx, cluster_id)
    user = (await api.post("/api/v1/users", json={"name": "val", "password": "val-secret-pw"})).json()["id"]
    await api.post("/api/v1/teams/1/members", json={"user_id": user, "role": "viewer"})
    token = (await api.post(f"/api/v1/users/{user}/tokens", json={"name": "t"})).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    assert (await api.get(f"/api/v1/clusters/{cluster_id}/push")).status_code == 403
