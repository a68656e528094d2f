"""Queries of alerts and their deliveries (each delivery with its attempt history)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streampilot.store.orm import Alert, AlertChannel, AlertDelivery, App, DeliveryAttempt


@dataclass
class AlertRepository:
    sessions: async_sessionmaker[AsyncSession]

    async def alerts(
        self, app_id: int | None, limit: int, teams: set[int] | None = None
    ) -> list[tuple[Alert, list[dict[str, Any]]]]:
        """The newest alerts (of one app, or all; of the apps of ``teams`` unless None), each with its
        deliveries."""
        q = sa.select(Alert).order_by(Alert.id.desc()).limit(limit)
        if app_id is not None:
            q = q.where(Alert.app_id == app_id)
        if teams is not None:
            q = q.where(Alert.app_id.in_(sa.select(App.id).where(App.team_id.in_(teams))))
        async with self.sessions() as s:
            alerts = list((await s.execute(q)).scalars())
            by_alert: dict[int, list[dict[str, Any]]] = {}
            if alerts:
                found = await _deliveries(s, AlertDelivery.alert_id.in_([a.id for a in alerts]))
                for d in reversed(found):
                    by_alert.setdefault(d["alert_id"], []).append(d)
        return [(a, by_alert.get(a.id, [])) for a in alerts]

    async def recent_deliveries(self, teams: set[int] | None = None) -> list[dict[str, Any]]:
        """The newest deliveries (to the channels of ``teams`` unless None)."""
        where: Any = AlertDelivery.id > 0
        if teams is not None:
            where = AlertDelivery.channel_id.in_(sa.select(AlertChannel.id).where(AlertChannel.team_id.in_(teams)))
        async with self.sessions() as s:
            return await _deliveries(s, where)

    async def deliveries_to(self, channel_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            return await _deliveries(s, AlertDelivery.channel_id == channel_id)


async def _deliveries(s: AsyncSession, where: Any) -> list[dict[str, Any]]:
    """Deliveries matching ``where`` (newest 500), each with its attempt history, in two queries."""
    rows = list(
        (await s.execute(sa.select(AlertDelivery).where(where).order_by(AlertDelivery.id.desc()).limit(500))).scalars()
    )
    history: dict[int, list[dict[str, Any]]] = {d.id: [] for d in rows}
    if rows:
        attempts = (
            await s.execute(
                sa.select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(history)).order_by(DeliveryAttempt.id)
            )
        ).scalars()
        for a in attempts:
            history[a.delivery_id].append(
                {
                    "at": a.at,
                    "ok": a.ok,
                    "temporary": a.temporary,
                    "status_code": a.status_code,
                    "detail": a.detail,
                    "duration_ms": a.duration_ms,
                }
            )
    return [
        {
            "id": d.id,
            "alert_id": d.alert_id,
            "channel_id": d.channel_id,
            "status": d.status,
            "attempts": d.attempts,
            "suppressed_before": d.suppressed_before,
            "last_error": d.last_error,
            "next_attempt_at": d.next_attempt_at,
            "sent_at": d.sent_at,
            "history": history[d.id],
        }
        for d in rows
    ]
