"""Restart of the platform loses nothing: SIGKILL in the middle of an operation, then start again.

Requests to Flink are held up in a proxy so the platform dies in the middle: after recording the job
id but before Flink answered the submission (Flink then starts the job anyway: exactly one job, found
by the restarted platform, RUNNING), or after Flink accepted a stop with savepoint but before its
outcome was known (the restarted platform asks Flink for it: the operation succeeds, the app FINISHED).
Either way the operation ends in a definite state and the app's state is Flink's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from streampilot.flink.local import LocalCluster, free_port
from tests.faultproxy import FaultProxy
from tests.helpers import DATAGEN_SQL, act, wait_operation, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]


async def start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streampilot", "server", "--no-local-cluster"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{env['STREAMPILOT_PORT']}/api/v1/health"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server did not start; log:\n{log.read_text()[-3000:]}")


def server_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(tmp_path / "home"),
        "STREAMPILOT_PORT": str(free_port()),
        "STREAMPILOT_TRACKING_TICK_S": "0.5",
    }
    return env, tmp_path / "server.log"


def api_of(env: dict[str, str]) -> httpx.AsyncClient:
    token = (Path(env["STREAMPILOT_HOME"]) / "admin.token").read_text().strip()
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{env['STREAMPILOT_PORT']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


async def proxied_cluster(api: httpx.AsyncClient, proxy: FaultProxy) -> int:
    """The shared Flink cluster, registered through the fault proxy."""
    c = await api.post("/api/v1/clusters", json={"name": "via-proxy", "kind": "standalone", "rest_url": proxy.url})
    assert c.status_code == 201, c.text
    return int(c.json()["id"])


async def test_sigkill_while_starting_leaves_exactly_one_job(
    tmp_path: Path, proxy: FaultProxy, flink_cluster: LocalCluster
) -> None:
    env, log = server_env(tmp_path)
    server = await start_server(env, log)
    async with api_of(env) as api:
        try:
            cluster_id = await proxied_cluster(api, proxy)
            app = await api.post(
                "/api/v1/apps",
                json={"name": "crash-victim", "kind": "sql", "cluster_id": cluster_id, "sql": DATAGEN_SQL},
            )
            assert app.status_code == 201, app.text
            app_id = app.json()["id"]

            proxy.slow_s, proxy.mode = 3.0, "slow"
            start = await api.post(f"/api/v1/apps/{app_id}/start", json={})
            assert start.status_code == 202, start.text  # answered at once; the submission goes on
            op_id = start.json()["operation"]["id"]
            for _ in range(200):
                if any("/run" in p for p in proxy.paths):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the submission never reached the proxy: {proxy.paths}")
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            proxy.mode = "ok"
            await asyncio.sleep(3.5)  # the held-up submission reaches Flink after the platform died

            server = await start_server(env, log)
            app_now = await wait_state(api, app_id, "RUNNING", timeout=60)
            # The start operation was resumed from the job id it had stored, and ended.
            op = await wait_operation(api, op_id, 60)
            assert op["state"] == "succeeded", op
            assert "resumed after a platform restart" in [s["text"] for s in op["steps"]]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    mine = [j for j in jobs if j["name"] == "crash-victim"]
    assert len(mine) == 1, mine
    assert mine[0]["jid"] == app_now["status"]["job_id"]
    httpx.patch(f"{flink_cluster.layout.rest_url}/jobs/{mine[0]['jid']}", params={"mode": "cancel"})


async def test_sigkill_during_stop_with_savepoint_ends_the_operation_and_tells_the_truth(
    tmp_path: Path, proxy: FaultProxy, flink_cluster: LocalCluster
) -> None:
    env, log = server_env(tmp_path)
    server = await start_server(env, log)
    async with api_of(env) as api:
        try:
            cluster_id = await proxied_cluster(api, proxy)
            body = {
                "name": "stop-victim",
                "kind": "sql",
                "cluster_id": cluster_id,
                "sql": DATAGEN_SQL,
                "checkpointing": {"interval_s": 1},
            }
            app_id = (await api.post("/api/v1/apps", json=body)).json()["id"]
            job_id = (await act(api, app_id, "start"))["result"]["job_id"]

            proxy.slow_s, proxy.mode = 1.5, "slow"  # Flink's answers about the savepoint come late ...
            stop = await api.post(f"/api/v1/apps/{app_id}/stop", json={"savepoint": True})
            assert stop.status_code == 202, stop.text
            op_id = stop.json()["operation"]["id"]
            for _ in range(300):  # ... and the platform dies once Flink accepted the stop
                op = (await api.get(f"/api/v1/operations/{op_id}")).json()
                if "trigger" in (op["result"] or {}):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the stop was never triggered: {op}")
            assert op["state"] == "running"
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            proxy.mode = "ok"

            server = await start_server(env, log)
            op = await wait_operation(api, op_id, 60)
            app = await wait_state(api, app_id, "FINISHED", timeout=30)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    assert op["state"] == "succeeded", op
    steps = [s["text"] for s in op["steps"]]
    assert "resumed after a platform restart" in steps
    path = op["result"]["savepoint"]
    assert Path(path.removeprefix("file:"), "_metadata").exists()
    assert app["status"]["job_id"] == job_id
    flink_job = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{job_id}").json()
    assert flink_job["state"] == "FINISHED"  # the app's state is Flink's
