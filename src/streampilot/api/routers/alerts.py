"""Alerts raised for applications (newest first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from streampilot.api.deps import PlatformDep, account
from streampilot.api.routers.channels import deliveries
from streampilot.store.orm import Alert, AlertDelivery

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[Depends(account)])


class AlertOut(BaseModel):
    id: int
    deliveries: list[dict[str, Any]] = []
    app_id: int | None
    at: datetime
    reason: str
    title: str
    message: str
    facts: dict[str, Any]

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls(id=a.id, app_id=a.app_id, at=a.at, reason=a.reason, title=a.title, message=a.message, facts=a.facts)


async def _alerts(p: PlatformDep, app_id: int | None, limit: int) -> list[AlertOut]:
    q = sa.select(Alert).order_by(Alert.id.desc()).limit(limit)
    if app_id is not None:
        q = q.where(Alert.app_id == app_id)
    async with p.ctx.sessions() as s:
        out = [AlertOut.of(a) for a in (await s.execute(q)).scalars()]
        by_alert: dict[int, list[dict[str, Any]]] = {}
        if out:
            for d in reversed(await deliveries(s, AlertDelivery.alert_id.in_([a.id for a in out]))):
                by_alert.setdefault(d["alert_id"], []).append(d)
        for item in out:
            item.deliveries = by_alert.get(item.id, [])
        return out


@router.get("/alerts")
async def list_alerts(
    p: PlatformDep, app_id: int | None = None, limit: int = Query(200, ge=1, le=5000)
) -> list[AlertOut]:
    return await _alerts(p, app_id, limit)


@router.get("/apps/{app_id}/alerts")
async def app_alerts(app_id: int, p: PlatformDep, limit: int = Query(200, ge=1, le=5000)) -> list[AlertOut]:
    await p.apps.get(app_id)
    return await _alerts(p, app_id, limit)
