"""Alert channels: create, list, edit, delete, test-send; secrets are always masked."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from streampilot.api.deps import PlatformDep, account
from streampilot.services.channels import masked
from streampilot.store.orm import AlertDelivery, DeliveryAttempt

router = APIRouter(prefix="/api/v1/alert-channels", tags=["alerts"], dependencies=[Depends(account)])


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    kind: str
    config: dict[str, Any]


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None


@router.get("")
async def list_channels(p: PlatformDep) -> list[dict[str, Any]]:
    return [masked(c) for c in await p.channels.list_channels()]


@router.post("", status_code=201)
async def create_channel(body: ChannelCreate, p: PlatformDep) -> dict[str, Any]:
    return masked(await p.channels.create(body.name, body.kind, body.config))


@router.get("/{channel_id}")
async def get_channel(channel_id: int, p: PlatformDep) -> dict[str, Any]:
    return masked(await p.channels.get(channel_id))


@router.patch("/{channel_id}")
async def patch_channel(channel_id: int, body: ChannelPatch, p: PlatformDep) -> dict[str, Any]:
    return masked(await p.channels.update(channel_id, body.name, body.config))


@router.delete("/{channel_id}", status_code=204)
async def delete_channel(channel_id: int, p: PlatformDep) -> None:
    await p.channels.delete(channel_id)


@router.post("/{channel_id}/test")
async def test_channel(channel_id: int, p: PlatformDep) -> dict[str, Any]:
    """Send a test message now and report the receiver's answer."""
    r = await p.channels.test(channel_id)
    return {"ok": r.ok, "temporary": r.temporary, "status_code": r.status, "detail": r.detail}


@router.get("/{channel_id}/deliveries")
async def channel_deliveries(channel_id: int, p: PlatformDep) -> list[dict[str, Any]]:
    await p.channels.get(channel_id)
    async with p.ctx.sessions() as s:
        return await deliveries(s, AlertDelivery.channel_id == channel_id)


async def deliveries(s: Any, where: Any) -> list[dict[str, Any]]:
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
