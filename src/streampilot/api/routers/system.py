"""Health, Flink homes, jars, and the key of stored secrets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Header, Path, UploadFile
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from streampilot import __version__
from streampilot.api.deps import AccountDep, PlatformDep, account
from streampilot.api.schemas import FlinkHomeCreate, FlinkHomeOut, JarOut
from streampilot.domain.access import SYSTEM
from streampilot.services import access
from streampilot.services.fleet import fleet_summary
from streampilot.services.leases import instances
from streampilot.services.push import PushReceiver
from streampilot.services.rotation import rotate_secrets

public = APIRouter(prefix="/api/v1", tags=["health"])
metrics_router = APIRouter(tags=["health"])
router = APIRouter(prefix="/api/v1", dependencies=[Depends(account)])


@public.get("/health")
async def health(p: PlatformDep) -> dict[str, str]:
    """The process answers (liveness); ``instance_id`` names the instance that answered."""
    return {"status": "ok", "version": __version__, "instance_id": p.instance_id}


@public.post("/push/{cluster_id}", status_code=202, tags=["push"])
async def push(
    cluster_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    p: PlatformDep,
    token: Annotated[str, Header(alias="X-Streampilot-Push", max_length=100)],
    event: Annotated[dict[str, Any], Body(description="kind (status or created), job_id, at_ms, ...")],
) -> dict[str, str]:
    """A JobManager's job event (streampilot's status listener): the job is observed at once."""
    with access.acting_as(SYSTEM):
        said = await PushReceiver(p.ctx).receive(cluster_id, token, event, p.tracker.observe_app)
    return {"result": said}


@public.get("/health/ready", responses={503: {"description": "the database or a loop is not working"}})
async def ready(p: PlatformDep) -> JSONResponse:
    """Whether this instance does its work: the database answers and every loop keeps passing."""
    checks = await p.readiness()
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ok else "not ready", "instance_id": p.instance_id, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(p: PlatformDep, who: AccountDep) -> Response:
    """The platform's metrics in Prometheus' text format (platform admins' tokens)."""
    access.require_admin("read the platform's metrics")
    return Response(p.ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/instances", tags=["health"])
async def list_instances(p: PlatformDep) -> list[dict[str, object]]:
    """The streampilot instances sharing this database, each with the clusters it watches (platform admins)."""
    access.require_admin("see the platform's instances")
    return await instances(p.ctx)


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


@router.get("/fleet", tags=["fleet"])
async def fleet(p: PlatformDep) -> dict[str, Any]:
    """The apps you see at a glance: ``by_state`` counts, ``unhealthy`` apps with their ``reasons`` (a
    troubled state, settings that differ, an unconfirmed status, a metric alert's breach), clusters that
    do not answer (``clusters_unknown``) and the ten newest alerts."""
    return await fleet_summary(p.ctx)
