"""Alert channels against real local receivers: payloads and signatures as each vendor documents
them, a real SMTP server, masking of secrets, retries, throttling and field errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import httpx

from streampilot.domain.alerts import AlertReason
from streampilot.domain.apps import AppKind, AppSpec
from streampilot.services.alerting import raise_alert
from streampilot.services.platform import Platform
from streampilot.settings import AlertSettings
from streampilot.store.orm import App, AppVersion, Cluster
from tests.receivers import HttpReceiver, SmtpReceiver

SECRET = "SEC-very-secret-123"


async def channel(api: httpx.AsyncClient, name: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    resp = await api.post("/api/v1/alert-channels", json={"name": name, "kind": kind, "config": config})
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def test_each_channel_sends_the_vendor_format_with_valid_signatures(
    api: httpx.AsyncClient, receiver: HttpReceiver, smtp: SmtpReceiver
) -> None:
    url = receiver.url
    made = [
        await channel(api, "hook", "webhook", {"url": f"{url}/hook", "secret": SECRET}),
        await channel(api, "slack", "slack", {"webhook_url": f"{url}/services/T0/B0/XYZ"}),
        await channel(
            api, "ding", "dingtalk", {"webhook_url": f"{url}/robot/send?access_token=tok123", "secret": SECRET}
        ),
        await channel(api, "wecom", "wecom", {"webhook_url": f"{url}/cgi-bin/webhook/send?key=key123"}),
        await channel(api, "lark", "lark", {"webhook_url": f"{url}/open-apis/bot/v2/hook/abc", "secret": SECRET}),
        await channel(
            api,
            "mail",
            "email",
            {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "plain",
                "sender": "streampilot@example.org",
                "recipients": ["ops@example.org", "dev@example.org"],
                "password": SECRET,
                "username": None,
            },
        ),
    ]
    listing = (await api.get("/api/v1/alert-channels")).text
    assert SECRET not in listing and "tok123" not in listing and "key123" not in listing and "XYZ" not in listing

    for c in made:
        resp = await api.post(f"/api/v1/alert-channels/{c['id']}/test")
        assert resp.status_code == 200 and resp.json()["ok"] is True, (c["kind"], resp.text)

    hook, slack, ding, wecom, lark = receiver.requests
    # Generic webhook: JSON with an HMAC-SHA256 signature over "<timestamp>.<body>".
    ts = hook.headers["x-streampilot-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-streampilot-signature"] == f"sha256={expected}"
    assert hook.json()["title"].startswith("streampilot test message")
    # Slack incoming webhook: {"text": ...}.
    assert slack.path == "/services/T0/B0/XYZ" and "test message" in slack.json()["text"]
    # DingTalk: timestamp (ms) and sign in the query; sign = urlencode(base64(HMAC(secret, ts\nsecret))).
    assert ding.query["access_token"] == "tok123"
    ding_ts = ding.query["timestamp"]
    assert abs(int(ding_ts) - time.time() * 1000) < 60_000
    digest = hmac.new(SECRET.encode(), f"{ding_ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert ding.query["sign"] == base64.b64encode(digest).decode()  # the query was URL-decoded once
    assert ding.json()["msgtype"] == "markdown" and "test message" in ding.json()["markdown"]["text"]
    # WeCom: markdown content, key in the URL.
    assert wecom.query["key"] == "key123" and wecom.json()["msgtype"] == "markdown"
    # Lark: timestamp (s) and sign = base64(HMAC(key="ts\nsecret", msg="")) in the body.
    body = lark.json()
    lark_digest = hmac.new(f"{body['timestamp']}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
    assert body["sign"] == base64.b64encode(lark_digest).decode()
    assert body["msg_type"] == "text" and "test message" in body["content"]["text"]
    # Email through a real SMTP server.
    sender, recipients, mail = smtp.mails[0]
    assert sender == "streampilot@example.org" and sorted(recipients) == ["dev@example.org", "ops@example.org"]
    assert mail["Subject"].startswith("[streampilot] streampilot test message")
    assert "alerts reach this channel" in mail.get_payload()


async def test_bad_channel_config_is_a_field_error(api: httpx.AsyncClient) -> None:
    async def problem(kind: str, config: dict[str, Any]) -> dict[str, str]:
        resp = await api.post("/api/v1/alert-channels", json={"name": "x", "kind": kind, "config": config})
        assert resp.status_code == 422, resp.text
        return {p["field"]: p["message"] for p in resp.json()["detail"]}

    assert "config.url" in await problem("webhook", {"url": "not a url"})
    assert "config.secret" in await problem("dingtalk", {"webhook_url": "http://127.0.0.1/robot"})
    assert "config.secret" in await problem("lark", {"webhook_url": "http://127.0.0.1/hook"})
    bad_mail = await problem("email", {"host": "h", "sender": "a@b.c", "recipients": ["not-an-address"]})
    assert "not an email address" in bad_mail["config.recipients"]
    assert "kind" in await problem("pager", {})
    assert (await api.get("/api/v1/alert-channels")).json() == []


async def _app_with_channels(platform: Platform, channel_ids: list[int]) -> App:
    async with platform.ctx.sessions() as s, s.begin():
        cluster = Cluster(team_id=1, name="c", kind="standalone", rest_url="http://127.0.0.1:9", options={})
        s.add(cluster)
        await s.flush()
        app = App(
            team_id=1, name="alerting", cluster_id=cluster.id, state="RUNNING", current_version=1, running_version=1
        )
        s.add(app)
        await s.flush()
        spec = AppSpec(kind=AppKind.SQL, sql="INSERT INTO b SELECT 1", alert_channel_ids=channel_ids)
        s.add(AppVersion(app_id=app.id, version=1, spec=spec.model_dump(mode="json")))
        return app


async def _raise(platform: Platform, app: App, reason: AlertReason = AlertReason.JOB_FAILED) -> None:
    async with platform.ctx.sessions() as s, s.begin():
        row = await s.get(App, app.id)
        assert row is not None
        raise_alert(s, row, reason, "job failed: boom")


def fast_alerts(platform: Platform, **kw: Any) -> None:
    platform.ctx.settings = platform.ctx.settings.with_(alerts=AlertSettings(dispatch_tick_s=0.1, backoff_s=0.1, **kw))


async def test_500_is_retried_with_history_and_400_is_not(
    api: httpx.AsyncClient, platform: Platform, receiver: HttpReceiver
) -> None:
    fast_alerts(platform, max_attempts=3)
    flaky = await channel(api, "flaky", "webhook", {"url": f"{receiver.url}/flaky"})
    app = await _app_with_channels(platform, [flaky["id"]])
    receiver.script = [(500, "oops", {}), (500, "oops", {}), (200, "fine", {})]
    await _raise(platform, app)
    for _ in range(5):
        await platform.dispatcher.run_once()
        await _sleep(0.25)
    alert = (await api.get("/api/v1/alerts")).json()[0]
    delivery = alert["deliveries"][0]
    assert delivery["status"] == "sent" and delivery["attempts"] == 3
    assert [h["status_code"] for h in delivery["history"]] == [500, 500, 200]
    assert [h["ok"] for h in delivery["history"]] == [False, False, True]

    receiver.script = [(400, "bad request", {})]
    await _raise(platform, app, AlertReason.JOB_LOST)
    for _ in range(3):
        await platform.dispatcher.run_once()
        await _sleep(0.25)
    lost = (await api.get("/api/v1/alerts")).json()[0]
    assert lost["reason"] == "job_lost"
    assert lost["deliveries"][0]["status"] == "failed" and lost["deliveries"][0]["attempts"] == 1


async def test_429_waits_for_retry_after(api: httpx.AsyncClient, platform: Platform, receiver: HttpReceiver) -> None:
    fast_alerts(platform)
    c = await channel(api, "limited", "webhook", {"url": f"{receiver.url}/x"})
    app = await _app_with_channels(platform, [c["id"]])
    receiver.script = [(429, "slow down", {"Retry-After": "30"})]
    await _raise(platform, app)
    await platform.dispatcher.run_once()
    delivery = (await api.get("/api/v1/alerts")).json()[0]["deliveries"][0]
    assert delivery["status"] == "pending" and delivery["history"][0]["status_code"] == 429
    assert delivery["next_attempt_at"] is not None  # 30 s from now, not the 0.1 s backoff
    await platform.dispatcher.run_once()
    assert len(receiver.requests) == 1


async def test_throttle_sends_one_and_counts_the_suppressed_in_the_next(
    api: httpx.AsyncClient, platform: Platform, receiver: HttpReceiver
) -> None:
    fast_alerts(platform, throttle_s=1.0)
    c = await channel(api, "team", "webhook", {"url": f"{receiver.url}/team"})
    app = await _app_with_channels(platform, [c["id"]])
    for _ in range(3):
        await _raise(platform, app)
    await platform.dispatcher.run_once()
    assert len(receiver.requests) == 1 and receiver.requests[0].json()["suppressed"] == 0
    await _sleep(1.1)
    await _raise(platform, app)
    await platform.dispatcher.run_once()
    assert len(receiver.requests) == 2
    assert receiver.requests[1].json()["suppressed"] == 2
    assert "2 similar alerts suppressed" in receiver.requests[1].json()["text"]


async def _sleep(s: float) -> None:
    await asyncio.sleep(s)
