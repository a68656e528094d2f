"""Bounded jobs on the real cluster: a task that finished its input is done, not down.

A streaming job whose two sources end at different times runs for seconds with one task FINISHED
and the others RUNNING; a batch job runs stage after stage with later tasks waiting. Both are shown
RUNNING and then FINISHED, never RESTARTING.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import act, events

pytestmark = [pytest.mark.flink]
# What Flink does with the job is the point here, not the database: one database is enough.
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

TWO_SOURCES = """CREATE TABLE short_src (v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100', 'rows-per-second' = '100');
CREATE TABLE long_src (v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '600', 'rows-per-second' = '100');
CREATE TABLE snk (v BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT v FROM short_src UNION ALL SELECT v FROM long_src;
"""

GROUPED = """CREATE TABLE src (k INT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '400',
  'rows-per-second' = '100', 'fields.k.min' = '1', 'fields.k.max' = '5');
CREATE TABLE snk (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k;
"""


async def watch_until_finished(api: httpx.AsyncClient, app_id: int, timeout: float = 60) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]
        seen.append(status)
        if status["state"] == "FINISHED":
            return seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"never FINISHED: {seen[-1]}")


@SINGLE_DB
async def test_a_streaming_job_whose_sources_end_at_different_times(api: httpx.AsyncClient, flink: int) -> None:
    body = {"name": "two-sources", "kind": "sql", "cluster_id": flink, "sql": TWO_SOURCES}
    app_id = (await api.post("/api/v1/apps", json=body)).json()["id"]
    await act(api, app_id, "start")
    seen = await watch_until_finished(api, app_id)
    # For seconds one source had finished while the rest ran: that was RUNNING, nothing else.
    partly = [s for s in seen if s["job_state"] == "RUNNING" and s["tasks_running"] < s["tasks_total"]]
    assert partly, "the window with a finished source was never observed"
    assert {s["state"] for s in partly} == {"RUNNING"}
    states = [e["to_state"] for e in await events(api, app_id)]
    assert "RESTARTING" not in states and states[-1] == "FINISHED", states


@SINGLE_DB
async def test_batch_mode_is_an_app_setting_and_runs_stage_after_stage(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    body = {"name": "batch", "kind": "sql", "cluster_id": flink, "sql": GROUPED, "runtime_mode": "batch"}
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    assert resp.json()["spec"]["runtime_mode"] == "batch"
    started = await act(api, app_id, "start")
    assert started["result"]["state"] in ("RUNNING", "FINISHED"), started
    await watch_until_finished(api, app_id)
    job = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{started['result']['job_id']}").json()
    assert job["job-type"] == "BATCH", job.get("job-type")  # Flink's own word: it ran in batch mode
    launch = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()
    assert launch["submitted"]["execution.runtime-mode"] == "BATCH"
    states = [e["to_state"] for e in await events(api, app_id)]
    assert "RESTARTING" not in states and states[-1] == "FINISHED", states

    # The mode is the app's: a property saying otherwise is a field error, not a silent override.
    clash = await api.patch(f"/api/v1/apps/{app_id}", json={"properties": {"execution.runtime-mode": "streaming"}})
    assert clash.status_code == 422
    assert clash.json()["detail"][0]["field"] == "properties.execution.runtime-mode"
