"""Checkpoint and restart policies that really take effect, against the real Flink cluster.

The job (tests/e2e/jobs/PolicyJob.java) is made to misbehave with marker files: slow snapshots
(longer than the checkpoint timeout, so checkpoints fail while Flink keeps the job running) or a crash.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import events, wait_app, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def policy_app(
    api: httpx.AsyncClient, cluster_id: int, jar: Path, markers: Path, name: str, **settings: Any
) -> int:
    upload = await api.post("/api/v1/jars", files={"file": ("test-jobs.jar", jar.read_bytes())})
    assert upload.status_code == 201, upload.text
    body = {
        "name": name,
        "kind": "jar",
        "cluster_id": cluster_id,
        "jar_id": upload.json()["id"],
        "entry_class": "example.PolicyJob",
        "args": [str(markers)],
        **settings,
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def alerts(api: httpx.AsyncClient, app_id: int, reason: str) -> list[dict[str, Any]]:
    return [a for a in (await api.get(f"/api/v1/apps/{app_id}/alerts")).json() if a["reason"] == reason]


async def running_with_checkpoints(api: httpx.AsyncClient, app_id: int, n: int = 2) -> dict[str, Any]:
    await wait_state(api, app_id, "RUNNING")
    return await wait_app(
        api,
        app_id,
        lambda a: (a["status"]["last_checkpoint"] or {}).get("completed", 0) >= n,
        what=f"{n} completed checkpoints",
    )


FAILING_CHECKPOINTS = {"interval_s": 0.5, "timeout_s": 1, "tolerable_failed_checkpoints": 1000}


@SINGLE_DB
async def test_two_failed_checkpoints_restart_once_from_the_last_good_one(
    api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path, flink_cluster: LocalCluster
) -> None:
    app_id = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "cp-restart",
        checkpointing=FAILING_CHECKPOINTS,
        checkpoint_failure_policy={"failures": 2, "window_s": 300, "action": "restart"},
    )
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    app = await running_with_checkpoints(api, app_id)
    old_job = app["status"]["job_id"]
    launch = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()["submitted"]
    assert launch["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"

    (tmp_path / f"slow-{old_job}").touch()
    app = await wait_app(
        api,
        app_id,
        lambda a: a["status"]["job_id"] != old_job and a["status"]["state"] == "RUNNING",
        timeout=90,
        what="the policy's restart",
    )
    new_job = app["status"]["job_id"]
    old = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{old_job}/checkpoints").json()
    last_good = old["latest"]["completed"]["external_path"]
    assert old["counts"]["failed"] >= 2
    await wait_app(
        api,
        app_id,
        lambda a: (a["status"]["last_checkpoint"] or {}).get("restored_from") is not None,
        what="restore reported",
    )
    restored = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{new_job}/checkpoints").json()["latest"]["restored"]
    assert restored["external_path"] == last_good

    await asyncio.sleep(4)  # more passes of the policy loop: the same failures never fire again
    timeline = await events(api, app_id)
    restarts = [e for e in timeline if e["to_state"] == "STARTING" and e["cause"] == "policy"]
    assert len(restarts) == 1, timeline
    assert any("2 failed checkpoints within 300 s" in e["detail"] and e["cause"] == "policy" for e in timeline)
    assert any(e["detail"].startswith("confirmed: the new job restored checkpoint") for e in timeline)
    breach = await alerts(api, app_id, "checkpoint_failures")
    assert len(breach) == 1 and breach[0]["facts"]["failures"] == 2 and breach[0]["facts"]["window_s"] == 300
    assert len(await alerts(api, app_id, "restarted_by_policy")) == 1
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["job_id"] == new_job
    await api.post(f"/api/v1/apps/{app_id}/cancel")


@SINGLE_DB
async def test_alert_action_records_an_alert_and_does_not_restart(
    api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path
) -> None:
    app_id = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "cp-alert",
        checkpointing=FAILING_CHECKPOINTS,
        checkpoint_failure_policy={"failures": 2, "window_s": 300, "action": "alert"},
    )
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    job = (await running_with_checkpoints(api, app_id, 1))["status"]["job_id"]
    (tmp_path / f"slow-{job}").touch()
    for _ in range(300):
        found = await alerts(api, app_id, "checkpoint_failures")
        if found:
            break
        await asyncio.sleep(0.2)
    assert found, "no alert for the failing checkpoints"
    assert found[0]["facts"]["failures"] == 2 and found[0]["facts"]["window_s"] == 300
    assert "2 failed checkpoints within 300 s" in found[0]["message"]
    await asyncio.sleep(3)
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["job_id"] == job and app["status"]["state"] == "RUNNING"
    # Failures go on, so later breaches may alert again, but never on the same failed checkpoints.
    seen: set[int] = set()
    for alert in await alerts(api, app_id, "checkpoint_failures"):
        ids = set(alert["facts"]["checkpoint_ids"])
        assert len(ids) == 2 and not ids & seen, "an alert fired again on failures already acted upon"
        seen |= ids
    await api.post(f"/api/v1/apps/{app_id}/cancel")


@SINGLE_DB
async def test_checkpoint_stall_alerts_once(api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path) -> None:
    app_id = await policy_app(
        api, flink, jobs_jar, tmp_path, "stalling", checkpointing=FAILING_CHECKPOINTS, checkpoint_stall={"after_s": 3}
    )
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    job = (await running_with_checkpoints(api, app_id, 1))["status"]["job_id"]
    assert not await alerts(api, app_id, "checkpoint_stalled")
    (tmp_path / f"slow-{job}").touch()  # from now on no checkpoint completes
    for _ in range(150):
        stalled = await alerts(api, app_id, "checkpoint_stalled")
        if stalled:
            break
        await asyncio.sleep(0.2)
    assert stalled and stalled[0]["facts"]["after_s"] == 3
    await asyncio.sleep(3)
    assert len(await alerts(api, app_id, "checkpoint_stalled")) == 1  # once per stall, not every pass
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["job_id"] == job  # alert only: no restart was asked for
    await api.post(f"/api/v1/apps/{app_id}/cancel")


@SINGLE_DB
async def test_auto_restart_within_budget_then_left_failed(
    api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path
) -> None:
    app_id = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "crashy",
        checkpointing={"interval_s": 0.5},
        restart_strategy={"type": "none"},
        auto_restart={"max_restarts": 2, "window_s": 600},
    )
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await running_with_checkpoints(api, app_id)
    await wait_app(api, app_id, lambda a: len(a["status"]["last_checkpoint"] or {}) > 0, what="checkpoint seen")
    retained = (await api.get(f"/api/v1/apps/{app_id}/checkpoints")).json()["retained"]
    assert retained, "no retained checkpoint recorded"
    (tmp_path / "crash").touch()

    for _ in range(600):
        timeline = await events(api, app_id)
        if any("budget spent" in e["detail"] for e in timeline):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"budget never spent: {[(e['to_state'], e['detail'][:80]) for e in timeline]}")
    policy_starts = [e for e in timeline if e["to_state"] == "STARTING" and e["cause"] == "policy"]
    assert len(policy_starts) == 2
    assert "file:" in policy_starts[0]["detail"]  # restored from the latest checkpoint
    await asyncio.sleep(3)
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["state"] == "FAILED"
    assert len([e for e in await events(api, app_id) if e["to_state"] == "STARTING" and e["cause"] == "policy"]) == 2
    assert len(await alerts(api, app_id, "restart_budget_spent")) == 1
    assert len(await alerts(api, app_id, "job_failed")) == 3


@SINGLE_DB
async def test_config_mismatch_is_reported(api: httpx.AsyncClient, flink: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import streampilot.services.submissions as submissions

    original = submissions.build_launch_config

    def forced(*args: Any, **kwargs: Any) -> dict[str, str]:
        config = original(*args, **kwargs)
        config["restart-strategy.type"] = "none"  # forced past validation, as a broken deployment would
        return config

    monkeypatch.setattr(submissions, "build_launch_config", forced)
    from tests.helpers import DATAGEN_SQL

    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "mismatched",
            "kind": "sql",
            "cluster_id": flink,
            "sql": DATAGEN_SQL,
            "restart_strategy": {"type": "failure-rate", "max_failures": 3, "interval_s": 300, "delay_s": 2},
        },
    )
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    app = await wait_app(api, app_id, lambda a: a["status"]["config_verified"] is not None, what="readback")
    assert app["status"]["config_verified"] is False
    assert any("restart_strategy.type" in m for m in app["status"]["config_mismatches"])
    assert any("other settings than asked" in e["detail"] for e in await events(api, app_id))
    assert len(await alerts(api, app_id, "config_mismatch")) == 1
    await api.post(f"/api/v1/apps/{app_id}/cancel")
