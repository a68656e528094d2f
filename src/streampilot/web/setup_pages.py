"""Console pages for the platform's setup: clusters (standalone, local, Kubernetes), Flink homes
and alert channels. The application pages are in web/pages.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import K8S_KINDS
from streampilot.services.errors import ServiceError
from streampilot.web.common import (
    back,
    chosen_team,
    creatable_teams,
    page_account,
    platform,
    problems_of,
    render,
    team_names,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_account)])


@router.get("/clusters")
async def clusters_page(request: Request) -> HTMLResponse:
    return await _clusters(request)


async def _clusters(request: Request, status: int = 200, **form: Any) -> HTMLResponse:
    p = platform(request)
    clusters = await p.clusters.list_clusters()
    runtime = await asyncio.gather(*(p.clusters.status(c) for c in clusters))
    return render(
        request,
        "clusters.html",
        status=status,
        clusters=list(zip(clusters, runtime, strict=True)),
        homes=await p.clusters.list_homes(),
        teams=await creatable_teams(request),
        **form,
    )


@router.post("/clusters")
async def add_cluster(request: Request) -> Response:
    values = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    kind = values.get("kind", "")
    try:
        options = yaml.safe_load(values.get("options") or "") if kind in K8S_KINDS else None
        if options is not None and not isinstance(options, dict):
            raise SpecError.one("options", "write the options as YAML keys and values, e.g. 'namespace: flink'")
        await platform(request).clusters.add(
            values.get("name", "").strip(),
            kind,
            rest_url=values.get("rest_url") or None,
            options_raw=options,
            team_id=chosen_team(values),
        )
    except yaml.YAMLError as exc:
        return await _clusters(request, 422, values=values, errors={"options": f"not valid YAML: {exc}"})
    except SpecError as exc:
        # The form again as it was filled, each problem beside its field: nothing typed is lost.
        return await _clusters(request, 422, values=values, errors=problems_of(exc))
    except ServiceError as exc:
        return await _clusters(request, exc.status, values=values, error=str(exc))
    return back("/clusters", notice="Cluster added.")


@router.post("/clusters/{cluster_id}/{action}")
async def cluster_action(request: Request, cluster_id: int, action: str) -> Response:
    p = platform(request)
    try:
        if action == "start":
            await p.clusters.start(cluster_id)
        elif action == "stop":
            await p.clusters.stop(cluster_id)
        else:
            return back("/clusters", error=f"unknown action {action!r}")
    except ServiceError as exc:
        return back("/clusters", error=str(exc))
    return back("/clusters", notice=f"Cluster {action} done.")


@router.get("/alert-channels")
async def channels_page(request: Request) -> HTMLResponse:
    p = platform(request)
    recent = await p.channels.recent_deliveries(50)
    return render(
        request,
        "channels.html",
        channels=[p.channels.masked(c) for c in await p.channels.list_channels()],
        deliveries=recent[:50],
        values={},
        errors={},
        teams=await creatable_teams(request),
        team_names=await team_names(request),
    )


@router.post("/alert-channels")
async def add_channel(request: Request) -> Response:
    p = platform(request)
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    try:
        config = json.loads(values.get("config") or "{}")
        if not isinstance(config, dict):
            raise ValueError("the configuration must be a JSON object")
        await p.channels.create(values.get("name", "").strip(), values.get("kind", ""), config, chosen_team(values))
    except ValueError as exc:
        errors = {"config": f"not valid JSON: {exc}"}
        return await _channels_again(request, values, errors)
    except SpecError as exc:
        return await _channels_again(request, values, problems_of(exc))
    except ServiceError as exc:
        return back("/alert-channels", error=str(exc))
    return back("/alert-channels", notice="Channel added.")


async def _channels_again(request: Request, values: dict[str, str], errors: dict[str, str]) -> HTMLResponse:
    p = platform(request)
    return render(
        request,
        "channels.html",
        status=422,
        channels=[p.channels.masked(c) for c in await p.channels.list_channels()],
        deliveries=[],
        values=values,
        errors=errors,
        teams=await creatable_teams(request),
        team_names=await team_names(request),
    )


@router.post("/alert-channels/{channel_id}/test")
async def test_channel(request: Request, channel_id: int) -> Response:
    try:
        result = await platform(request).channels.test(channel_id)
    except ServiceError as exc:
        return back("/alert-channels", error=str(exc))
    if result.ok:
        return back("/alert-channels", notice=f"Test message delivered ({result.status}).")
    return back("/alert-channels", error=f"Test message not delivered: {result.detail}")
