"""The fleet at a glance (fake target): counts by state, the apps that need attention and why,
clusters that do not answer, the newest alerts; the landing page shows the same."""

from __future__ import annotations

import httpx

from streampilot.services.platform import Platform
from streampilot.store.orm import Alert, App, AppVersion, MetricBreach, utcnow

SPEC = {"kind": "sql", "sql": "INSERT INTO b SELECT 1"}


async def test_the_fleet_at_a_glance(platform: Platform, api: httpx.AsyncClient, cluster_id: int) -> None:
    now = utcnow()
    rows = [
        ("calm", "RUNNING", {}),
        ("broken", "FAILED", {}),
        ("drifted", "RUNNING", {"config_verified": False}),
        ("silent", "RUNNING", {"unconfirmed_since": now}),
        ("pressured", "RUNNING", {}),
        ("idle", "CREATED", {}),
    ]
    async with platform.ctx.sessions() as s, s.begin():
        for i, (name, state, extra) in enumerate(rows):
            s.add(App(id=100 + i, team_id=1, name=name, cluster_id=cluster_id, state=state, current_version=1, **extra))
            s.add(AppVersion(app_id=100 + i, version=1, spec=SPEC))
        await s.flush()
        s.add(MetricBreach(app_id=104, reason="backpressured", since=now, alerted_at=now))
        s.add(Alert(app_id=101, at=now, reason="job_failed", title="broken: job failed", message="x", facts={}))
    resp = await api.get("/api/v1/fleet")
    assert resp.status_code == 200, resp.text
    fleet = resp.json()
    assert fleet["by_state"]["RUNNING"] == 4 and fleet["by_state"]["FAILED"] == 1 and fleet["apps"] >= 6
    reasons = {u["name"]: u["reasons"] for u in fleet["unhealthy"]}
    assert reasons == {
        "broken": ["failed"],
        "drifted": ["settings differ from what was asked"],
        "pressured": ["backpressured"],
        "silent": ["unconfirmed: its cluster does not answer"],
    }
    assert fleet["unhealthy_count"] == 4
    assert [c["apps_unconfirmed"] for c in fleet["clusters_unknown"]] == [1]
    assert fleet["recent_alerts"][0]["title"] == "broken: job failed"

    token = platform.settings.token_file.read_text().strip()
    login = await api.post("/login", data={"token": token})
    api.cookies.set("streampilot_token", login.cookies["streampilot_token"])
    page = await api.get("/")
    assert page.status_code == 200
    assert 'data-app="pressured"' in page.text and "backpressured" in page.text
    assert 'href="/apps?state=FAILED"' in page.text and "broken: job failed" in page.text
    assert (await api.get("/favicon.ico")).headers["content-type"] == "image/svg+xml"
