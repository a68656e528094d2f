"""Alerts raised for applications (newest first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from streampilot.api.deps import PlatformDep, account
from streampilot.services.lineage import fleet_lineage
from streampilot.store.orm import Alert

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
    out = []
    for alert, deliveries in await p.channels.alerts(app_id, limit):
        item = AlertOut.of(alert)
        item.deliveries = deliveries
        out.append(item)
    return out


@router.get("/lineage", tags=["lineage"])
async def lineage(p: PlatformDep) -> dict[str, Any]:
    """Across your apps: each dataset with the apps writing and reading it, and app-to-app edges."""
    return await fleet_lineage(p.ctx)


@router.get("/alerts")
async def list_alerts(
    p: PlatformDep, app_id: int | None = Query(None, ge=1, le=2**31 - 1), limit: int = Query(200, ge=1, le=5000)
) -> list[AlertOut]:
    return await _alerts(p, app_id, limit)


@router.get("/apps/{app_id}/alerts")
async def app_alerts(app_id: int, p: PlatformDep, limit: int = Query(200, ge=1, le=5000)) -> list[AlertOut]:
    await p.apps.get(app_id)
    return await _alerts(p, app_id, limit)
