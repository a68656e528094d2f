"""Three real server processes on one PostgreSQL database watching the shared Flink cluster: SIGKILL
the one holding the cluster, cancel the job from Flink's own REST API, and another instance shows it
within the lease's time and two ticks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from streampilot.flink.local import LocalCluster, free_port
from tests.e2e.test_server_and_cli import wait_http
from tests.helpers import DATAGEN_SQL

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
TICK, TTL = 0.5, 4.0


def _get(base: str, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


async def test_a_killed_instances_cluster_is_taken_over(
    tmp_path: Path, db_url: str, flink_cluster: LocalCluster
) -> None:
    home = tmp_path / "home"  # shared by the instances: the same keys for stored secrets and tokens
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(home),
        "STREAMPILOT_DATABASE_URL": db_url,
        "STREAMPILOT_TRACKING_TICK_S": str(TICK),
        "STREAMPILOT_TRACKING_LEASE_TTL_S": str(TTL),
    }
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for i in range(3):
            port = free_port()
            log = (tmp_path / f"server{i}.log").open("w")
            servers[f"http://127.0.0.1:{port}"] = subprocess.Popen(
                [sys.executable, "-m", "streampilot", "server", "--no-local-cluster", "--no-example"],
                env={**env, "STREAMPILOT_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            wait_http(f"http://127.0.0.1:{port}/api/v1/health", 60)  # one by one: the first migrates
        token = (home / "admin.token").read_text().strip()
        first = next(iter(servers))
        ids = {_get(base, token, "/health").json()["instance_id"]: base for base in servers}
        assert len(ids) == 3

        async with httpx.AsyncClient(base_url=first, headers={"Authorization": f"Bearer {token}"}, timeout=180) as api:
            resp = await api.post(
                "/api/v1/clusters",
                json={"name": "shared", "kind": "standalone", "rest_url": flink_cluster.layout.rest_url},
            )
            assert resp.status_code == 201, resp.text
            resp = await api.post(
                "/api/v1/apps",
                json={"name": "orders", "cluster_id": resp.json()["id"], "kind": "sql", "sql": DATAGEN_SQL},
            )
            app_id = resp.json()["id"]
            resp = await api.post(f"/api/v1/apps/{app_id}/start")
            assert resp.status_code == 202, resp.text
            deadline = time.monotonic() + 120
            while (app := (await api.get(f"/api/v1/apps/{app_id}")).json())["status"]["state"] != "RUNNING":
                assert time.monotonic() < deadline, app
                await asyncio.sleep(0.3)
            job_id = app["status"]["job_id"]

        listed = _get(first, token, "/instances").json()
        holder = next(i["id"] for i in listed if i["cluster_ids"])
        victim = ids[holder]
        servers[victim].send_signal(signal.SIGKILL)
        servers[victim].wait(10)
        survivor = next(base for base in servers if base != victim)

        # Cancelled from Flink's own REST API while nobody watches.
        killed_at = time.monotonic()
        cancel = httpx.patch(f"{flink_cluster.layout.rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
        assert cancel.status_code == 202, cancel.text
        while _get(survivor, token, f"/apps/{app_id}").json()["status"]["state"] != "CANCELED":
            assert time.monotonic() - killed_at < TTL + 10 * TICK + 10, "never taken over"
            await asyncio.sleep(0.1)
        took = time.monotonic() - killed_at
        assert took <= TTL + 2 * TICK + 2.0, took  # the lease's time and two ticks (slack: a busy 2-core box)
        listed = _get(survivor, token, "/instances").json()
        assert holder not in {i["id"] for i in listed} or all(not i["cluster_ids"] for i in listed if i["id"] == holder)
        assert any(i["cluster_ids"] for i in listed)
    finally:
        for proc in servers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in servers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
