"""Why people are told something: a closed set of alert reasons."""

from __future__ import annotations

from enum import StrEnum


class AlertReason(StrEnum):
    JOB_FAILED = "job_failed"
    JOB_LOST = "job_lost"
    JOB_RECOVERED = "job_recovered"
    CHECKPOINT_FAILURES = "checkpoint_failures"
    CHECKPOINT_STALLED = "checkpoint_stalled"
    RESTARTED_BY_POLICY = "restarted_by_policy"
    RESTART_BUDGET_SPENT = "restart_budget_spent"
    CONFIG_MISMATCH = "config_mismatch"
    STATE_UNAVAILABLE = "state_unavailable"  # a restart was due, but no readable state to restore
    BACKPRESSURED = "backpressured"  # metric alerts (an app's metric_alerts): once per breach
    NO_THROUGHPUT = "no_throughput"
    WATERMARK_LAG = "watermark_lag"
    SLOW_CHECKPOINT = "slow_checkpoint"
