"""The platform supervises the local clusters it runs: a killed TaskManager is started again without
anyone calling anything, the job recovers, the cluster's timeline says what happened, and a cluster
that keeps dying is given up once its restart budget is spent."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from tests.conftest import test_settings as settings_for
from tests.helpers import DATAGEN_SQL, wait_app, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]


@pytest.fixture
async def supervised(tmp_path: Path) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    base = settings_for(tmp_path / "home", f"sqlite:///{tmp_path / 'sp.db'}")
    settings = base.with_(flink=base.flink.model_copy(update={"supervise_every_s": 0.5, "local_restarts_per_hour": 1}))
    platform = Platform(settings)
    await platform.open()
    token = settings.token_file.read_text().strip()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform)),
        base_url="http://streampilot",
        timeout=180,
        headers={"Authorization": f"Bearer {token}"},
    ) as api:
        yield platform, api
    await platform.stop_loops()
    await platform.stop_local_clusters()
    await platform.close()


async def cluster_events(api: httpx.AsyncClient, cluster_id: int) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/clusters/{cluster_id}/events")
    assert resp.status_code == 200, resp.text
    return list(resp.json())


async def wait_for(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_killed_taskmanager_is_started_again_and_the_job_recovers(
    supervised: tuple[Platform, httpx.AsyncClient],
) -> None:
    platform, api = supervised
    created = await api.post("/api/v1/clusters", json={"name": "supervised", "kind": "local", "slots": 2})
    assert created.status_code == 201, created.text
    cluster_id = created.json()["id"]
    assert (await api.post(f"/api/v1/clusters/{cluster_id}/start")).status_code == 200
    platform.start_loops()
    body = {
        "name": "survivor",
        "kind": "sql",
        "cluster_id": cluster_id,
        "sql": DATAGEN_SQL,
        "restart_strategy": {"type": "fixed-delay", "attempts": 1000, "delay_s": 0.5},
    }
    app_id = (await api.post("/api/v1/apps", json=body)).json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start")).status_code == 202
    first_job = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]

    shown = (await api.get(f"/api/v1/clusters/{cluster_id}")).json()["runtime"]
    assert shown["slots_total"] == 2 and "slots_available" in shown
    tms = [p["pid"] for p in shown["supervision"]["processes"] if p["role"] == "taskmanager"]
    assert len(tms) == 1
    os.kill(tms[0], signal.SIGKILL)
    killed_at = time.monotonic()

    async def restarted() -> list[dict[str, Any]]:
        return [e for e in await cluster_events(api, cluster_id) if e["kind"] == "process_restarted"]

    event = (await wait_for("the TaskManager to be started again", restarted))[0]
    print(f"TaskManager started again {time.monotonic() - killed_at:.1f} s after the kill")
    assert f"TaskManager (pid {tms[0]}) is gone" in event["detail"] and "restart 1 of at most 1" in event["detail"]
    shown = (await api.get(f"/api/v1/clusters/{cluster_id}")).json()["runtime"]
    new_tms = [p["pid"] for p in shown["supervision"]["processes"] if p["role"] == "taskmanager"]
    assert len(new_tms) == 1 and new_tms != tms and shown["supervision"]["restarts"] == 1

    # Nobody called anything: Flink restarts the job on the new TaskManager, the app is RUNNING again.
    await wait_app(
        api,
        app_id,
        lambda a: a["status"]["state"] == "RUNNING" and a["status"]["tasks_running"] == a["status"]["tasks_total"],
        timeout=60,
    )
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["job_id"] == first_job

    # A second death within the hour spends the budget of 1: the platform gives up and says so.
    os.kill(new_tms[0], signal.SIGKILL)

    async def given_up() -> list[dict[str, Any]]:
        return [e for e in await cluster_events(api, cluster_id) if e["kind"] == "budget_spent"]

    spent = (await wait_for("the restart budget to be spent", given_up))[0]
    assert "reach the budget of 1" in spent["detail"]
    cluster = (await api.get(f"/api/v1/clusters/{cluster_id}")).json()
    assert cluster["state"] == "FAILED"
    await asyncio.sleep(1.5)  # a few supervisor passes: nothing is started any more
    assert len(await restarted()) == 1
    await api.post(f"/api/v1/apps/{app_id}/cancel")
