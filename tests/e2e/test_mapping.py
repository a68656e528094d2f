"""Jobs started outside the platform: listed as unmanaged, attached to an app (mapping); a cancel from
Flink's own API is reflected, and a new start from the platform is RUNNING again."""

from __future__ import annotations

import uuid

import httpx
import pytest

from streampilot.domain.sqlscript import parse_script
from streampilot.flink.client import FlinkClient, JarRun
from streampilot.flink.launch import RUNNER_CLASS, encode_statements
from streampilot.flink.local import LocalCluster
from streampilot.services.platform import Platform
from tests.helpers import DATAGEN_SQL, events, wait_state

pytestmark = [pytest.mark.flink]


async def submit_outside(platform: Platform, cluster: LocalCluster, name: str) -> str:
    """Start a job straight through Flink's REST API, as another tool would."""
    home = await platform.clusters.home_info(None)
    runner = await platform.ctx.runners.sql_runner(home)
    client = FlinkClient(cluster.layout.rest_url)
    try:
        jar_id = await client.upload_jar(runner, "outside.jar")
        return await client.run_jar(
            jar_id,
            JarRun(
                entry_class=RUNNER_CLASS,
                args=encode_statements(parse_script(DATAGEN_SQL)),
                parallelism=1,
                configuration={"pipeline.name": name},
            ),
        )
    finally:
        await client.close()


async def test_unmanaged_attach_external_cancel_and_start_again(
    api: httpx.AsyncClient, flink: int, platform: Platform, flink_cluster: LocalCluster
) -> None:
    job_id = await submit_outside(platform, flink_cluster, "outside-job")
    unmanaged = (await api.get("/api/v1/jobs/unmanaged")).json()
    assert job_id in [j["job_id"] for j in unmanaged]

    resp = await api.post(
        "/api/v1/apps", json={"name": "mapped", "kind": "sql", "cluster_id": flink, "sql": DATAGEN_SQL}
    )
    app_id = resp.json()["id"]
    bad = await api.post(f"/api/v1/apps/{app_id}/attach", json={"job_id": "not-a-job"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "job_id"
    missing = await api.post(f"/api/v1/apps/{app_id}/attach", json={"job_id": uuid.uuid4().hex})
    assert missing.status_code == 422 and "has no job" in missing.json()["detail"][0]["message"]

    attached = await api.post(f"/api/v1/apps/{app_id}/attach", json={"job_id": job_id})
    assert attached.status_code == 200, attached.text
    await wait_state(api, app_id, "RUNNING")
    assert job_id not in [j["job_id"] for j in (await api.get("/api/v1/jobs/unmanaged")).json()]

    other = (
        await api.post("/api/v1/apps", json={"name": "other", "kind": "sql", "cluster_id": flink, "sql": DATAGEN_SQL})
    ).json()["id"]
    taken = await api.post(f"/api/v1/apps/{other}/attach", json={"job_id": job_id})
    assert taken.status_code == 409 and "already belongs" in taken.json()["detail"]

    # Canceled from Flink's own REST API, not through the platform.
    httpx.patch(f"{flink_cluster.layout.rest_url}/jobs/{job_id}", params={"mode": "cancel"})
    await wait_state(api, app_id, "CANCELED")
    # The old platform stopped listening here; a new start must be reflected.
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    app = await wait_state(api, app_id, "RUNNING")
    assert app["status"]["job_id"] != job_id
    changes = [(e["from_state"], e["to_state"]) for e in await events(api, app_id) if e["from_state"] != e["to_state"]]
    assert changes[-2:] == [("CANCELED", "STARTING"), ("STARTING", "RUNNING")], changes
    assert changes[-3][1] == "CANCELED", changes
