"""A local cluster registered, started, inspected, stopped and deleted through the API."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.flink, pytest.mark.slow]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_local_cluster_start_stop_delete(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/clusters", json={"name": "mine", "kind": "local", "slots": 2})
    assert created.status_code == 201, created.text
    cluster = created.json()
    assert cluster["flink_version"] == "2.3.0" and cluster["rest_url"].startswith("http://127.0.0.1:")
    try:
        started = await api.post(f"/api/v1/clusters/{cluster['id']}/start")
        assert started.status_code == 200, started.text
        runtime = started.json()["runtime"]
        assert runtime["reachable"] is True and runtime["slots_total"] == 2
        assert started.json()["desired_running"] is True

        stopped = await api.post(f"/api/v1/clusters/{cluster['id']}/stop")
        assert stopped.status_code == 200 and stopped.json()["desired_running"] is False
        after = (await api.get(f"/api/v1/clusters/{cluster['id']}")).json()
        assert after["runtime"]["reachable"] is False
    finally:
        await api.post(f"/api/v1/clusters/{cluster['id']}/stop")
    assert (await api.delete(f"/api/v1/clusters/{cluster['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/clusters/{cluster['id']}")).status_code == 404
    standalone = await api.post("/api/v1/clusters", json={"name": "other", "kind": "standalone"})
    assert standalone.status_code == 422 and standalone.json()["detail"][0]["field"] == "rest_url"
