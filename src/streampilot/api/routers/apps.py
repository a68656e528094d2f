"""Applications: CRUD, versions, lifecycle actions, savepoints, checkpoints and the timeline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from streampilot.api.deps import AccountDep, PlatformDep, account
from streampilot.api.hardening import MAX_ID
from streampilot.api.schemas import (
    AppCreate,
    AppOut,
    AppPatch,
    AttachAction,
    EventOut,
    OperationAccepted,
    OperationOut,
    SnapshotOut,
    StartAction,
    StopAction,
    UpgradeAction,
)
from streampilot.domain.apps import AppSpec
from streampilot.domain.states import AppState
from streampilot.flink.client import FlinkClient, FlinkError
from streampilot.services.apps import AppListQuery
from streampilot.services.errors import Unavailable
from streampilot.services.job_metrics import app_metrics
from streampilot.services.lineage import app_lineage
from streampilot.services.platform import Platform
from streampilot.services.submissions import launch_config
from streampilot.store.orm import App, Operation

router = APIRouter(prefix="/api/v1/apps", tags=["apps"], dependencies=[Depends(account)])


async def _out(p: Platform, app: App, with_spec: bool = False) -> AppOut:
    _, spec = await p.apps.spec(app.id)
    return AppOut.of(app, spec, with_spec=with_spec)


@router.get("")
async def list_apps(
    p: PlatformDep,
    response: Response,
    state: AppState | None = None,
    cluster_id: int | None = Query(None, ge=1, le=MAX_ID),
    q: str = Query("", max_length=100, description="a part of the name (any case)"),
    sort: Literal["name", "state", "cluster", "started", "updated"] = "name",
    order: Literal["asc", "desc"] = "asc",
    limit: int | None = Query(None, ge=1, le=10_000, description="at most this many (default: all)"),
    offset: int = Query(0, ge=0, le=2**31 - 1),
) -> list[AppOut]:
    """The apps you see, searched and sorted, all or a page (``limit``, ``offset``); ``X-Total-Count``
    says how many match."""
    query = AppListQuery(
        state=state.value if state else None,
        cluster_id=cluster_id,
        q=q,
        sort=sort,
        descending=order == "desc",
        offset=offset,
        limit=limit,
    )
    rows, total = await p.apps.page_with_specs(query)
    response.headers["X-Total-Count"] = str(total)
    return [AppOut.of(a, AppSpec.model_validate(spec)) for a, spec, _ in rows]


@router.post("", status_code=201)
async def create_app(body: AppCreate, p: PlatformDep) -> AppOut:
    spec = AppSpec.model_validate(body.model_dump(exclude={"name", "cluster_id", "team_id"}))
    app = await p.apps.create(body.name, body.cluster_id, spec, body.team_id)
    return await _out(p, app, with_spec=True)


@router.get("/{app_id}")
async def get_app(app_id: int, p: PlatformDep) -> AppOut:
    return await _out(p, await p.apps.get(app_id), with_spec=True)


@router.patch("/{app_id}")
async def patch_app(app_id: int, body: AppPatch, p: PlatformDep) -> AppOut:
    changes = body.model_dump(exclude_unset=True)
    return await _out(p, await p.apps.update(app_id, changes), with_spec=True)


@router.delete("/{app_id}", status_code=204)
async def delete_app(app_id: int, p: PlatformDep) -> None:
    await p.apps.delete(app_id)


async def _accepted(p: Platform, op: Operation) -> OperationAccepted:
    return OperationAccepted(operation=OperationOut.of(op), app=await _out(p, await p.apps.get(op.app_id)))


# A retried request with the same key answers with the operation the first one began (its answer lost
# on the way, or the database connection dropped): never a second operation, never a 409 for the first.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Any unique string per intended operation; a retry with the same key returns that operation",
    ),
]


@router.post("/{app_id}/start", status_code=202)
async def start_app(
    app_id: int, p: PlatformDep, who: AccountDep, key: IdempotencyKey = None, body: StartAction | None = None
) -> OperationAccepted:
    """Start the app's job: an operation that ends when the job runs (all tasks) or fails to."""
    action = body or StartAction()
    op = await p.lifecycle.start(
        app_id,
        restore=action.restore,
        allow_non_restored_state=action.allow_non_restored_state,
        version=action.version,
        actor=who.name,
        idempotency_key=key,
    )
    return await _accepted(p, op)


@router.post("/{app_id}/stop", status_code=202)
async def stop_app(
    app_id: int, p: PlatformDep, who: AccountDep, key: IdempotencyKey = None, body: StopAction | None = None
) -> OperationAccepted:
    """Stop with a savepoint (or cancel when ``savepoint`` is false); the result has the savepoint."""
    action = body or StopAction()
    op = await p.lifecycle.stop(
        app_id, savepoint=action.savepoint, drain=action.drain, actor=who.name, idempotency_key=key
    )
    return await _accepted(p, op)


@router.post("/{app_id}/upgrade", status_code=202)
async def upgrade_app(
    app_id: int, p: PlatformDep, who: AccountDep, key: IdempotencyKey = None, body: UpgradeAction | None = None
) -> OperationAccepted:
    """Run another version (default: the current one) of a running app, keeping its state."""
    action = body or UpgradeAction()
    op = await p.lifecycle.upgrade(
        app_id, version=action.version, drain=action.drain, actor=who.name, idempotency_key=key
    )
    return await _accepted(p, op)


@router.post("/{app_id}/cancel", status_code=202)
async def cancel_app(app_id: int, p: PlatformDep, who: AccountDep, key: IdempotencyKey = None) -> OperationAccepted:
    return await _accepted(p, await p.lifecycle.cancel(app_id, actor=who.name, idempotency_key=key))


@router.post("/{app_id}/attach")
async def attach_app(app_id: int, body: AttachAction, p: PlatformDep, who: AccountDep) -> AppOut:
    """Attach the application to a job already running on its cluster (mapping)."""
    return await _out(p, await p.lifecycle.attach(app_id, body.job_id, actor=who.name))


@router.post("/{app_id}/savepoints", status_code=202)
async def trigger_savepoint(
    app_id: int, p: PlatformDep, who: AccountDep, key: IdempotencyKey = None
) -> OperationAccepted:
    """Take a savepoint: its path is the operation's ``result.path``."""
    return await _accepted(p, await p.lifecycle.savepoint(app_id, actor=who.name, idempotency_key=key))


@router.get("/{app_id}/operations")
async def list_operations(app_id: int, p: PlatformDep, limit: int = Query(50, ge=1, le=1000)) -> list[OperationOut]:
    return [OperationOut.of(o) for o in await p.lifecycle.operations_of(app_id, limit)]


@router.get("/{app_id}/savepoints")
async def list_savepoints(app_id: int, p: PlatformDep) -> list[SnapshotOut]:
    return [SnapshotOut.of(s) for s in await p.lifecycle.snapshots(app_id, "savepoint")]


async def _job_rest(p: Platform, app: App) -> tuple[FlinkClient, str] | str | None:
    """Flink's REST API for the app's job: None without a job, a reason when there is no API to ask."""
    if not app.job_id:
        return None
    found = await p.apps.flink_api(app)
    if found is None:
        return "Flink's REST API is not reachable for this app: set the cluster's options.rest_url_template"
    return found


@router.get("/{app_id}/checkpoints")
async def list_checkpoints(app_id: int, p: PlatformDep) -> dict[str, Any]:
    """Retained checkpoints we know of, plus Flink's live statistics for the current job."""
    app = await p.apps.get(app_id)
    retained = [SnapshotOut.of(s).model_dump(mode="json") for s in await p.lifecycle.snapshots(app_id, "checkpoint")]
    live: dict[str, Any] | None = None
    rest = await _job_rest(p, app)
    if isinstance(rest, str):
        live = {"error": rest}
    elif rest is not None:
        try:
            stats = await rest[0].checkpoints(rest[1])
            live = {
                "counts": {
                    "completed": stats.completed,
                    "failed": stats.failed,
                    "in_progress": stats.in_progress,
                    "restored": stats.restored,
                },
                "restored_from": stats.latest_restored_path,
                "history": [c.__dict__ for c in stats.history],
            }
        except FlinkError as exc:
            live = {"error": str(exc)}
    return {"retained": retained, "job": live, "latest": app.last_checkpoint}


@router.get("/{app_id}/events")
async def list_events(app_id: int, p: PlatformDep, limit: int = Query(200, ge=1, le=5000)) -> list[EventOut]:
    return [EventOut.of(e) for e in await p.apps.events(app_id, limit)]


@router.get("/{app_id}/versions")
async def list_versions(app_id: int, p: PlatformDep) -> list[dict[str, Any]]:
    return [{"version": v.version, "created_at": v.created_at, "spec": v.spec} for v in await p.apps.versions(app_id)]


@router.get("/{app_id}/versions/diff")
async def diff_versions(
    app_id: int, p: PlatformDep, a: int = Query(ge=1, le=MAX_ID), b: int = Query(ge=1, le=MAX_ID)
) -> dict[str, str]:
    return {"diff": await p.apps.diff(app_id, a, b)}


@router.get("/{app_id}/exceptions")
async def list_exceptions(app_id: int, p: PlatformDep) -> list[dict[str, Any]]:
    app = await p.apps.get(app_id)
    rest = await _job_rest(p, app)
    if rest is None:
        return []
    if isinstance(rest, str):
        raise Unavailable(rest)
    try:
        return await rest[0].exceptions(rest[1])
    except FlinkError as exc:
        raise Unavailable(f"could not read the job's exceptions from Flink: {exc}") from None


@router.get("/{app_id}/lineage")
async def get_lineage(app_id: int, p: PlatformDep) -> dict[str, Any]:
    """The app's sources and sinks as its job's JobManager told them (Flink 2.x, with the push listener);
    ``lineage`` is null until one did."""
    await p.apps.get(app_id)
    return {"lineage": await app_lineage(p.ctx, app_id)}


@router.get("/{app_id}/metrics")
async def get_metrics(
    app_id: int,
    p: PlatformDep,
    window_s: Annotated[
        int, Query(ge=60, le=7 * 86400, description="how far back, in seconds (60 s to 7 days)")
    ] = 3600,
) -> dict[str, Any]:
    """The app's job metrics over the window: ``series`` of the job (``{name: [[ts_ms, value], ...]}``:
    records_in_per_s, records_out_per_s, busy_ratio, backpressured_ratio, watermark_lag_ms, restarts,
    checkpoint_duration_ms, checkpoint_size_bytes), each vertex's ``series``, the ``checkpoints``
    (failed ones included), ``units`` and the ``step_s`` between points (coarser for long windows)."""
    await p.apps.get(app_id)
    return await app_metrics(p.ctx, app_id, window_s)


@router.get("/{app_id}/launch-config")
async def get_launch_config(app_id: int, p: PlatformDep) -> dict[str, Any]:
    """What was submitted for the running job, and what the current version would submit."""
    app = await p.apps.get(app_id)
    _, spec = await p.apps.spec(app_id)
    resolved = await p.variables.resolve(spec, app.team_id)  # ${name} resolved, secrets masked
    return {
        "submitted": app.launch_config,
        "running_version": app.running_version,
        "current_version": app.current_version,
        "current": resolved.masked(launch_config(resolved.spec, app.name)),
        "config_verified": app.config_verified,
        "config_mismatches": app.config_mismatches or [],
        "readback": app.config_readback,
    }
