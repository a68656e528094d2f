"""The audit log, read back: who changed or operated what, filtered, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from streampilot.services import access
from streampilot.services.context import Context
from streampilot.store.orm import AuditEvent


@dataclass(frozen=True)
class AuditQuery:
    team_id: int | None = None
    actor: str | None = None
    action: str | None = None
    object_kind: str | None = None
    object_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


@dataclass
class AuditService:
    ctx: Context

    async def events(self, query: AuditQuery) -> list[AuditEvent]:
        """Events of the caller's teams (a platform admin: all, users and teams included)."""
        q = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(query.limit)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(AuditEvent.team_id.in_(teams))
        for column, value in (
            (AuditEvent.team_id, query.team_id),
            (AuditEvent.actor, query.actor),
            (AuditEvent.action, query.action),
            (AuditEvent.object_kind, query.object_kind),
            (AuditEvent.object_id, query.object_id),
        ):
            if value is not None:
                q = q.where(column == value)
        if query.since is not None:
            q = q.where(AuditEvent.at >= query.since)
        if query.until is not None:
            q = q.where(AuditEvent.at < query.until)
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())
