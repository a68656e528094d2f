"""EXPLAIN of SQL: an app's saved script (``/apps/{id}/explain``) or one being edited (``/explain``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import ExplainOut, ExplainRequest
from streampilot.domain.access import Role
from streampilot.domain.apps import AppKind, AppSpec

router = APIRouter(prefix="/api/v1", tags=["explain"], dependencies=[Depends(account)])


@router.post("/apps/{app_id}/explain")
async def explain_app(app_id: int, p: PlatformDep, version: int | None = Query(None, ge=1, le=2**31 - 1)) -> ExplainOut:
    """Flink's plan of the app's script (its current version unless ``version`` is given)."""
    app = await p.apps.get(app_id)
    v, spec = await p.apps.spec(app_id, version)
    cluster = await p.clusters.get(app.cluster_id)
    return ExplainOut(version=v, plan=await p.explainer.explain(spec, cluster))


@router.post("/explain")
async def explain_sql(body: ExplainRequest, p: PlatformDep) -> ExplainOut:
    # The planner runs on the platform's host with the given jars: a developer's call.
    cluster = await p.clusters.get(body.cluster_id, Role.DEVELOPER, "EXPLAIN SQL on this cluster")
    spec = AppSpec(
        kind=AppKind.SQL, sql=body.sql, runtime_mode=body.runtime_mode, dependency_jar_ids=body.dependency_jar_ids
    )
    return ExplainOut(version=None, plan=await p.explainer.explain(spec, cluster))
