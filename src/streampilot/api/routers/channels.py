"""Alert channels: create, list, edit, delete, test-send; secrets are always masked."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import Body

router = APIRouter(prefix="/api/v1/alert-channels", tags=["alerts"], dependencies=[Depends(account)])


class ChannelCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["email", "webhook", "slack", "dingtalk", "wecom", "lark"]
    config: dict[str, Any]
    team_id: int | None = Field(
        default=None, description="The owning team (default: your only team where you may create)"
    )


class ChannelPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None


@router.get("")
async def list_channels(p: PlatformDep) -> list[dict[str, Any]]:
    return [p.channels.masked(c) for c in await p.channels.list_channels()]


@router.post("", status_code=201)
async def create_channel(body: ChannelCreate, p: PlatformDep) -> dict[str, Any]:
    return p.channels.masked(await p.channels.create(body.name, body.kind, body.config, body.team_id))


@router.get("/{channel_id}")
async def get_channel(channel_id: int, p: PlatformDep) -> dict[str, Any]:
    return p.channels.masked(await p.channels.get(channel_id))


@router.patch("/{channel_id}")
async def patch_channel(channel_id: int, body: ChannelPatch, p: PlatformDep) -> dict[str, Any]:
    return p.channels.masked(await p.channels.update(channel_id, body.name, body.config))


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
    return await p.channels.deliveries(channel_id)
