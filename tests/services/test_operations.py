"""Operations as resources: the API answers 202 before the work is done, operations are read by id and
by app, and after a platform restart an unfinished one is resumed or ends failed, never left running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from streampilot.services.platform import Platform
from streampilot.targets.fake import FakeFleet
from tests.services.conftest import finished, open_platform, texts


async def test_a_verb_answers_202_with_its_operation_before_the_work_is_done(
    api: httpx.AsyncClient, platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.submit_gate = asyncio.Event()  # the cluster takes its time
    resp = await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "none"})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    op = body["operation"]
    assert set(op) >= {"id", "verb", "app_id", "state", "steps", "error", "result"}
    assert (op["verb"], op["app_id"], op["state"], op["error"]) == ("start", app_id, "pending", None)
    assert (op["actor"], op["cause"], op["steps"][0]["text"]) == ("admin", "user", "start requested by admin")
    assert body["app"]["id"] == app_id and not fleet.launches  # nothing submitted yet

    again = await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "none"})
    assert again.status_code == 409 and "already in progress" in again.json()["detail"]

    fleet.submit_gate.set()
    await finished(platform, op["id"])
    read = (await api.get(f"/api/v1/operations/{op['id']}")).json()
    assert read["state"] == "succeeded" and read["result"]["state"] == "RUNNING"
    assert {"at", "text"} == set(read["steps"][0])
    listed = (await api.get(f"/api/v1/apps/{app_id}/operations")).json()
    assert [o["id"] for o in listed] == [op["id"]]


async def test_every_verb_through_the_api(api: httpx.AsyncClient, platform: Platform, app_id: int) -> None:
    async def verb(path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        resp = await api.post(f"/api/v1/apps/{app_id}/{path}", json=body)
        assert resp.status_code == 202, resp.text
        op = await finished(platform, resp.json()["operation"]["id"])
        assert op.state == "succeeded", op.error
        return op.result or {}

    assert (await verb("start"))["state"] == "RUNNING"
    assert str((await verb("savepoints"))["path"]).startswith("memory://")
    assert (await api.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 2})).status_code == 200
    assert (await verb("upgrade"))["version"] == 2
    assert (await verb("stop", {"savepoint": True}))["state"] == "FINISHED"
    assert (await verb("start", {"restore": "latest"}))["state"] == "RUNNING"
    assert (await verb("cancel"))["state"] == "CANCELED"


async def test_bad_input_and_unknown_ids_stay_synchronous(api: httpx.AsyncClient, app_id: int) -> None:
    resp = await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "latest"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "restore"
    assert (await api.post(f"/api/v1/apps/{app_id}/stop")).status_code == 409
    assert (await api.get("/api/v1/operations/999")).status_code == 404
    assert (await api.get("/api/v1/apps/999/operations")).status_code == 404
    assert (await api.get(f"/api/v1/apps/{app_id}/operations")).json() == []


async def test_after_a_restart_a_savepoint_taken_meanwhile_completes_the_stop(
    tmp_path: Path, platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    await finished(platform, (await platform.lifecycle.start(app_id)).id)
    fleet.savepoint_gate = asyncio.Event()  # the savepoint is slow ...
    op = await platform.lifecycle.stop(app_id)
    while "trigger" not in ((await platform.lifecycle.get_operation(op.id)).result or {}):
        await asyncio.sleep(0.01)
    await platform.close()  # ... and the platform goes down meanwhile (its tasks cancelled mid-way)
    assert (await open_platform_ops(tmp_path, fleet, op.id)) == "running"

    # Flink wrote the savepoint and finished the job while the platform was down.
    trigger = str((await reopen_result(tmp_path, fleet, op.id))["trigger"])
    fleet.savepoints[trigger] = "memory://fake/savepoints/written-while-down"
    next(iter(fleet.jobs.values())).state = "FINISHED"
    fleet.savepoint_gate = None
    again = await open_platform(tmp_path / "home", fleet)
    try:
        done = await finished(again, op.id)
        assert done.state == "succeeded", (done.error, done.steps)
        assert done.result["savepoint"] == "memory://fake/savepoints/written-while-down"
        assert "resumed after a platform restart" in texts(done)
        app = await again.apps.get(app_id)
        assert (app.state, app.operation) == ("FINISHED", None)
        assert [s.path for s in await again.lifecycle.snapshots(app_id, "savepoint")] == [done.result["savepoint"]]
    finally:
        await again.close()


async def test_after_a_restart_what_cannot_be_resumed_fails_with_its_cause(
    tmp_path: Path, platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    await finished(platform, (await platform.lifecycle.start(app_id)).id)
    fleet.savepoint_gate = asyncio.Event()
    op = await platform.lifecycle.stop(app_id)
    while "trigger" not in ((await platform.lifecycle.get_operation(op.id)).result or {}):
        await asyncio.sleep(0.01)
    await platform.close()
    fleet.savepoint_gate = None  # Flink forgot the trigger: the savepoint's outcome cannot be told
    again = await open_platform(tmp_path / "home", fleet)
    try:
        done = await finished(again, op.id)
        assert done.state == "failed"
        assert "interrupted by a platform restart" in (done.error or "") and "no longer knows" in (done.error or "")
        app = await again.apps.get(app_id)
        assert app.operation is None  # the slot is free: the user can act again
        # The job still runs: the observer (not the failed operation) says what the app is.
        await again.tracker.observe_app(app_id)
        assert (await again.apps.get(app_id)).state == "RUNNING"
    finally:
        await again.close()


async def test_after_a_restart_a_start_is_followed_until_its_job_runs(
    tmp_path: Path, platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.slots_free = False  # the job waits for slots ...
    op = await platform.lifecycle.start(app_id)
    while (await platform.apps.get(app_id)).job_id not in fleet.jobs:
        await asyncio.sleep(0.01)
    await platform.close()
    for job in fleet.jobs.values():  # ... and gets them while the platform is down
        job.tasks_running = job.tasks_total
    again = await open_platform(tmp_path / "home", fleet)
    try:
        done = await finished(again, op.id)
        assert done.state == "succeeded" and done.result["state"] == "RUNNING"
    finally:
        await again.close()


async def open_platform_ops(tmp_path: Path, fleet: FakeFleet, op_id: int) -> str:
    """The operation's stored state as the dead platform left it (read without recovering)."""
    from streampilot.store.db import create_engine, sessions
    from streampilot.store.orm import Operation

    engine = create_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    try:
        async with sessions(engine)() as s:
            op = await s.get(Operation, op_id)
            assert op is not None
            return op.state
    finally:
        await engine.dispose()


async def reopen_result(tmp_path: Path, fleet: FakeFleet, op_id: int) -> dict[str, object]:
    from streampilot.store.db import create_engine, sessions
    from streampilot.store.orm import Operation

    engine = create_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    try:
        async with sessions(engine)() as s:
            op = await s.get(Operation, op_id)
            assert op is not None
            return dict(op.result or {})
    finally:
        await engine.dispose()
