"""The platform's own metrics at /metrics and its readiness at /api/v1/health/ready (fake target)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from streampilot.targets.fake import FakeFleet
from tests.services.conftest import finished


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format (labels in any order), or None."""
    for line in text.splitlines():
        found = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if found is None or found.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        if have == labels:
            return float(found.group(3))
    return None


@pytest.fixture
async def running(platform: Platform) -> AsyncIterator[Platform]:
    platform.start_loops()
    yield platform
    await platform.stop_loops()


async def _metrics(api: httpx.AsyncClient) -> str:
    resp = await api.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


async def _until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():  # type: ignore[operator]
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.1)


async def test_metrics_tell_loops_clusters_operations(
    running: Platform, api: httpx.AsyncClient, app_id: int, fleet: FakeFleet
) -> None:
    resp = await api.post(f"/api/v1/apps/{app_id}/start")
    assert (await finished(running, resp.json()["operation"]["id"])).state == "succeeded"

    async def observed() -> bool:
        text = await _metrics(api)
        age = sample(text, "streampilot_cluster_observation_age_seconds", cluster="fake")
        return age is not None and age < 2 and (sample(text, "streampilot_clusters_unknown") == 0)

    await _until(observed)
    text = await _metrics(api)
    assert sample(text, "streampilot_operations_total", verb="start", outcome="succeeded") == 1
    assert (sample(text, "streampilot_loop_pass_seconds_count", loop="tracker") or 0) >= 1
    assert (sample(text, "streampilot_loop_last_pass_age_seconds", loop="policies") or 99) < 5
    assert (sample(text, "streampilot_cluster_polls_total", outcome="answered") or 0) >= 1

    # The cluster stops answering: it counts as unknown and its observation ages.
    fleet.unavailable = True

    async def unknown() -> bool:
        return sample(await _metrics(api), "streampilot_clusters_unknown") == 1

    await _until(unknown)
    before = sample(await _metrics(api), "streampilot_cluster_observation_age_seconds", cluster="fake")
    await asyncio.sleep(0.6)
    after = sample(await _metrics(api), "streampilot_cluster_observation_age_seconds", cluster="fake")
    assert before is not None and after is not None and after > before


async def test_metrics_are_a_platform_admins(running: Platform, api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(running)), base_url="http://sp") as anon:
        assert (await anon.get("/metrics")).status_code == 401
    resp = await api.post("/api/v1/users", json={"name": "ursula", "password": "ursula-secret"})
    token = (await api.post(f"/api/v1/users/{resp.json()['id']}/tokens", json={"name": "t"})).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    assert (await api.get("/metrics")).status_code == 403


async def test_ready_names_the_instance_and_what_does_not_work(running: Platform, api: httpx.AsyncClient) -> None:
    health = (await api.get("/api/v1/health")).json()
    assert health["instance_id"] == running.instance_id
    resp = await api.get("/api/v1/health/ready")
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"]["database"] == "ok" and resp.json()["instance_id"] == running.instance_id

    # A loop dies (its task ended): the instance is no longer ready, and says which loop.
    tracker = next(loop for loop in running.loops if loop.name == "tracker")
    assert tracker._task is not None
    tracker._task.cancel()
    await asyncio.sleep(0.05)
    resp = await api.get("/api/v1/health/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["loop:tracker"].startswith("no pass finished")
    assert resp.json()["checks"]["loop:policies"] == "ok"
