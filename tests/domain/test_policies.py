"""The checkpoint-failure window, the auto-restart budget and the stall rule."""

from streampilot.domain.apps import AutoRestart, CheckpointFailurePolicy, CheckpointStall
from streampilot.domain.policies import (
    PolicyMemory,
    acted,
    checkpoint_breach,
    note_failures,
    restart_allowed,
    stalled,
)

POLICY = CheckpointFailurePolicy(failures=2, window_s=300, action="restart")
MIN = 60_000


def test_two_distinct_failures_in_window_breach_once() -> None:
    m = PolicyMemory()
    note_failures(m, "job", {7: 10 * MIN}, now_ms=10 * MIN, keep_ms=3_600_000)
    assert checkpoint_breach(m, POLICY, 10 * MIN) is None
    note_failures(m, "job", {7: 10 * MIN}, now_ms=11 * MIN, keep_ms=3_600_000)  # the same failure again
    assert checkpoint_breach(m, POLICY, 11 * MIN) is None
    note_failures(m, "job", {8: 11 * MIN}, now_ms=11 * MIN, keep_ms=3_600_000)
    breach = checkpoint_breach(m, POLICY, 11 * MIN)
    assert breach is not None and breach.checkpoint_ids == (7, 8)
    acted(m, 11 * MIN)
    assert checkpoint_breach(m, POLICY, 11 * MIN + 1) is None  # no re-firing on the same failures
    note_failures(m, "job", {9: 12 * MIN}, now_ms=12 * MIN, keep_ms=3_600_000)
    assert checkpoint_breach(m, POLICY, 12 * MIN) is None  # a fresh window: one failure so far


def test_failures_outside_the_window_do_not_count() -> None:
    m = PolicyMemory()
    note_failures(m, "job", {1: 0, 2: 6 * MIN}, now_ms=6 * MIN, keep_ms=3_600_000)
    assert checkpoint_breach(m, POLICY, 6 * MIN) is None  # 6 minutes apart, window is 5


def test_new_job_forgets_old_failures() -> None:
    m = PolicyMemory()
    note_failures(m, "old", {1: MIN, 2: MIN}, now_ms=MIN, keep_ms=3_600_000)
    note_failures(m, "new", {}, now_ms=MIN, keep_ms=3_600_000)
    assert checkpoint_breach(m, POLICY, MIN) is None


def test_memory_round_trips() -> None:
    m = PolicyMemory(job_id="j", failed={3: 5}, window_start_ms=9, restarts_ms=[1, 2], budget_spent_noted=True)
    assert PolicyMemory.load(m.dump()) == m


def test_restart_budget_counts_within_window() -> None:
    budget = AutoRestart(max_restarts=2, window_s=600)
    m = PolicyMemory(restarts_ms=[0, MIN])
    assert not restart_allowed(m, budget, 2 * MIN)
    assert restart_allowed(m, budget, 10 * MIN + 1)  # the first restart left the window


def test_stall() -> None:
    rule = CheckpointStall(after_s=60)
    assert not stalled(rule, last_completed_ms=0, running_since_ms=0, now_ms=59_000)
    assert stalled(rule, last_completed_ms=0, running_since_ms=0, now_ms=60_000)
    assert stalled(rule, last_completed_ms=None, running_since_ms=0, now_ms=61_000)


def test_backoff_grows_is_capped_and_jittered() -> None:
    from streampilot.domain.apps import AutoRestart
    from streampilot.domain.policies import backoff_ms

    budget = AutoRestart(max_restarts=5, window_s=60, initial_backoff_s=1, max_backoff_s=5, multiplier=2, jitter=0.1)
    assert [backoff_ms(budget, n, 0.5) for n in range(5)] == [1000, 2000, 4000, 5000, 5000]
    assert backoff_ms(budget, 0, 0.0) == 900 and backoff_ms(budget, 0, 0.999999) == 1099


def test_a_lack_of_slots_is_told_apart_from_the_jobs_own_failure() -> None:
    from streampilot.domain.policies import lacks_resources

    assert lacks_resources(
        "java.util.concurrent.CompletionException: org.apache.flink.runtime.jobmanager.scheduler."
        "NoResourceAvailableException: Could not acquire the minimum required resources."
    )
    assert not lacks_resources("java.lang.IllegalStateException: crash injected by the test")
