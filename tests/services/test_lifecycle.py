"""The lifecycle verbs as operations, against the fake Target (no Flink): what each verb leaves behind
in the app, its events, its snapshots and its operation."""

from __future__ import annotations

import asyncio

import pytest

from streampilot.domain.errors import SpecError
from streampilot.domain.states import AppState, Cause
from streampilot.services.errors import Conflict
from streampilot.services.platform import Platform
from streampilot.targets.fake import FakeFleet
from tests.services.conftest import finished, texts


async def run_start(platform: Platform, app_id: int, **kw: object) -> None:
    op = await platform.lifecycle.start(app_id, **kw)  # type: ignore[arg-type]
    done = await finished(platform, op.id)
    assert done.state == "succeeded", (done.error, done.steps)


async def test_start_runs_the_job_and_the_operation_tells_each_step(platform: Platform, app_id: int) -> None:
    op = await platform.lifecycle.start(app_id)
    assert op.state == "pending" and op.verb == "start" and op.app_id == app_id
    done = await finished(platform, op.id)
    assert done.state == "succeeded", done.error
    job_id = done.result["job_id"]
    assert done.result["state"] == "RUNNING"
    steps = texts(done)
    assert steps[0] == "start requested by user"
    assert any(f"submitting job {job_id}" in s for s in steps)
    assert any("is RUNNING (1/1 tasks)" in s for s in steps)
    assert steps[-1] == "start succeeded"
    app = await platform.apps.get(app_id)
    assert (app.state, app.job_id, app.desired_state, app.operation) == ("RUNNING", job_id, "RUNNING", None)
    assert done.finished_at is not None


async def test_a_second_verb_while_one_runs_is_a_conflict_and_the_slot_is_freed_after(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:

    fleet.submit_gate = asyncio.Event()
    op = await platform.lifecycle.start(app_id)
    await asyncio.sleep(0.05)
    with pytest.raises(Conflict, match="start of application 'orders' is already in progress"):
        await platform.lifecycle.cancel(app_id)
    with pytest.raises(Conflict, match="is STARTING; stop or cancel it"):
        await platform.lifecycle.start(app_id)
    fleet.submit_gate.set()
    assert (await finished(platform, op.id)).state == "succeeded"
    # The slot is free again: the next verb is accepted.
    stop = await platform.lifecycle.stop(app_id)
    assert (await finished(platform, stop.id)).state == "succeeded"


async def test_a_refused_submission_fails_the_operation_with_field_problems_and_rolls_back(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.refuse = "Object 'nope' not found"
    op = await finished(platform, (await platform.lifecycle.start(app_id)).id)
    assert op.state == "failed"
    assert op.problems == [{"field": "sql", "message": "Object 'nope' not found"}]
    assert "Object 'nope' not found" in (op.error or "")
    app = await platform.apps.get(app_id)
    assert (app.state, app.desired_state, app.operation) == ("CREATED", "STOPPED", None)
    events = [e.detail for e in await platform.apps.events(app_id)]
    assert any("the cluster refused the job: Object 'nope' not found" in d for d in events)


async def test_a_refused_submission_whose_job_runs_anyway_is_the_apps_job(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.refuse, fleet.refuse_but_run = "The main method caused an error: wait() failed", True
    op = await finished(platform, (await platform.lifecycle.start(app_id)).id)
    assert op.state == "succeeded", op.error
    job_id = op.result["job_id"]
    assert job_id in fleet.jobs
    app = await platform.apps.get(app_id)
    assert (app.state, app.job_id) == ("RUNNING", job_id)
    assert any("is this application's job and is tracked" in e.detail for e in await platform.apps.events(app_id))


async def test_a_job_that_fails_at_once_ends_the_start_at_once(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    """Once submitted, an ended state is the new job's: the start fails now, not after the start wait."""
    fleet.fail_at_start = True
    op = await finished(platform, (await platform.lifecycle.start(app_id)).id, timeout=5)
    assert op.state == "failed" and "ended FAILED while starting" in (op.error or "")
    assert (await platform.apps.get(app_id)).state == "FAILED"


async def test_a_bounded_job_done_before_it_was_seen_running_is_a_successful_start(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.finish_at_once = True
    op = await finished(platform, (await platform.lifecycle.start(app_id)).id)
    assert op.state == "succeeded" and op.result["state"] == "FINISHED", op.error
    assert (await platform.apps.get(app_id)).state == "FINISHED"


async def test_a_refusal_after_the_observer_moved_on_keeps_the_observed_state(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    """A slow refusal: meanwhile the observer saw no job past the submit grace (LOST). That state stands."""
    fleet.submit_gate, fleet.refuse = asyncio.Event(), "No jobs included in application"
    op = await platform.lifecycle.start(app_id)
    while (await platform.apps.get(app_id)).state != "STARTING":
        await asyncio.sleep(0.01)
    app = await platform.apps.get(app_id)
    assert app.job_id is not None
    await platform.lifecycle._set(app_id, AppState.LOST, "no job listed past the grace", cause=Cause.OBSERVER)
    fleet.submit_gate.set()
    done = await finished(platform, op.id)
    assert done.state == "failed" and "No jobs included" in (done.error or "")
    app = await platform.apps.get(app_id)
    assert (app.state, app.desired_state, app.operation) == ("LOST", "STOPPED", None)
    assert any("the cluster refused the job" in e.detail for e in await platform.apps.events(app_id))


async def test_an_unanswered_submission_fails_the_operation_but_keeps_the_job_id_for_the_tracker(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    fleet.unavailable = True
    op = await finished(platform, (await platform.lifecycle.start(app_id)).id)
    assert op.state == "failed" and "does not answer" in (op.error or "")
    app = await platform.apps.get(app_id)
    # Outcome unknown: the app keeps the job id it recorded before submission, for the tracker.
    assert app.state == "STARTING" and app.job_id == op.result["job_id"]


async def test_checks_that_need_no_cluster_are_synchronous_errors(platform: Platform, app_id: int) -> None:
    with pytest.raises(SpecError) as refused:
        await platform.lifecycle.start(app_id, restore="latest")
    assert refused.value.problems[0].field == "restore"
    with pytest.raises(Conflict, match="not running"):
        await platform.lifecycle.stop(app_id)
    assert await platform.lifecycle.operations_of(app_id) == []  # nothing was begun


async def test_stop_with_savepoint_records_the_savepoint_and_restore_latest_uses_it(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    await run_start(platform, app_id)
    op = await finished(platform, (await platform.lifecycle.stop(app_id)).id)
    assert op.state == "succeeded", op.error
    path = op.result["savepoint"]
    assert path.startswith("memory://fake/savepoints/") and op.result["state"] == "FINISHED"
    assert op.result["trigger"].startswith("trigger-")
    app = await platform.apps.get(app_id)
    assert (app.state, app.desired_state) == ("FINISHED", "STOPPED")
    assert [s.path for s in await platform.lifecycle.snapshots(app_id, "savepoint")] == [path]
    await run_start(platform, app_id, restore="latest")
    assert fleet.launches[-1].request.restore_path == path


async def test_a_failed_savepoint_fails_the_stop_and_the_app_runs_on(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    await run_start(platform, app_id)
    fleet.savepoint_failure = "checkpoint storage not writable"
    op = await finished(platform, (await platform.lifecycle.stop(app_id)).id)
    assert op.state == "failed" and "checkpoint storage not writable" in (op.error or "")
    assert (await platform.apps.get(app_id)).state == "RUNNING"


async def test_cancel_and_savepoint(platform: Platform, app_id: int) -> None:
    await run_start(platform, app_id)
    sp = await finished(platform, (await platform.lifecycle.savepoint(app_id)).id)
    assert sp.state == "succeeded" and sp.result["path"].startswith("memory://fake/")
    cancel = await finished(platform, (await platform.lifecycle.cancel(app_id)).id)
    assert cancel.state == "succeeded" and cancel.result["state"] == "CANCELED"
    assert (await platform.apps.get(app_id)).state == "CANCELED"
    verbs = [(o.verb, o.state) for o in await platform.lifecycle.operations_of(app_id)]
    assert verbs == [("cancel", "succeeded"), ("savepoint", "succeeded"), ("start", "succeeded")]


async def test_upgrade_stops_with_a_savepoint_and_starts_the_new_version_from_it(
    platform: Platform, fleet: FakeFleet, app_id: int
) -> None:
    await run_start(platform, app_id)
    with pytest.raises(Conflict, match="already runs version 1"):
        await platform.lifecycle.upgrade(app_id)
    await platform.apps.update(app_id, {"parallelism": 2})
    op = await finished(platform, (await platform.lifecycle.upgrade(app_id)).id)
    assert op.state == "succeeded", op.error
    app = await platform.apps.get(app_id)
    assert (app.state, app.running_version) == ("RUNNING", 2)
    assert fleet.launches[-1].request.version == 2
    assert fleet.launches[-1].request.restore_path == op.result["savepoint"]


async def test_a_policy_restart_is_an_operation_of_its_own(platform: Platform, app_id: int) -> None:
    await run_start(platform, app_id)
    restarted = await platform.lifecycle.restart(app_id, restore="none", why="restart by policy (test)")
    assert restarted is not None and restarted.state == "RUNNING"
    op = (await platform.lifecycle.operations_of(app_id))[0]
    assert (op.verb, op.cause, op.actor, op.state) == ("restart", "policy", "policy", "succeeded")
