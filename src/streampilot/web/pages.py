"""Console pages over the same services as the API. Forms post, then redirect (works without JS);
htmx refreshes the live parts (app list, app status) by polling small fragments."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from streampilot.api.deps import client_of
from streampilot.domain.errors import SpecError
from streampilot.domain.readback import aligned
from streampilot.domain.states import ACTIVE_STATES, AppState
from streampilot.flink.client import FlinkError
from streampilot.services.apps import APP_SORTS, AppListQuery, spec_from
from streampilot.services.errors import ServiceError, Throttled
from streampilot.services.fleet import fleet_summary
from streampilot.services.job_metrics import app_metrics
from streampilot.services.lineage import app_lineage
from streampilot.services.platform import Platform
from streampilot.store.orm import App, Cluster, Operation
from streampilot.web.common import (
    COOKIE,
    PageAccount,
    back,
    check_origin,
    flat,
    page_account,
    platform,
    problems_of,
    render,
)
from streampilot.web.forms import SECTIONS, form_to_body, spec_to_form

public = APIRouter(include_in_schema=False)
router = APIRouter(include_in_schema=False, dependencies=[Depends(page_account)])


# ---- login ------------------------------------------------------------------------------------
@public.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", next=request.query_params.get("next", "/apps"))


@public.post("/login")
async def login(request: Request) -> Response:
    """A user's name and password (or a personal API token) start a console session."""
    form = await request.form()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    token = str(form.get("token", "")).strip()
    target = str(form.get("next") or "/apps")
    if not target.startswith("/") or target.startswith("//"):
        target = "/apps"
    check_origin(request)  # no login forged from another site
    p = platform(request)
    client = client_of(request)
    account_id: int | None = None
    try:
        if token:
            found = await p.accounts.authenticate(token, client)
            account_id = found.account_id if found is not None else None
        elif name and password:
            account = await p.accounts.check_password(name, password, client)
            account_id = account.id if account is not None else None
    except Throttled as exc:
        refused = render(request, "login.html", status=429, next=target, error=f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        refused.headers["Retry-After"] = str(int(exc.retry_after_s) + 1)
        return refused
    except ServiceError as exc:
        return render(request, "login.html", status=exc.status, next=target, error=str(exc))
    if account_id is None:
        said = "That token is not valid." if token else "Wrong user name or password."
        return render(request, "login.html", status=401, next=target, error=said)
    # The cookie names a server-side session (expiring, ended by logout), never a token or password.
    cookie = await p.web_sessions.start(account_id)
    response = RedirectResponse(target, status_code=303)
    max_age = int(p.settings.session_hours * 3600)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", max_age=max_age)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await platform(request).web_sessions.end(request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    """The fleet at a glance: apps by state, those that need attention, silent clusters, new alerts."""
    return render(request, "fleet.html", fleet=await fleet_summary(platform(request).ctx))


# ---- application list -------------------------------------------------------------------------
PAGE_SIZE = 50


def _list_query(request: Request) -> AppListQuery:
    """The apps list's filters, search, order and page from the query string (bad values: defaults)."""
    params = request.query_params
    cluster = params.get("cluster_id") or ""
    sort = params.get("sort") or "name"
    page = params.get("page") or "1"
    number = int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1
    return AppListQuery(
        state=params.get("state") or None,
        cluster_id=int(cluster) if cluster.isdigit() and len(cluster) < 10 else None,
        q=(params.get("q") or "")[:100],
        sort=sort if sort in APP_SORTS else "name",
        descending=params.get("dir") == "desc",
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )


async def _list_context(request: Request) -> dict[str, Any]:
    p = platform(request)
    query = _list_query(request)
    found, total = await p.apps.page_with_specs(query)
    teams = {t.id: t.name for t in await p.teams.list_teams()}
    rows = [
        {"app": app, "kind": spec.get("kind"), "cluster": cluster, "team": teams.get(app.team_id, "")}
        for app, spec, cluster in found
    ]
    keep = {"state": query.state or "", "cluster_id": query.cluster_id or "", "q": query.q}
    keep = {k: v for k, v in keep.items() if v}
    order = {"sort": query.sort, "dir": "desc" if query.descending else "asc"}

    def link(**changes: Any) -> str:
        return "/apps?" + urlencode({**keep, **order, **changes})

    page = query.offset // PAGE_SIZE + 1
    return {
        "rows": rows,
        "list": query,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "link": link,
        "sort_link": lambda key: link(
            sort=key, dir="desc" if key == query.sort and not query.descending else "asc", page=1
        ),
        "query": request.url.query,
    }


@router.get("/apps")
async def apps_page(request: Request) -> HTMLResponse:
    p = platform(request)
    context = await _list_context(request)
    return render(
        request,
        "apps.html",
        clusters=await p.clusters.list_clusters(),
        state=context["list"].state,
        cluster_id=context["list"].cluster_id,
        **context,
    )


@router.get("/apps/table")
async def apps_table(request: Request) -> HTMLResponse:
    return render(request, "_apps_table.html", **await _list_context(request))


# ---- create / edit ----------------------------------------------------------------------------
async def _form_context(p: Platform) -> dict[str, Any]:
    return {"clusters": await p.clusters.list_clusters(), "channels": await p.channels.list_channels()}


@router.get("/apps/new")
async def new_app(request: Request) -> HTMLResponse:
    p = platform(request)
    ctx = await _form_context(p)
    first = ctx["clusters"][0].id if ctx["clusters"] else ""
    values = {
        "kind": "sql",
        "parallelism": "1",
        "cluster_id": str(first),
        "checkpointing.enabled": "on",
        "checkpointing.interval_s": "10",
        "checkpointing.retain_on_cancel": "on",
    }
    return render(request, "app_form.html", values=values, errors={}, app=None, **ctx)


async def _form_failure(
    request: Request, p: Platform, values: dict[str, Any], app: App | None, exc: SpecError | ServiceError
) -> HTMLResponse:
    """The form again, as the user filled it, with each problem next to its field (nothing saved)."""
    if isinstance(exc, SpecError):
        return render(
            request,
            "app_form.html",
            status=422,
            values=values,
            errors=problems_of(exc),
            error_lines={pr.field: pr.line for pr in exc.problems if pr.line is not None},
            app=app,
            **await _form_context(p),
        )
    return render(
        request,
        "app_form.html",
        status=exc.status,
        values=values,
        errors={},
        app=app,
        error=str(exc),
        **await _form_context(p),
    )


async def _read_form(request: Request) -> tuple[dict[str, Any], UploadFile | None]:
    form = await request.form()
    upload = form.get("jar_file")
    return flat(form), upload if isinstance(upload, UploadFile) and upload.filename else None


async def _body_from(p: Platform, values: dict[str, Any], upload: UploadFile | None) -> dict[str, Any]:
    if upload is not None and values.get("kind") == "jar":
        jar = await p.jars.store(upload.filename or "job.jar", await upload.read())
        values["jar_id"] = str(jar.id)
    body = form_to_body(values)
    for foreign in {
        "sql": ("jar_id", "entry_class", "python", "args"),
        "jar": ("sql", "python"),
        "python": ("sql", "jar_id", "entry_class"),
    }.get(str(values.get("kind")), ()):
        body.pop(foreign, None)
    return body


@router.post("/apps/new")
async def create_app(request: Request) -> Response:
    p = platform(request)
    values, upload = await _read_form(request)
    try:
        body = await _body_from(p, values, upload)
        name = str(body.pop("name", "")).strip()
        cluster = str(body.pop("cluster_id", ""))
        if not cluster.isdigit():
            raise SpecError.one("cluster_id", "choose a cluster (add one on the Clusters page)")
        app = await p.apps.create(name, int(cluster), spec_from(body))
    except (SpecError, ServiceError) as exc:
        return await _form_failure(request, p, values, None, exc)
    return back(f"/apps/{app.id}", notice=f"Application {app.name} created.")


@router.get("/apps/{app_id}/edit")
async def edit_app(request: Request, app_id: int) -> HTMLResponse:
    p = platform(request)
    app = await p.apps.get(app_id)
    _, spec = await p.apps.spec(app_id)
    return render(
        request,
        "app_form.html",
        values=spec_to_form(spec, app.name, app.cluster_id),
        errors={},
        app=app,
        **await _form_context(p),
    )


@router.post("/apps/{app_id}/edit")
async def save_app(request: Request, app_id: int) -> Response:
    p = platform(request)
    app = await p.apps.get(app_id)
    values, upload = await _read_form(request)
    try:
        body = await _body_from(p, values, upload)
        changes: dict[str, Any] = {"name": str(body.pop("name", app.name)).strip() or app.name}
        cluster = str(body.pop("cluster_id", app.cluster_id))
        changes["cluster_id"] = int(cluster) if cluster.isdigit() else app.cluster_id
        # The form shows the whole spec: unset optional sections become null (removed).
        for section in (*SECTIONS, "alert_reasons", "entry_class"):
            body.setdefault(section, None)
        body.setdefault("alert_channel_ids", [])
        body.setdefault("args", [])
        changes.update(body)
        app = await p.apps.update(app_id, changes)
    except (SpecError, ServiceError) as exc:
        return await _form_failure(request, p, values, app, exc)
    return back(f"/apps/{app_id}", notice=f"Saved as version {app.current_version}.")


# ---- detail -----------------------------------------------------------------------------------
async def _live(p: Platform, app: App, cluster: Cluster) -> dict[str, Any]:
    """Checkpoint history and exceptions straight from Flink; a slow cluster never blocks the page."""
    if not app.job_id:
        return {"history": [], "exceptions": [], "live_error": None, "flink_ui": cluster.rest_url}
    rest = await p.apps.flink_api(app)
    if rest is None:
        why = "Flink's REST API is not reachable for this app: set the cluster's options.rest_url_template"
        return {"history": [], "exceptions": [], "live_error": why, "flink_ui": None}
    client, job_id = rest
    ui = f"{client.base_url}/#/job/running/{job_id}/overview"
    try:
        stats, exceptions = await asyncio.wait_for(
            asyncio.gather(client.checkpoints(job_id), client.exceptions(job_id)), timeout=2
        )
    except (FlinkError, TimeoutError) as exc:
        return {
            "history": [],
            "exceptions": [],
            "live_error": f"Flink did not answer: {exc or 'timeout'}",
            "flink_ui": ui,
        }
    history = [c.__dict__ for c in stats.history]
    return {"history": history, "exceptions": exceptions[:10], "live_error": None, "stats": stats, "flink_ui": ui}


@router.get("/apps/{app_id}")
async def app_page(request: Request, app_id: int) -> HTMLResponse:
    p = platform(request)
    app = await p.apps.get(app_id)
    _, spec = await p.apps.spec(app_id)
    cluster = await p.clusters.get(app.cluster_id)
    a, b = request.query_params.get("a"), request.query_params.get("b")
    diff = None
    if a and b and a.isdigit() and b.isdigit():
        try:
            diff = await p.apps.diff(app_id, int(a), int(b)) or "(no difference)"
        except ServiceError as exc:
            diff = str(exc)
    return render(
        request,
        "app_detail.html",
        app=app,
        spec=spec,
        cluster=cluster,
        events=await p.apps.events(app_id, 200),
        savepoints=await p.lifecycle.snapshots(app_id, "savepoint"),
        checkpoints=await p.lifecycle.snapshots(app_id, "checkpoint"),
        versions=await p.apps.versions(app_id),
        lineage=await app_lineage(p.ctx, app_id),
        diff=diff,
        a=a,
        b=b,
        readback_rows=aligned(app.launch_config or {}, app.config_readback),
        metrics_every_s=p.settings.metrics.every_s,
        operation=await _latest_operation(p, app_id),
        **{**await _live(p, app, cluster), **await _actions_context(p, app, cluster)},
    )


@router.get("/apps/{app_id}/metrics.json")
async def app_metrics_json(request: Request, app_id: int) -> JSONResponse:
    """The charts' data: what ``GET /api/v1/apps/{id}/metrics`` answers, for the logged-in user."""
    p = platform(request)
    await p.apps.get(app_id)
    raw = request.query_params.get("window_s", "3600")
    if not raw.isdigit() or not 60 <= int(raw) <= 7 * 86400:
        return JSONResponse({"detail": [{"field": "window_s", "message": "seconds from 60 to 604800"}]}, 422)
    return JSONResponse(await app_metrics(p.ctx, app_id, int(raw)))


@router.get("/apps/{app_id}/plan")
async def app_plan(request: Request, app_id: int) -> HTMLResponse:
    """EXPLAIN of the app's current script, or the field errors that keep Flink from planning it."""
    p = platform(request)
    app = await p.apps.get(app_id)
    version, spec = await p.apps.spec(app_id)
    cluster = await p.clusters.get(app.cluster_id)
    try:
        plan, problems = await p.explainer.explain(spec, cluster), []
    except SpecError as exc:
        plan, problems = "", [pr.as_dict() for pr in exc.problems]
    return render(request, "app_plan.html", app=app, version=version, plan=plan, problems=problems)


async def _latest_operation(p: Platform, app_id: int) -> Operation | None:
    latest = await p.lifecycle.operations_of(app_id, 1)
    return latest[0] if latest else None


def _actions_key(app: App) -> str:
    """What the action buttons depend on: they are sent again only when it changes."""
    active = AppState(app.state) in ACTIVE_STATES
    return f"{int(active)}-{app.running_version}-{app.current_version}"


async def _actions_context(p: Platform, app: App, cluster: Cluster) -> dict[str, Any]:
    snapshots = await p.lifecycle.snapshots(app.id, "savepoint") or await p.lifecycle.snapshots(app.id, "checkpoint")
    rest = await p.apps.flink_api(app)
    ui = f"{rest[0].base_url}/#/job/running/{rest[1]}/overview" if rest else None
    if not app.job_id:
        ui = cluster.rest_url
    return {
        "active": AppState(app.state) in ACTIVE_STATES,
        "has_snapshots": bool(snapshots),
        "actions_key": _actions_key(app),
        "flink_ui": ui,
    }


@router.get("/apps/{app_id}/status")
async def app_status(request: Request, app_id: int) -> HTMLResponse:
    p = platform(request)
    app = await p.apps.get(app_id)
    return render(
        request,
        "_status.html",
        app=app,
        active=AppState(app.state) in ACTIVE_STATES,
        operation=await _latest_operation(p, app_id),
    )


@router.get("/apps/{app_id}/actions")
async def app_actions(request: Request, app_id: int) -> Response:
    p = platform(request)
    app = await p.apps.get(app_id)
    if request.query_params.get("shown") == _actions_key(app):
        return Response(status_code=204)
    cluster = await p.clusters.get(app.cluster_id)
    return render(request, "_actions.html", app=app, **await _actions_context(p, app, cluster))


async def _act(app_id: int, what: str, work: Any) -> Response:
    try:
        result = await work
    except SpecError as exc:
        return back(f"/apps/{app_id}", error=f"{what} refused: " + "; ".join(problems_of(exc).values()))
    except ServiceError as exc:
        return back(f"/apps/{app_id}", error=f"{what} failed: {exc}")
    return back(f"/apps/{app_id}", notice=f"{what} requested (operation {result.id}); its steps show below.")


@router.post("/apps/{app_id}/start")
async def start(request: Request, app_id: int, who: PageAccount) -> Response:
    form = await request.form()
    version = str(form.get("version") or "")
    return await _act(
        app_id,
        "Start",
        platform(request).lifecycle.start(
            app_id,
            restore=str(form.get("restore") or "none"),
            allow_non_restored_state=bool(form.get("allow_non_restored_state")),
            version=int(version) if version.isdigit() else None,
            actor=who.name,
        ),
    )


@router.post("/apps/{app_id}/stop")
async def stop(request: Request, app_id: int, who: PageAccount) -> Response:
    form = await request.form()
    return await _act(
        app_id,
        "Stop",
        platform(request).lifecycle.stop(
            app_id, savepoint=form.get("savepoint", "on") == "on", drain=bool(form.get("drain")), actor=who.name
        ),
    )


@router.post("/apps/{app_id}/upgrade")
async def upgrade(request: Request, app_id: int, who: PageAccount) -> Response:
    return await _act(app_id, "Upgrade", platform(request).lifecycle.upgrade(app_id, actor=who.name))


@router.post("/apps/{app_id}/cancel")
async def cancel(request: Request, app_id: int, who: PageAccount) -> Response:
    return await _act(app_id, "Cancel", platform(request).lifecycle.cancel(app_id, actor=who.name))


@router.post("/apps/{app_id}/savepoint")
async def savepoint(request: Request, app_id: int, who: PageAccount) -> Response:
    return await _act(app_id, "Savepoint", platform(request).lifecycle.savepoint(app_id, actor=who.name))


@router.post("/apps/{app_id}/delete")
async def delete(request: Request, app_id: int) -> Response:
    try:
        await platform(request).apps.delete(app_id)
    except ServiceError as exc:
        return back(f"/apps/{app_id}", error=str(exc))
    return back("/apps", notice="Application deleted.")
