"""Health, Flink homes, jars, and the key of stored secrets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, UploadFile

from streampilot import __version__
from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import FlinkHomeCreate, FlinkHomeOut, JarOut
from streampilot.services import access
from streampilot.services.rotation import rotate_secrets

public = APIRouter(prefix="/api/v1", tags=["health"])
router = APIRouter(prefix="/api/v1", dependencies=[Depends(account)])


@public.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/flink-homes", tags=["flink-homes"])
async def list_homes(p: PlatformDep) -> list[FlinkHomeOut]:
    return [FlinkHomeOut.of(h) for h in await p.clusters.list_homes()]


@router.post("/flink-homes", status_code=201, tags=["flink-homes"])
async def add_home(body: FlinkHomeCreate, p: PlatformDep) -> FlinkHomeOut:
    return FlinkHomeOut.of(await p.clusters.add_home(body.name, body.path))


@router.post("/jars", status_code=201, tags=["jars"])
async def upload_jar(
    file: UploadFile,
    p: PlatformDep,
    team_id: Annotated[str | None, Form(pattern=r"^([1-9][0-9]{0,8}|null)?$", description="a team's id")] = None,
) -> JarOut:
    """Upload a jar for ``team_id`` (default: your only team where you may create)."""
    content = await file.read()
    team = int(team_id) if team_id and team_id != "null" else None  # a form's fields are text
    return JarOut.of(await p.jars.store(file.filename or "job.jar", content, team))


@router.post("/secrets/rotate", tags=["secrets"])
async def rotate(p: PlatformDep) -> dict[str, int]:
    """A new key for stored secrets; everything sealed again with it, the old key dropped (platform admins)."""
    access.require_admin("rotate the key of stored secrets")
    return await rotate_secrets(p.ctx)
