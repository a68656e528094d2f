"""What an observation means for an application's state.

``decide`` is the whole rule book of the observer (DESIGN.md, "State model"):
1. Unknown is not Gone: an error never changes the state, it only starts the unconfirmed clock;
   after ``lost_after`` of continuous Unknown an active app becomes LOST.
2. No state stops observation: a later ``Seen`` always wins, FAILED/LOST/CANCELED included.
3. RUNNING means all tasks run; otherwise STARTING (first start) or RESTARTING.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from streampilot.domain.states import (
    ACTIVE_STATES,
    AppState,
    FlinkJobState,
    Gone,
    Observation,
    Seen,
    Unknown,
)


@dataclass(frozen=True)
class AppView:
    """The part of an application the observer needs to decide."""

    state: AppState
    job_state: FlinkJobState | None
    unconfirmed_since: datetime | None
    submitted_at: datetime | None
    # A user's stop or cancel is in flight: Flink keeps the job RUNNING while it takes the savepoint.
    stop_in_flight: bool = False
    # A start is in flight: a job state that has already ended describes the previous run.
    start_in_flight: bool = False
    # Batch execution: later stages' tasks wait for earlier ones by design, not for slots.
    batch: bool = False


@dataclass(frozen=True)
class Decision:
    """What to store after an observation. ``state`` None means: keep the state."""

    state: AppState | None
    job_state: FlinkJobState | None
    unconfirmed_since: datetime | None
    detail: str
    tasks: tuple[int, int] | None = None
    # An event is recorded for a state change, and also for notable non-changes (job gone while LOST).
    note: str | None = None

    @property
    def job_unknown(self) -> bool:
        """LOST: what we knew of the job (its state, tasks, verified settings) is no longer known."""
        return self.state == AppState.LOST


def state_for_seen(current: AppState, seen: Seen, *, stop_in_flight: bool = False, batch: bool = False) -> AppState:
    job = seen.job_state
    if stop_in_flight and current == AppState.STOPPING and not job.is_globally_terminal:
        return AppState.STOPPING
    if job == FlinkJobState.RUNNING:
        if seen.all_tasks_running or (batch and seen.any_task_progressed):
            return AppState.RUNNING
        return _not_yet_running(current)
    if job in (FlinkJobState.INITIALIZING, FlinkJobState.CREATED, FlinkJobState.RECONCILING):
        return _not_yet_running(current)
    if job in (FlinkJobState.RESTARTING, FlinkJobState.SUSPENDED):
        return AppState.RESTARTING
    if job == FlinkJobState.FAILING:
        return AppState.FAILING
    if job == FlinkJobState.FAILED:
        return AppState.FAILED
    if job == FlinkJobState.CANCELLING:
        return AppState.STOPPING
    if job == FlinkJobState.CANCELED:
        return AppState.CANCELED
    return AppState.FINISHED


def _not_yet_running(current: AppState) -> AppState:
    if current == AppState.STARTING:
        return AppState.STARTING
    if current == AppState.STOPPING:
        return AppState.STOPPING
    return AppState.RESTARTING


def decide(app: AppView, obs: Observation, *, lost_after: timedelta, submit_grace: timedelta) -> Decision:
    if isinstance(obs, Seen):
        if app.start_in_flight and app.state == AppState.STARTING and obs.job_state.is_globally_terminal:
            return Decision(None, app.job_state, None, "ended state seen while a start is in flight: previous run")
        new = state_for_seen(app.state, obs, stop_in_flight=app.stop_in_flight, batch=app.batch)
        detail = obs.note or (
            f"Flink reports {obs.job_state.value} with {obs.tasks_running}/{obs.tasks_total} tasks running"
        )
        if app.state in (AppState.FAILED, AppState.LOST, AppState.CANCELED) and new == AppState.RUNNING:
            detail = f"job seen running again after {app.state.value}: {detail}"
        return Decision(
            state=new if new != app.state else None,
            job_state=obs.job_state,
            unconfirmed_since=None,
            detail=detail,
            tasks=(obs.tasks_running, obs.tasks_total),
        )
    if isinstance(obs, Gone):
        recently_submitted = app.submitted_at is not None and obs.at - app.submitted_at < submit_grace
        if app.state == AppState.STARTING and (recently_submitted or app.start_in_flight):
            # Submitted moments ago, or the submission has not answered yet (a PyFlink script may
            # run for a while in the JobManager before it submits its job): not listed proves nothing.
            return Decision(None, app.job_state, None, "job not listed yet after submission")
        if app.state in ACTIVE_STATES:
            return Decision(
                AppState.LOST, None, None, f"the cluster answered but no longer has the job: {obs.evidence}"
            )
        note = None
        if app.state == AppState.LOST and app.unconfirmed_since is not None:
            note = f"cluster reachable again, but the job is gone: {obs.evidence}"
        return Decision(None, app.job_state, None, obs.evidence, note=note)
    return _decide_unknown(app, obs, lost_after)


def _decide_unknown(app: AppView, obs: Unknown, lost_after: timedelta) -> Decision:
    since = app.unconfirmed_since or obs.at
    if app.state in ACTIVE_STATES and obs.at - since >= lost_after:
        secs = int((obs.at - since).total_seconds())
        return Decision(
            AppState.LOST,
            None,
            since,
            f"no confirmed observation for {secs} s (last error: {obs.error})",
        )
    return Decision(None, app.job_state, since, f"observation failed: {obs.error}")
