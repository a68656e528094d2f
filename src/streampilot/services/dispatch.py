"""Alert delivery, off the tracker's path: the dispatcher loop.

Each pass (1) fans new alerts out to the channels their app chose, deciding throttling there (the
same app and reason reach a channel at most once per ``throttle_s``; the rest are recorded as
suppressed and counted in the next message), and (2) sends due deliveries concurrently, each with a
timeout, recording every attempt; temporary failures are retried with backoff (or Retry-After),
permanent ones are not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from streampilot.alerts.senders import SendResult, send
from streampilot.domain.apps import AppSpec
from streampilot.domain.channels import Message
from streampilot.services.channels import open_config
from streampilot.services.context import Context
from streampilot.services.failures import failure_reason
from streampilot.store.orm import Alert, AlertChannel, AlertDelivery, App, AppVersion, Cluster, DeliveryAttempt, utcnow

log = logging.getLogger("streampilot.alerts")
PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"
CLAIM = timedelta(seconds=120)  # an attempt's hold on a delivery (longer than any send's timeouts)


@dataclass
class Dispatcher:
    ctx: Context
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)
    concurrency: int = 16

    async def run_once(self) -> None:
        await self.fan_out()
        await self.send_due()

    # ---- fan-out -----------------------------------------------------------------------------
    async def _latest_exception(self, alert: Alert) -> str | None:
        """The failed job's root cause, read once per alert so every channel tells the same story."""
        async with self.ctx.sessions() as s:
            app = await s.get(App, alert.app_id) if alert.app_id else None
            cluster = await s.get(Cluster, app.cluster_id) if app else None
        job_id = (alert.facts or {}).get("job_id")
        if cluster is None or not job_id:
            return None
        return await failure_reason(self.ctx, cluster, str(job_id))

    async def fan_out(self) -> None:
        settings = self.ctx.settings.alerts
        async with self.ctx.sessions() as s:
            failed = list(
                (
                    await s.execute(
                        sa.select(Alert).where(Alert.fanned_out.is_(False), Alert.reason == "job_failed").limit(50)
                    )
                ).scalars()
            )
        exceptions = {a.id: await self._latest_exception(a) for a in failed}
        async with self.ctx.sessions() as s, s.begin():
            alerts = list(
                (
                    await s.execute(
                        # Instances sharing the database fan each alert out once: rows one locks, the
                        # others skip (SQLite has one writer anyway).
                        sa.select(Alert)
                        .where(Alert.fanned_out.is_(False))
                        .order_by(Alert.id)
                        .limit(500)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            for alert in alerts:
                alert.fanned_out = True
                if exceptions.get(alert.id):
                    alert.facts = {**(alert.facts or {}), "exception": exceptions[alert.id]}
                for channel_id in await self._channels_for(s, alert):
                    delivery = AlertDelivery(
                        alert_id=alert.id,
                        channel_id=channel_id,
                        app_id=alert.app_id,
                        reason=alert.reason,
                        status=PENDING,
                        next_attempt_at=utcnow(),
                    )
                    last = (
                        await s.execute(
                            sa.select(AlertDelivery.created_at)
                            .where(
                                AlertDelivery.app_id == alert.app_id,
                                AlertDelivery.reason == alert.reason,
                                AlertDelivery.channel_id == channel_id,
                                AlertDelivery.status != SUPPRESSED,
                            )
                            .order_by(AlertDelivery.id.desc())
                            .limit(1)
                        )
                    ).scalar_one_or_none()
                    if last is not None and alert.at - last < timedelta(seconds=settings.throttle_s):
                        delivery.status, delivery.next_attempt_at = SUPPRESSED, None
                        self.ctx.metrics.deliveries.labels("suppressed").inc()
                    s.add(delivery)
                    await s.flush()

    async def _channels_for(self, s: Any, alert: Alert) -> list[int]:
        if alert.app_id is None:
            return []
        app = await s.get(App, alert.app_id)
        if app is None:
            return []
        version = app.running_version or app.current_version
        raw = (
            await s.execute(
                sa.select(AppVersion.spec).where(AppVersion.app_id == app.id, AppVersion.version == version)
            )
        ).scalar_one_or_none()
        if raw is None:
            return []
        spec = AppSpec.model_validate(raw)
        if spec.alert_reasons is not None and alert.reason not in spec.alert_reasons:
            return []
        existing = set(  # the app's own team's channels only
            (
                await s.execute(
                    sa.select(AlertChannel.id).where(
                        AlertChannel.id.in_(spec.alert_channel_ids), AlertChannel.team_id == app.team_id
                    )
                )
            ).scalars()
        )
        return [c for c in spec.alert_channel_ids if c in existing]

    # ---- sending -----------------------------------------------------------------------------
    async def send_due(self) -> None:
        async with self.ctx.sessions() as s:
            due = list(
                (
                    await s.execute(
                        sa.select(AlertDelivery.id)
                        .where(AlertDelivery.status == PENDING, AlertDelivery.next_attempt_at <= utcnow())
                        .order_by(AlertDelivery.id)
                        .limit(200)
                    )
                ).scalars()
            )
        sem = asyncio.Semaphore(self.concurrency)

        async def one(delivery_id: int) -> None:
            async with sem:
                try:
                    await self.attempt(delivery_id)
                except Exception:
                    log.exception("delivery %s: attempt failed unexpectedly", delivery_id)

        await asyncio.gather(*(one(d) for d in due))

    async def message_for(self, alert: Alert, suppressed: int) -> Message:
        async with self.ctx.sessions() as s:
            app = await s.get(App, alert.app_id) if alert.app_id else None
            cluster = await s.get(Cluster, app.cluster_id) if app else None
        facts = dict(alert.facts or {})
        exception = facts.pop("exception", None)
        base = self.ctx.settings.console_url or (f"http://{self.ctx.settings.host}:{self.ctx.settings.port}")
        numbers = {k: v for k, v in facts.items() if k not in ("state", "job_id", "previous_state")}
        return Message(
            title=alert.title,
            reason=alert.reason,
            app=app.name if app else "-",
            state=facts.get("state"),
            previous_state=facts.get("previous_state"),
            at=alert.at,
            cluster=cluster.name if cluster else None,
            job_id=facts.get("job_id"),
            summary=alert.message,
            numbers=numbers,
            exception=exception,
            link=f"{base.rstrip('/')}/apps/{app.id}" if app else None,
            suppressed=suppressed,
        )

    async def _claim(self, delivery_id: int) -> bool:
        """Take a due delivery for one attempt: with several instances, exactly one sends it (the one
        whose update moved its next attempt on); one that dies mid-attempt leaves it due again later."""
        now = utcnow()
        async with self.ctx.sessions() as s, s.begin():
            taken = await s.execute(
                sa.update(AlertDelivery)
                .where(
                    AlertDelivery.id == delivery_id,
                    AlertDelivery.status == PENDING,
                    AlertDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + CLAIM)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    async def attempt(self, delivery_id: int) -> SendResult | None:
        if not await self._claim(delivery_id):
            return None
        async with self.ctx.sessions() as s:
            delivery = await s.get(AlertDelivery, delivery_id)
            if delivery is None or delivery.status != PENDING:
                return None
            alert = await s.get(Alert, delivery.alert_id)
            channel = await s.get(AlertChannel, delivery.channel_id)
            suppressed = 0
            if alert is not None and delivery.attempts == 0:
                # Suppressed since the previous message to this channel for this app and reason.
                previous = (
                    await s.execute(
                        sa.select(sa.func.max(AlertDelivery.id)).where(
                            AlertDelivery.app_id == delivery.app_id,
                            AlertDelivery.reason == delivery.reason,
                            AlertDelivery.channel_id == delivery.channel_id,
                            AlertDelivery.status != SUPPRESSED,
                            AlertDelivery.id < delivery.id,
                        )
                    )
                ).scalar_one_or_none() or 0
                suppressed = (
                    await s.execute(
                        sa.select(sa.func.count())
                        .select_from(AlertDelivery)
                        .where(
                            AlertDelivery.app_id == delivery.app_id,
                            AlertDelivery.reason == delivery.reason,
                            AlertDelivery.channel_id == delivery.channel_id,
                            AlertDelivery.status == SUPPRESSED,
                            AlertDelivery.id > previous,
                            AlertDelivery.id < delivery.id,
                        )
                    )
                ).scalar_one()
            else:
                suppressed = delivery.suppressed_before
        if alert is None or channel is None:
            return None
        message = await self.message_for(alert, suppressed)
        started = time.monotonic()
        result = await send(self.http, open_config(channel, self.ctx.secrets), message)
        duration = int((time.monotonic() - started) * 1000)
        await self.record(delivery_id, result, duration, suppressed)
        return result

    async def record(self, delivery_id: int, result: SendResult, duration_ms: int, suppressed: int) -> None:
        settings = self.ctx.settings.alerts
        async with self.ctx.sessions() as s, s.begin():
            delivery = await s.get(AlertDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                return
            delivery.attempts += 1
            delivery.suppressed_before = suppressed
            s.add(
                DeliveryAttempt(
                    delivery_id=delivery_id,
                    ok=result.ok,
                    temporary=result.temporary,
                    status_code=result.status,
                    detail=result.detail,
                    duration_ms=duration_ms,
                )
            )
            if result.ok:
                delivery.status, delivery.sent_at, delivery.next_attempt_at = SENT, utcnow(), None
                delivery.last_error = None
                outcome = "sent"
            elif result.temporary and delivery.attempts < settings.max_attempts:
                wait = result.retry_after_s or settings.backoff_s * 2 ** (delivery.attempts - 1)
                delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
                delivery.last_error = result.detail
                outcome = "retry"
            else:
                delivery.status, delivery.next_attempt_at, delivery.last_error = FAILED, None, result.detail
                outcome = "failed"
        self.ctx.metrics.deliveries.labels(outcome).inc()

    async def close(self) -> None:
        await self.http.aclose()
