"""Jars the Flink Kubernetes Operator fetches for session jobs (services/artifacts.py): no login,
each URL signed for its one file."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from streampilot.api.deps import PlatformDep

router = APIRouter(tags=["artifacts"])


@router.get("/artifacts/{digest}/{signature}/{name}", response_class=FileResponse)
async def artifact(digest: str, signature: str, name: str, p: PlatformDep) -> FileResponse:
    found = await asyncio.to_thread(p.ctx.artifacts.find, digest, signature)
    if found is None:
        raise HTTPException(status_code=404, detail="no such artifact")
    return FileResponse(found, media_type="application/java-archive", filename=name)
