"""Job metrics from the real local cluster: a datagen source at 200 rows/s shows about 200 records/s
into its downstream vertex, a job slowed by a sleeping function shows its source backpressured, and the
series come through the API with checkpoints."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import act, wait_state
from tests.receivers import HttpReceiver

pytestmark = [pytest.mark.flink, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
UNCHAINED = {"pipeline.operator-chaining.enabled": "false"}  # one vertex per operator: rates between them

STEADY_SQL = """
CREATE TABLE orders (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '200');
CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT id FROM orders;
"""
SLOW_SQL = """
CREATE FUNCTION snooze AS 'io.streampilot.testudf.Snooze';
CREATE TABLE fast (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '500');
CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT snooze(id, 50) FROM fast;
"""


async def _create(api: httpx.AsyncClient, body: dict[str, Any]) -> int:
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _last(points: list[list[float]]) -> float | None:
    return points[-1][1] if points else None


async def test_throughput_and_backpressure_from_flinks_metrics(
    api: httpx.AsyncClient, flink: int, udf_jar: Path, receiver: HttpReceiver
) -> None:
    channel = await api.post(
        "/api/v1/alert-channels", json={"name": "hook", "kind": "webhook", "config": {"url": f"{receiver.url}/hook"}}
    )
    assert channel.status_code == 201, channel.text
    rules = {"backpressured_above": 0.3, "backpressured_for_s": 4}
    upload = await api.post("/api/v1/jars", files={"file": ("snooze-udf.jar", udf_jar.read_bytes())})
    assert upload.status_code == 201, upload.text
    steady = await _create(
        api,
        {"name": "steady", "kind": "sql", "cluster_id": flink, "sql": STEADY_SQL, "properties": UNCHAINED,
         "checkpointing": {"interval_s": 2}, "metric_alerts": rules, "alert_channel_ids": [channel.json()["id"]]},
    )  # fmt: skip
    slow = await _create(
        api,
        {"name": "slow", "kind": "sql", "cluster_id": flink, "sql": SLOW_SQL, "properties": UNCHAINED,
         "dependency_jar_ids": [upload.json()["id"]], "metric_alerts": rules,
         "alert_channel_ids": [channel.json()["id"]]},
    )  # fmt: skip
    for app_id in (steady, slow):
        await act(api, app_id, "start")
        await wait_state(api, app_id, "RUNNING")

    # Flink's rates are one-minute averages: wait until the steady job's has filled its minute.
    deadline = time.monotonic() + 150
    while True:
        resp = await api.get(f"/api/v1/apps/{steady}/metrics", params={"window_s": 600})
        assert resp.status_code == 200, resp.text
        got = resp.json()
        sink = next((v for v in got["vertices"] if "sink" in v["name"].lower()), None)
        rate = _last(sink["series"]["records_in_per_s"]) if sink else None
        if rate is not None and abs(rate - 200) <= 0.2 * 200:
            break
        assert time.monotonic() < deadline, f"records into the sink vertex: {rate} (vertices {got['vertices']})"
        await asyncio.sleep(2)
    assert got["units"]["records_in_per_s"] == "records/s"
    assert len(got["vertices"]) == 2  # source and sink, unchained
    assert sink is not None and sink["series"]["busy_ratio"]  # a source's busy time is NaN in Flink: left out
    job_in = _last(got["series"]["records_in_per_s"])
    assert job_in is not None and abs(job_in - 200) <= 0.2 * 200, got["series"]["records_in_per_s"][-3:]
    assert _last(got["series"]["restarts"]) == 0
    assert got["series"]["watermark_lag_ms"] == []  # no watermarks in this job
    steady_pressure = max(_last(v["series"]["backpressured_ratio"]) or 0 for v in got["vertices"])
    assert steady_pressure < 0.2, got["vertices"]

    # Checkpoints are listed with their duration (and size where Flink tells one).
    deadline = time.monotonic() + 30
    while not got["checkpoints"]:
        assert time.monotonic() < deadline, "no checkpoint recorded"
        await asyncio.sleep(1)
        got = (await api.get(f"/api/v1/apps/{steady}/metrics")).json()
    assert got["checkpoints"][0]["status"] == "COMPLETED"
    assert got["series"]["checkpoint_duration_ms"], got["checkpoints"]

    # The slow job's source waits on the sleeping function: backpressured, the function's vertex busy.
    resp = await api.get(f"/api/v1/apps/{slow}/metrics", params={"window_s": 600})
    slow_got = resp.json()
    source = next(v for v in slow_got["vertices"] if v["name"].startswith("Source"))
    assert (_last(source["series"]["backpressured_ratio"]) or 0) > 0.3, source
    assert (_last(slow_got["series"]["busy_ratio"]) or 0) > 0.5, slow_got["series"]["busy_ratio"][-3:]
    assert (_last(slow_got["series"]["backpressured_ratio"]) or 0) > 0.3

    # The backpressure rule fired once for the slow job (not again while the breach lasts), never for
    # the steady one; its alert reached the channel once.
    async def alerts(app_id: int) -> list[dict[str, Any]]:
        resp = await api.get(f"/api/v1/apps/{app_id}/alerts")
        assert resp.status_code == 200, resp.text
        return [a for a in resp.json() if a["reason"] == "backpressured"]

    deadline = time.monotonic() + 30
    while not await alerts(slow):
        assert time.monotonic() < deadline, "no backpressure alert"
        await asyncio.sleep(1)
    await asyncio.sleep(8)  # four more sampling rounds with the breach still on
    fired = await alerts(slow)
    assert len(fired) == 1, fired
    assert "backpressured" in fired[0]["message"] and "above 30 %" in fired[0]["message"]
    assert await alerts(steady) == []
    hooks = [r for r in receiver.requests if b"backpressured" in r.body]
    assert len(hooks) == 1, receiver.requests
    events = (await api.get(f"/api/v1/apps/{slow}/events")).json()
    assert any("backpressured" in e["detail"] for e in events)

    # Field errors: the window is bounded; another app's metrics are a 404 like a missing app.
    assert (await api.get(f"/api/v1/apps/{steady}/metrics", params={"window_s": 10})).status_code == 422
    assert (await api.get("/api/v1/apps/999999/metrics")).status_code == 404
