"""Alerts end to end with the real Flink cluster: a failed job alerts once per channel (mail and
webhook), a flapping job is throttled, and a hanging receiver never delays state tracking."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.domain.alerts import AlertReason
from streampilot.services.alerting import raise_alert
from streampilot.services.platform import Platform
from streampilot.settings import AlertSettings
from streampilot.store.orm import App
from tests.helpers import DATAGEN_SQL, events, wait_state
from tests.receivers import HttpReceiver, SmtpReceiver

pytestmark = [pytest.mark.flink, pytest.mark.slow]
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def channels(api: httpx.AsyncClient, receiver: HttpReceiver, smtp: SmtpReceiver) -> list[int]:
    ids = []
    for name, kind, config in [
        ("hook", "webhook", {"url": f"{receiver.url}/hook"}),
        (
            "mail",
            "email",
            {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "plain",
                "sender": "sp@example.org",
                "recipients": ["oncall@example.org"],
            },
        ),
    ]:
        resp = await api.post("/api/v1/alert-channels", json={"name": name, "kind": kind, "config": config})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return ids


async def crashing_app(
    api: httpx.AsyncClient, cluster: int, jar: Path, markers: Path, channel_ids: list[int], **extra: Any
) -> int:
    upload = await api.post("/api/v1/jars", files={"file": ("jobs.jar", jar.read_bytes())})
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "crashing",
            "kind": "jar",
            "cluster_id": cluster,
            "jar_id": upload.json()["id"],
            "entry_class": "example.PolicyJob",
            "args": [str(markers)],
            "restart_strategy": {"type": "none"},
            "alert_channel_ids": channel_ids,
            **extra,
        },
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def hook_messages(receiver: HttpReceiver, reason: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.json()["reason"] == reason]


async def until(cond: Any, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.2)):
        if cond():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


@SINGLE_DB
async def test_failed_job_alerts_once_per_channel(
    api: httpx.AsyncClient,
    flink: int,
    platform: Platform,
    jobs_jar: Path,
    tmp_path: Path,
    receiver: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    platform.ctx.settings = platform.ctx.settings.with_(alerts=AlertSettings(dispatch_tick_s=0.2))
    app_id = await crashing_app(api, flink, jobs_jar, tmp_path, await channels(api, receiver, smtp))
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    (tmp_path / "crash").touch()
    await wait_state(api, app_id, "FAILED")
    await until(lambda: hook_messages(receiver, "job_failed") and smtp.mails)
    await asyncio.sleep(2)  # nothing more arrives
    failed = hook_messages(receiver, "job_failed")
    assert len(failed) == 1
    assert failed[0]["app"] == "crashing" and failed[0]["state"] == "FAILED"
    assert failed[0]["previous_state"] in ("RUNNING", "FAILING")
    assert "crash injected by the test" in (failed[0]["exception"] or "")
    assert failed[0]["link"].endswith(f"/apps/{app_id}")
    assert len(smtp.mails) == 1
    _, rcpt, mail = smtp.mails[0]
    assert rcpt == ["oncall@example.org"] and mail["Subject"] == "[streampilot] crashing: job failed"
    assert "crash injected by the test" in mail.get_payload()


@SINGLE_DB
async def test_flapping_job_is_throttled_with_suppressed_count(
    api: httpx.AsyncClient,
    flink: int,
    platform: Platform,
    jobs_jar: Path,
    tmp_path: Path,
    receiver: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    platform.ctx.settings = platform.ctx.settings.with_(alerts=AlertSettings(dispatch_tick_s=0.2, throttle_s=8))
    hook = (await channels(api, receiver, smtp))[0]
    app_id = await crashing_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        [hook],
        alert_reasons=["job_failed"],
        auto_restart={"max_restarts": 2, "window_s": 600},
    )
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    (tmp_path / "crash").touch()
    for _ in range(300):
        if any("budget spent" in e["detail"] for e in await events(api, app_id)):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    assert len(hook_messages(receiver, "job_failed")) == 1  # three failures, one message
    failures = [a for a in (await api.get(f"/api/v1/apps/{app_id}/alerts")).json() if a["reason"] == "job_failed"]
    timeline = [(e["from_state"], e["to_state"], e["cause"], e["detail"][:70]) for e in await events(api, app_id)]
    assert len(failures) == 3, "\n".join(map(str, timeline))
    assert sorted(d["status"] for a in failures for d in a["deliveries"]) == ["sent", "suppressed", "suppressed"]

    await asyncio.sleep(8)  # the throttle period passes; the next failure is told, with the count
    (tmp_path / "crash").unlink()
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    (tmp_path / "crash").touch()
    await until(lambda: len(hook_messages(receiver, "job_failed")) == 2)
    assert hook_messages(receiver, "job_failed")[1]["suppressed"] == 2


@SINGLE_DB
async def test_hanging_receiver_does_not_delay_tracking(
    api: httpx.AsyncClient, flink: int, platform: Platform, receiver: HttpReceiver
) -> None:
    platform.ctx.settings = platform.ctx.settings.with_(alerts=AlertSettings(dispatch_tick_s=0.1))
    resp = await api.post(
        "/api/v1/alert-channels",
        json={"name": "stuck", "kind": "webhook", "config": {"url": f"{receiver.url}/x", "timeout_s": 60}},
    )
    channel_id = resp.json()["id"]
    app = await api.post(
        "/api/v1/apps",
        json={
            "name": "watched",
            "kind": "sql",
            "cluster_id": flink,
            "sql": DATAGEN_SQL,
            "alert_channel_ids": [channel_id],
        },
    )
    app_id = app.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    receiver.hang = True
    async with platform.ctx.sessions() as s, s.begin():
        row = await s.get(App, app_id)
        assert row is not None
        for _ in range(5):
            raise_alert(s, row, AlertReason.JOB_LOST, "test alert")
    await until(lambda: len(receiver.requests) >= 1, 10)  # the dispatcher is now stuck on the receiver

    tracker = next(loop for loop in platform.loops if loop.name == "tracker")
    passes, overruns = tracker.passes, tracker.overruns
    observed = (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["observed_at"]
    await asyncio.sleep(3)
    tick = platform.settings.tracking.tick_s
    assert tracker.passes - passes >= int(3 / tick * 0.7), "the tracker slowed down while alerts hung"
    assert tracker.overruns == overruns
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["observed_at"] > observed
    await api.post(f"/api/v1/apps/{app_id}/cancel")
    receiver.hang = False
