"""Variables on a real cluster: Flink runs the resolved values, streampilot shows them masked."""

from __future__ import annotations

import uuid

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import DATAGEN_SQL, act

pytestmark = [pytest.mark.flink]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_flink_gets_the_values_and_streampilot_shows_secrets_masked(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex[:8]}"
    await api.post("/api/v1/variables", json={"name": "rate", "value": "9"})
    await api.post("/api/v1/variables", json={"name": "api_token", "value": secret, "secret": True})
    body = {
        "name": "vars-on-flink",
        "kind": "sql",
        "cluster_id": flink,
        "sql": DATAGEN_SQL.replace("'20'", "'${rate}'"),
        "properties": {"pipeline.global-job-parameters": "region:${api_token}"},
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    op = await act(api, app_id, "start")
    job_id = op["result"]["job_id"]

    config = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{job_id}/config").json()
    assert (
        config["execution-config"]["user-config"]["region"] == secret
    )  # Flink has the value (a key Flink does not hide itself)
    shown = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()
    assert shown["submitted"]["pipeline.global-job-parameters"] == "region:******"
    for path in ("", "/events", "/operations", "/launch-config"):
        assert secret not in (await api.get(f"/api/v1/apps/{app_id}{path}")).text, path
    await act(api, app_id, "cancel")
