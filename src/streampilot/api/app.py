"""The FastAPI application: routers, error mapping, and the platform's life around the server."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc

from streampilot import __version__
from streampilot.api.hardening import MAX_ID, Hardening, out_of_range
from streampilot.api.openapi import document_errors
from streampilot.api.routers import (
    alerts,
    apps,
    artifacts,
    channels,
    clusters,
    explain,
    operations,
    system,
    teams,
    users,
    variables,
)
from streampilot.domain.errors import SpecError
from streampilot.domain.rules import TransitionRefused
from streampilot.services.errors import ServiceError, Throttled
from streampilot.services.platform import Platform
from streampilot.store.db import lost_connection
from streampilot.web import pages, people_pages, setup_pages, sso_pages
from streampilot.web.common import LoginRequired, login_redirect

log = logging.getLogger("streampilot.api")


_UNION_MEMBERS = {"str", "int", "float", "bool", "none", "fixed-delay", "failure-rate", "exponential-delay"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """Dotted field path as the user wrote it: without request parts and union-member names."""
    parts = [
        str(p) for p in loc if p not in ("body", "query", "path") and str(p) not in _UNION_MEMBERS and "[" not in str(p)
    ]
    return ".".join(parts) or "body"


def _problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    grouped: dict[str, list[str]] = {}
    for e in errors:
        grouped.setdefault(_field(e.get("loc", ())), []).append(str(e.get("msg", "invalid")))
    out = []
    for name, messages in grouped.items():
        if len(messages) > 1 and all(m.startswith("Input should be a valid") for m in messages):
            message = "must be a string, a number or true/false"
        else:
            message = "; ".join(dict.fromkeys(messages))
        out.append({"field": name, "message": message})
    return out


def web_assets_dir() -> Path:
    """Browser libraries installed from npm at set-up (web/node_modules beside src/)."""
    override = os.environ.get("STREAMPILOT_WEB_ASSETS")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "web" / "node_modules"


def create_app(platform: Platform, *, lifespan: Callable[[FastAPI], Any] | None = None) -> FastAPI:
    @asynccontextmanager
    async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="streampilot",
        version=__version__,
        lifespan=lifespan or no_lifespan,
        description="Develop, deploy, run, watch and heal Apache Flink streaming applications.",
    )
    app.state.platform = platform
    mb = 1024 * 1024
    settings = platform.settings
    app.add_middleware(
        Hardening, max_body_bytes=settings.max_body_mb * mb, max_upload_bytes=settings.max_upload_mb * mb
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _problems(exc.errors())}, status_code=422)

    @app.exception_handler(SpecError)
    async def _spec(_: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse({"detail": [p.as_dict() for p in exc.problems]}, status_code=422)

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(int(exc.retry_after_s) + 1)} if isinstance(exc, Throttled) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(sa_exc.DBAPIError)
    async def _overflow(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, sa_exc.DBAPIError) and lost_connection(exc) and not out_of_range(exc):
            # Unknown, not failed: whatever the request did may or may not be stored. A retry is safe
            # (operations: with the same Idempotency-Key).
            log.warning("database connection lost during %s %s", _.method, _.url.path)
            detail = "the database connection dropped during this request; retry it (with the same Idempotency-Key)"
            return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})
        if not out_of_range(exc):
            raise exc
        message = f"a number is out of range (ids and counts are below {MAX_ID + 1}); correct it"
        return JSONResponse({"detail": [{"field": "(body)", "message": message}]}, status_code=422)

    @app.exception_handler(TransitionRefused)
    async def _refused(_: Request, exc: TransitionRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        return login_redirect(exc)

    static = Path(pages.__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    icon = (static / "favicon.svg").read_bytes()  # read once, not on the event loop per request

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        """Where browsers look for the icon without asking the page (the pages name the SVG)."""
        return Response(icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    assets = web_assets_dir()
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=str(assets)), name="assets")
    else:
        log.warning(
            "console assets not found at %s (run 'make run' to install them); pages work without "
            "live updates and the SQL editor",
            assets,
        )
    app.include_router(pages.public)
    app.include_router(sso_pages.router)
    app.include_router(pages.router)
    app.include_router(setup_pages.router)
    app.include_router(people_pages.router)
    app.include_router(system.public)
    app.include_router(system.metrics_router)
    app.include_router(artifacts.router)
    app.include_router(users.public)
    app.include_router(system.router)
    app.include_router(users.router)
    app.include_router(teams.router)
    app.include_router(clusters.router)
    app.include_router(clusters.jobs)
    app.include_router(apps.router)
    app.include_router(operations.router)
    app.include_router(explain.router)
    app.include_router(variables.router)
    app.include_router(alerts.router)
    app.include_router(channels.router)
    document_errors(app)
    return app
