"""Raising alerts: recorded in the same transaction as the change that caused them, so none is lost.

Delivery to people (channels, throttling, retries) happens off this path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.domain.alerts import AlertReason
from streampilot.domain.states import AppState
from streampilot.store.orm import Alert, App, utcnow

TITLES = {
    AlertReason.JOB_FAILED: "job failed",
    AlertReason.JOB_LOST: "job lost",
    AlertReason.JOB_RECOVERED: "job recovered",
    AlertReason.CHECKPOINT_FAILURES: "checkpoints keep failing",
    AlertReason.CHECKPOINT_STALLED: "checkpoints stalled",
    AlertReason.RESTARTED_BY_POLICY: "restarted by policy",
    AlertReason.RESTART_BUDGET_SPENT: "auto-restart budget spent",
    AlertReason.CONFIG_MISMATCH: "configuration differs from what was asked",
    AlertReason.STATE_UNAVAILABLE: "not restarted: no readable state",
    AlertReason.BACKPRESSURED: "job backpressured",
    AlertReason.NO_THROUGHPUT: "no records read",
    AlertReason.WATERMARK_LAG: "watermark lagging",
    AlertReason.SLOW_CHECKPOINT: "checkpoint took too long",
}


def raise_alert(session: AsyncSession, app: App, reason: AlertReason, message: str, **facts: Any) -> Alert:
    alert = Alert(
        app_id=app.id,
        at=utcnow(),
        reason=reason.value,
        title=f"{app.name}: {TITLES[reason]}",
        message=message,
        facts={"state": app.state, "job_id": app.job_id, **facts},
    )
    session.add(alert)
    return alert


def alert_for_transition(previous: AppState, new: AppState) -> AlertReason | None:
    """The alert a state change deserves, if any (recovery only after FAILED or LOST)."""
    if new == AppState.FAILED and previous != AppState.FAILED:
        return AlertReason.JOB_FAILED
    if new == AppState.LOST and previous != AppState.LOST:
        return AlertReason.JOB_LOST
    if new == AppState.RUNNING and previous in (AppState.FAILED, AppState.LOST):
        return AlertReason.JOB_RECOVERED
    return None
