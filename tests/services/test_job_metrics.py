"""Stored job metrics (fake target): samples older than the raw period become minute averages, past
keeping they go; the API answers series over a window, coarser for long windows."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from streampilot.domain.apps import AppKind, AppSpec, MetricAlerts
from streampilot.domain.job_metrics import average, downsample
from streampilot.domain.metric_rules import readings
from streampilot.services.job_metrics import app_metrics
from streampilot.services.platform import Platform
from streampilot.store.orm import CheckpointRecord, JobMetricSample, utcnow
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished


def _sample(rate: float, busy: float, restarts: int) -> dict[str, object]:
    return {
        "job": {"records_in_per_s": rate, "busy_ratio": busy, "restarts": restarts},
        "vertices": {"v1": {"name": "Source: orders", "records_out_per_s": rate}},
    }


async def test_samples_are_averaged_into_minutes_and_pruned(platform: Platform, app_id: int) -> None:
    now = utcnow()
    old = (now - timedelta(hours=8)).replace(second=0, microsecond=0)
    rows = [  # two minutes of samples 8 hours ago (10 s apart), three recent ones, one past keeping
        *({"at": old + timedelta(seconds=10 * i), "values": _sample(100 + i, 0.5, 0)} for i in range(6)),
        *({"at": old + timedelta(seconds=60 + 10 * i), "values": _sample(300, 0.9, 1)} for i in range(6)),
        *({"at": now - timedelta(seconds=30 - 10 * i), "values": _sample(200, 0.1, 2)} for i in range(3)),
        {"at": now - timedelta(days=8), "values": _sample(1, 0, 0)},
    ]
    async with platform.ctx.sessions() as s, s.begin():
        await s.execute(
            sa.insert(JobMetricSample), [{"app_id": app_id, "job_id": "j" * 32, "step_s": 0, **r} for r in rows]
        )
        s.add(
            CheckpointRecord(
                app_id=app_id, job_id="j" * 32, checkpoint_id=7, status="FAILED", triggered_at=now, failure="boom"
            )
        )
    await platform.sampler.maintain()
    async with platform.ctx.sessions() as s:
        stored = (await s.execute(sa.select(JobMetricSample).order_by(JobMetricSample.at))).scalars().all()
    assert [(r.step_s, r.at) for r in stored] == [
        (60, old),
        (60, old + timedelta(minutes=1)),
        *((0, r["at"]) for r in rows[12:15]),
    ]
    assert stored[0].values["job"] == {"records_in_per_s": 102.5, "busy_ratio": 0.5, "restarts": 0}
    assert stored[1].values["vertices"]["v1"] == {"name": "Source: orders", "records_out_per_s": 300}

    recent = await app_metrics(platform.ctx, app_id, 3600)  # as taken
    assert [v for _, v in recent["series"]["records_in_per_s"]] == [200, 200, 200]
    assert recent["vertices"][0]["name"] == "Source: orders"
    assert recent["checkpoints"][0]["status"] == "FAILED" and recent["checkpoints"][0]["failure"] == "boom"
    assert recent["series"]["checkpoint_duration_ms"] == []  # a failed checkpoint has no duration point

    week = await app_metrics(platform.ctx, app_id, 7 * 86400)  # minute averages and coarser buckets
    assert week["step_s"] >= 60 * 14
    assert len(week["series"]["restarts"]) == 2
    assert week["series"]["restarts"][-1][1] == 2


def test_averaging_keeps_the_largest_restart_count_and_each_vertex() -> None:
    merged = average([_sample(100, 0.2, 1), _sample(300, 0.4, 3)])
    assert merged["job"] == {"records_in_per_s": 200, "busy_ratio": 0.3, "restarts": 3}
    assert downsample([(0, _sample(1, 0, 0)), (59_999, _sample(3, 0, 0)), (60_000, _sample(5, 0, 0))], 60_000) == [
        (0, average([_sample(1, 0, 0), _sample(3, 0, 0)])),
        (60_000, average([_sample(5, 0, 0)])),
    ]


async def test_the_window_is_checked(api: httpx.AsyncClient, app_id: int) -> None:
    assert (await api.get(f"/api/v1/apps/{app_id}/metrics", params={"window_s": 30})).status_code == 422
    assert (await api.get(f"/api/v1/apps/{app_id}/metrics", params={"window_s": 8 * 86400})).status_code == 422
    resp = await api.get(f"/api/v1/apps/{app_id}/metrics")
    assert resp.status_code == 200
    assert resp.json()["series"]["records_in_per_s"] == [] and resp.json()["window_s"] == 3600


async def test_a_metric_alert_fires_once_per_breach(platform: Platform, cluster_id: int) -> None:
    spec = AppSpec(
        kind=AppKind.SQL,
        sql=DATAGEN_SQL,
        metric_alerts=MetricAlerts(backpressured_above=0.5, backpressured_for_s=20, checkpoint_duration_above_s=1),
    )
    app = await platform.apps.create("pressured", cluster_id, spec)
    assert (await finished(platform, (await platform.lifecycle.start(app.id)).id)).state == "succeeded"
    job_id = (await platform.apps.get(app.id)).job_id
    t0 = utcnow()

    async def sample(after_s: float, pressure: float | None) -> None:
        job = {} if pressure is None else {"backpressured_ratio": pressure}
        values = {"job": job, "vertices": {}}
        await platform.sampler._alerts(
            [{"app_id": app.id, "job_id": job_id, "at": t0 + timedelta(seconds=after_s), "values": values}]
        )

    async def told() -> list[str]:
        return [a.message for a, _ in await platform.channels.alerts(app.id, 50) if a.reason == "backpressured"]

    await sample(0, 0.9)
    await sample(10, 0.8)
    await sample(15, None)  # not measured this round: neither ends nor starts a breach
    assert await told() == []  # not yet held for 20 s
    await sample(20, 0.95)
    await sample(30, 0.9)
    await sample(40, 0.9)
    assert len(await told()) == 1  # once, while the breach lasts
    await sample(50, 0.1)  # over
    events = [e.detail for e in await platform.apps.events(app.id)]
    assert any(d.startswith("back to normal: backpressured 10 %") for d in events), events
    for at in (60, 70, 80):
        await sample(at, 0.7)
    assert len(await told()) == 2  # a new breach, told again
    assert "backpressured 70 % of the time (alert above 50 % for 20 s)" in (await told())[0]

    # A completed checkpoint slower than the bound is told once, until a quicker one completes.
    async with platform.ctx.sessions() as s, s.begin():
        s.add(
            CheckpointRecord(
                app_id=app.id, job_id=job_id, checkpoint_id=1, status="COMPLETED", triggered_at=t0, duration_ms=2500
            )
        )
    await sample(90, 0.0)
    await sample(100, 0.0)
    slow = [a for a, _ in await platform.channels.alerts(app.id, 50) if a.reason == "slow_checkpoint"]
    assert len(slow) == 1 and "took 2.5 s (alert above 1 s)" in slow[0].message


def test_a_figure_flink_did_not_give_is_no_reading() -> None:
    rules = MetricAlerts(backpressured_above=0.5, no_throughput_for_s=60, watermark_lag_above_s=5)
    found = {r.reason.value: r.breached for r in readings(rules, {"records_in_per_s": 0.0}, None)}
    assert found == {"backpressured": None, "no_throughput": True, "watermark_lag": None}
