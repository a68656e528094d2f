"""The observer's rule book, decided without any I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from streampilot.domain.states import AppState, FlinkJobState, Gone, Seen, Unknown
from streampilot.domain.transitions import AppView, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOST_AFTER = timedelta(seconds=60)
GRACE = timedelta(seconds=30)


def view(state: AppState, since: datetime | None = None, submitted: datetime | None = None) -> AppView:
    return AppView(state, None, since, submitted)


def run(app: AppView, obs):  # type: ignore[no-untyped-def]
    return decide(app, obs, lost_after=LOST_AFTER, submit_grace=GRACE)


def seen(job: FlinkJobState, running: int = 2, total: int = 2, at: datetime = T0) -> Seen:
    return Seen(job, running, total, at)


class TestRunningMeansAllTasksRun:
    def test_all_tasks_running_is_running(self) -> None:
        assert run(view(AppState.STARTING), seen(FlinkJobState.RUNNING)).state == AppState.RUNNING

    def test_tasks_waiting_for_slots_on_first_start_is_starting(self) -> None:
        d = run(view(AppState.STARTING), seen(FlinkJobState.RUNNING, running=1, total=2))
        assert d.state is None  # stays STARTING
        assert d.tasks == (1, 2)

    def test_tasks_waiting_after_running_is_restarting(self) -> None:
        d = run(view(AppState.RUNNING), seen(FlinkJobState.RUNNING, running=0, total=2))
        assert d.state == AppState.RESTARTING


class TestBoundedJobs:
    """A bounded job's finished tasks are done, not down: RUNNING -> FINISHED without RESTARTING."""

    def test_finished_tasks_count_as_done(self) -> None:
        partly_done = Seen(FlinkJobState.RUNNING, 1, 2, T0, tasks_finished=1)
        assert run(view(AppState.RUNNING), partly_done).state is None  # stays RUNNING
        assert run(view(AppState.STARTING), partly_done).state == AppState.RUNNING

    def test_a_lost_task_is_still_down_when_others_finished(self) -> None:
        one_down = Seen(FlinkJobState.RUNNING, 1, 3, T0, tasks_finished=1)
        assert run(view(AppState.RUNNING), one_down).state == AppState.RESTARTING

    def test_a_batch_job_runs_stage_after_stage(self) -> None:
        batch = AppView(AppState.STARTING, None, None, None, batch=True)
        first_stage = Seen(FlinkJobState.RUNNING, 1, 3, T0)  # the later stages wait by design
        between_stages = Seen(FlinkJobState.RUNNING, 0, 3, T0, tasks_finished=1)
        assert run(batch, first_stage).state == AppState.RUNNING
        running = AppView(AppState.RUNNING, None, None, None, batch=True)
        assert run(running, between_stages).state is None
        # Nothing has run yet: waiting for slots, as for any job.
        assert run(batch, Seen(FlinkJobState.RUNNING, 0, 3, T0)).state is None

    def test_streaming_is_not_batch(self) -> None:
        assert run(view(AppState.STARTING), Seen(FlinkJobState.RUNNING, 1, 3, T0)).state is None


class TestUnknownIsNotGone:
    def test_error_keeps_state_and_starts_clock(self) -> None:
        d = run(view(AppState.RUNNING), Unknown(T0, "HTTP 500"))
        assert d.state is None
        assert d.unconfirmed_since == T0

    def test_error_within_lost_after_keeps_state(self) -> None:
        d = run(view(AppState.RUNNING, since=T0), Unknown(T0 + timedelta(seconds=59), "timeout"))
        assert d.state is None
        assert d.unconfirmed_since == T0

    def test_error_past_lost_after_is_lost(self) -> None:
        app = AppView(AppState.RUNNING, FlinkJobState.RUNNING, T0, None)
        d = run(app, Unknown(T0 + timedelta(seconds=60), "refused"))
        assert d.state == AppState.LOST
        assert "refused" in d.detail
        assert d.job_state is None and d.job_unknown  # no longer known: not "still RUNNING"

    def test_error_on_ended_app_never_becomes_lost(self) -> None:
        d = run(view(AppState.CANCELED, since=T0), Unknown(T0 + timedelta(hours=1), "refused"))
        assert d.state is None


class TestNoStateStopsObservation:
    @pytest.mark.parametrize("ended", [AppState.FAILED, AppState.LOST, AppState.CANCELED])
    def test_seen_running_after_end_wins(self, ended: AppState) -> None:
        d = run(view(ended, since=T0), seen(FlinkJobState.RUNNING))
        assert d.state == AppState.RUNNING
        assert d.unconfirmed_since is None
        assert "again" in d.detail

    def test_flink_failed_then_running(self) -> None:
        assert run(view(AppState.RUNNING), seen(FlinkJobState.FAILED)).state == AppState.FAILED
        assert run(view(AppState.FAILED), seen(FlinkJobState.RESTARTING)).state == AppState.RESTARTING


class TestGone:
    def test_gone_active_is_lost(self) -> None:
        d = run(view(AppState.RUNNING), Gone(T0, "not listed"))
        assert d.state == AppState.LOST

    def test_gone_right_after_submit_is_no_evidence(self) -> None:
        d = run(view(AppState.STARTING, submitted=T0), Gone(T0 + timedelta(seconds=1), "not listed"))
        assert d.state is None

    def test_gone_long_after_submit_is_lost(self) -> None:
        d = run(view(AppState.STARTING, submitted=T0), Gone(T0 + timedelta(seconds=31), "not listed"))
        assert d.state == AppState.LOST

    def test_gone_while_the_submission_has_not_answered_is_no_evidence(self) -> None:
        # A PyFlink script may run a long while in the JobManager before its job exists.
        submitting = AppView(AppState.STARTING, None, None, T0, start_in_flight=True)
        assert run(submitting, Gone(T0 + timedelta(minutes=5), "not listed")).state is None

    def test_lost_app_whose_cluster_is_back_without_job_gets_a_note(self) -> None:
        d = run(view(AppState.LOST, since=T0), Gone(T0 + timedelta(seconds=90), "not listed"))
        assert d.state is None
        assert d.note is not None and "gone" in d.note
        assert d.unconfirmed_since is None


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (FlinkJobState.CANCELED, AppState.CANCELED),
        (FlinkJobState.FINISHED, AppState.FINISHED),
        (FlinkJobState.CANCELLING, AppState.STOPPING),
        (FlinkJobState.FAILING, AppState.FAILING),
        (FlinkJobState.SUSPENDED, AppState.RESTARTING),
    ],
)
def test_flink_states_map_to_public_states(job: FlinkJobState, expected: AppState) -> None:
    assert run(view(AppState.RUNNING), seen(job)).state == expected


def test_running_job_during_a_users_stop_stays_stopping() -> None:
    app = AppView(AppState.STOPPING, None, None, None, stop_in_flight=True)
    assert run(app, seen(FlinkJobState.RUNNING)).state is None
    assert run(app, seen(FlinkJobState.FINISHED)).state == AppState.FINISHED


def test_stopping_without_an_operation_in_flight_follows_flink() -> None:
    # e.g. the platform died during a stop and the job kept running
    app = AppView(AppState.STOPPING, None, None, None, stop_in_flight=False)
    assert run(app, seen(FlinkJobState.RUNNING)).state == AppState.RUNNING
