"""Restart of the platform loses nothing: SIGKILL while an app is STARTING, then start again.

The submission is held up in a proxy so the platform dies after recording the job id but before
Flink answered; Flink then starts the job anyway. Afterwards exactly one Flink job exists for the
app, the restarted platform found it (no second submission) and shows it RUNNING."""

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
from tests.helpers import DATAGEN_SQL, wait_state

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


async def test_sigkill_while_starting_leaves_exactly_one_job(
    tmp_path: Path, proxy: FaultProxy, flink_cluster: LocalCluster
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(tmp_path / "home"),
        "STREAMPILOT_PORT": str(port),
        "STREAMPILOT_TRACKING_TICK_S": "0.5",
    }
    log = tmp_path / "server.log"
    server = await start_server(env, log)
    token = (tmp_path / "home" / "admin.token").read_text().strip()
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        try:
            c = await api.post(
                "/api/v1/clusters", json={"name": "via-proxy", "kind": "standalone", "rest_url": proxy.url}
            )
            assert c.status_code == 201, c.text
            app = await api.post(
                "/api/v1/apps",
                json={"name": "crash-victim", "kind": "sql", "cluster_id": c.json()["id"], "sql": DATAGEN_SQL},
            )
            assert app.status_code == 201, app.text
            app_id = app.json()["id"]

            proxy.slow_s, proxy.mode = 3.0, "slow"
            start = asyncio.create_task(api.post(f"/api/v1/apps/{app_id}/start", json={}))
            for _ in range(200):
                if any("/run" in p for p in proxy.paths):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the submission never reached the proxy: {proxy.paths}")
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            with pytest.raises(httpx.HTTPError):
                await start
            proxy.mode = "ok"
            await asyncio.sleep(3.5)  # the held-up submission reaches Flink after the platform died

            server = await start_server(env, log)
            app_now = await wait_state(api, app_id, "RUNNING", timeout=60)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    mine = [j for j in jobs if j["name"] == "crash-victim"]
    assert len(mine) == 1, mine
    assert mine[0]["jid"] == app_now["status"]["job_id"]
    httpx.patch(f"{flink_cluster.layout.rest_url}/jobs/{mine[0]['jid']}", params={"mode": "cancel"})
