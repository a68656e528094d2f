"""Stored job metrics (fake target): samples older than the raw period become minute averages, past
keeping they go; the API answers series over a window, coarser for long windows."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from streampilot.domain.job_metrics import average, downsample
from streampilot.services.job_metrics import app_metrics
from streampilot.services.platform import Platform
from streampilot.store.orm import CheckpointRecord, JobMetricSample, utcnow


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
