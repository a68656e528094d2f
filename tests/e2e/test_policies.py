"""Checkpoint and restart policies that really take effect, against the real Flink cluster.

The job (tests/e2e/jobs/PolicyJob.java) is made to misbehave with marker files: slow snapshots
(longer than the checkpoint timeout, so checkpoints fail while Flink keeps the job running) or a crash.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import act, events, wait_app, wait_state

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
        auto_restart={"max_restarts": 5, "window_s": 600, "initial_backoff_s": 0.2, "multiplier": 1.5},
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
    assert len(policy_starts) == 5
    # Each restarted job failed before it completed a checkpoint: all five restore the same one, the
    # last the first job completed (a failed attempt never makes the next one start without state).
    restored = {re.search(r" from (\S+) \(job ", e["detail"]).group(1) for e in policy_starts}  # type: ignore[union-attr]
    assert len(restored) == 1 and next(iter(restored)).startswith("file:"), restored
    assert any("auto-restart in " in e["detail"] and "(backoff)" in e["detail"] for e in timeline)
    await asyncio.sleep(3)
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["state"] == "FAILED"
    assert len([e for e in await events(api, app_id) if e["to_state"] == "STARTING" and e["cause"] == "policy"]) == 5
    assert len(await alerts(api, app_id, "restart_budget_spent")) == 1
    assert len(await alerts(api, app_id, "job_failed")) == 6


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


def flink_checkpoints(flink_cluster: LocalCluster, job_id: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{job_id}/checkpoints").json()
    return result


async def break_latest_checkpoint_once_failing(flink_cluster: LocalCluster, job_id: str) -> str:
    """Once a checkpoint has failed (no newer one completes after that), make the latest good one
    unreadable: its storage lost its _metadata. Returns that checkpoint's path."""
    for _ in range(300):
        stats = flink_checkpoints(flink_cluster, job_id)
        if stats["counts"]["failed"] >= 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no checkpoint failed")
    latest = stats["latest"]["completed"]["external_path"]
    Path(urlparse(latest).path, "_metadata").unlink()
    return str(latest)


NEEDS_FOUR_FAILURES = {"failures": 4, "window_s": 300, "action": "restart"}


@SINGLE_DB
async def test_an_unreadable_checkpoint_makes_the_restart_use_the_next_older_readable_state(
    api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path, flink_cluster: LocalCluster
) -> None:
    app_id = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "cp-fallback",
        checkpointing=FAILING_CHECKPOINTS,
        checkpoint_failure_policy=NEEDS_FOUR_FAILURES,
    )
    await act(api, app_id, "start")
    old_job = (await running_with_checkpoints(api, app_id))["status"]["job_id"]
    savepoint = (await act(api, app_id, "savepoint"))["result"]["path"]
    since = flink_checkpoints(flink_cluster, old_job)["counts"]["completed"]
    await wait_app(
        api, app_id, lambda a: (a["status"]["last_checkpoint"] or {}).get("completed", 0) > since + 1, what="newer"
    )
    (tmp_path / f"slow-{old_job}").touch()
    broken = await break_latest_checkpoint_once_failing(flink_cluster, old_job)
    app = await wait_app(
        api,
        app_id,
        lambda a: a["status"]["job_id"] != old_job and a["status"]["state"] == "RUNNING",
        timeout=90,
        what="the policy's restart",
    )
    await wait_app(
        api, app_id, lambda a: (a["status"]["last_checkpoint"] or {}).get("restored_from"), what="restore reported"
    )
    restored = flink_checkpoints(flink_cluster, app["status"]["job_id"])["latest"]["restored"]["external_path"]
    assert restored == savepoint  # the older readable state, not nothing
    timeline = [e["detail"] for e in await events(api, app_id)]
    assert any(f"not restoring {broken}: no _metadata" in d and d.endswith(savepoint) for d in timeline), timeline
    await act(api, app_id, "cancel")


@SINGLE_DB
async def test_without_readable_state_a_policy_never_starts_fresh_unless_the_app_says_so(
    api: httpx.AsyncClient, flink: int, jobs_jar: Path, tmp_path: Path, flink_cluster: LocalCluster
) -> None:
    keeps = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "cp-keep",
        checkpointing=FAILING_CHECKPOINTS,
        checkpoint_failure_policy=NEEDS_FOUR_FAILURES,
    )
    fresh = await policy_app(
        api,
        flink,
        jobs_jar,
        tmp_path,
        "cp-fresh",
        checkpointing=FAILING_CHECKPOINTS,
        checkpoint_failure_policy=NEEDS_FOUR_FAILURES,
        on_state_unavailable="start_fresh",
    )
    jobs = {}
    for app_id in (keeps, fresh):
        await act(api, app_id, "start")
        jobs[app_id] = (await running_with_checkpoints(api, app_id))["status"]["job_id"]
        (tmp_path / f"slow-{jobs[app_id]}").touch()
    broken = {app_id: await break_latest_checkpoint_once_failing(flink_cluster, job) for app_id, job in jobs.items()}

    # start_fresh: restarted without state, and the timeline says why.
    app = await wait_app(
        api,
        fresh,
        lambda a: a["status"]["job_id"] != jobs[fresh] and a["status"]["state"] == "RUNNING",
        timeout=90,
        what="the fresh restart",
    )
    assert flink_checkpoints(flink_cluster, app["status"]["job_id"])["latest"]["restored"] is None
    fresh_notes = [e["detail"] for e in await events(api, fresh)]
    assert any("starting without state, as on_state_unavailable says" in d and broken[fresh] in d for d in fresh_notes)

    # refuse (the default): the running job is left running, with an alert naming the path and the reason.
    refused = await wait_app(api, keeps, lambda a: a["status"]["state"] == "RUNNING", what="running")
    for _ in range(100):
        found = await alerts(api, keeps, "state_unavailable")
        if found:
            break
        await asyncio.sleep(0.2)
    assert found, "no state_unavailable alert"
    assert broken[keeps] in found[0]["message"] and "no _metadata" in found[0]["message"]
    assert "on_state_unavailable: start_fresh" in found[0]["message"]
    await asyncio.sleep(2)
    now = (await api.get(f"/api/v1/apps/{keeps}")).json()
    assert now["status"]["job_id"] == jobs[keeps] == refused["status"]["job_id"]
    assert now["status"]["state"] == "RUNNING"  # not canceled, not restarted without its state
    assert not [e for e in await events(api, keeps) if e["to_state"] == "STARTING" and e["cause"] == "policy"]
    for app_id in (keeps, fresh):
        await act(api, app_id, "cancel")
