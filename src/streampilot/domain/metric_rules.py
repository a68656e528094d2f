"""Metric alerts of an app (``AppSpec.metric_alerts``) read against its newest sample (no I/O).

Each rule is a condition on one figure of the job: the most backpressured vertex above a share of time
for a while, no record read for a while, the watermark lag above a bound, the newest completed
checkpoint longer than a bound. A condition that cannot be measured now (Flink did not give the figure,
the job has no watermarks or no checkpoint yet) changes nothing: it neither starts nor ends a breach.
"""

from __future__ import annotations

from dataclasses import dataclass

from streampilot.domain.alerts import AlertReason
from streampilot.domain.apps import MetricAlerts


@dataclass(frozen=True)
class Reading:
    reason: AlertReason
    breached: bool | None  # None: not measurable now
    hold_s: float  # how long the condition must hold before it is a breach worth an alert
    detail: str


def _pct(v: float) -> str:
    return f"{round(v * 100)} %"


def readings(rules: MetricAlerts, job: dict[str, float], last_checkpoint_ms: float | None) -> list[Reading]:
    out: list[Reading] = []
    if rules.backpressured_above is not None:
        v = job.get("backpressured_ratio")
        out.append(
            Reading(
                AlertReason.BACKPRESSURED,
                None if v is None else v > rules.backpressured_above,
                rules.backpressured_for_s,
                f"backpressured {_pct(v or 0)} of the time (alert above {_pct(rules.backpressured_above)} "
                f"for {rules.backpressured_for_s:g} s)",
            )
        )
    if rules.no_throughput_for_s is not None:
        v = job.get("records_in_per_s")
        out.append(
            Reading(
                AlertReason.NO_THROUGHPUT,
                None if v is None else v == 0,
                rules.no_throughput_for_s,
                f"reading {v or 0:g} records/s (alert when none for {rules.no_throughput_for_s:g} s)",
            )
        )
    if rules.watermark_lag_above_s is not None:
        v = job.get("watermark_lag_ms")
        out.append(
            Reading(
                AlertReason.WATERMARK_LAG,
                None if v is None else v > rules.watermark_lag_above_s * 1000,
                0.0,
                f"watermark {(v or 0) / 1000:.1f} s behind (alert above {rules.watermark_lag_above_s:g} s)",
            )
        )
    if rules.checkpoint_duration_above_s is not None:
        v = last_checkpoint_ms
        out.append(
            Reading(
                AlertReason.SLOW_CHECKPOINT,
                None if v is None else v > rules.checkpoint_duration_above_s * 1000,
                0.0,
                f"the newest checkpoint took {(v or 0) / 1000:.1f} s "
                f"(alert above {rules.checkpoint_duration_above_s:g} s)",
            )
        )
    return out
