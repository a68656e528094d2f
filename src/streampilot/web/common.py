"""What every console page shares: templates, the logged-in account, rendering and redirects."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from streampilot.domain.access import Principal, Role
from streampilot.domain.alerts import AlertReason
from streampilot.domain.channels import ChannelKind
from streampilot.domain.errors import SpecError
from streampilot.domain.states import AppState
from streampilot.domain.urls import without_credentials
from streampilot.services import access
from streampilot.services.platform import Platform
from streampilot.services.sso import SingleSignOn
from streampilot.store.orm import Team
from streampilot.web import views
from streampilot.web.forms import LIST_FIELDS

COOKIE = "streampilot_token"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(
    errors_under=views.errors_under,
    ago=views.ago,
    span=views.span,
    size=views.size,
    badge=views.BADGE,
    ms_time=views.ms_time,
    states=[s.value for s in AppState],
    reasons=[r.value for r in AlertReason],
    channel_kinds=[k.value for k in ChannelKind],
)
templates.env.filters["without_credentials"] = lambda url: without_credentials(url) if url else ""


def _may(team_id: int, role: str) -> bool:
    """In a template: whether the logged-in user holds ``role`` in team ``team_id`` (buttons they may use)."""
    return access.current().may(team_id, Role(role))


templates.env.globals["may"] = _may


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def page_account(request: Request) -> Principal:
    """The logged-in user of a console request (its server-side session), whom the request then acts
    as; for a request that changes something, also proof that it came from one of our own pages."""
    cookie = request.cookies.get(COOKIE, "")
    client = request.client.host if request.client else ""
    login = await platform(request).web_sessions.find(cookie, client) if cookie else None
    if login is None:
        raise LoginRequired(str(request.url.path))
    access.act_as(login.principal)  # reset when the request ends (api/hardening.py)
    request.state.csrf = login.csrf
    request.state.who = login.principal
    if request.method not in SAFE_METHODS:
        check_origin(request)
        sent = str((await request.form()).get("csrf", ""))  # parsed once: the route reads it again
        if not hmac.compare_digest(sent, login.csrf):
            raise HTTPException(
                403, "this form is out of date or came from another site: reload the page and submit it again"
            )
    return login.principal


def check_origin(request: Request) -> None:
    """A state-changing request from a browser must come from our own origin (Origin, else Referer)."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    referer = request.headers.get("referer")
    if origin is not None and origin != "null":
        if origin != own:
            raise HTTPException(403, f"a request from {origin} may not change anything here")
    elif referer is not None and not (referer == own or referer.startswith(own + "/")):
        raise HTTPException(403, "a request from another site may not change anything here")


PageAccount = Annotated[Principal, Depends(page_account)]


async def creatable_teams(request: Request) -> list[Team]:
    """The teams where the logged-in user may create objects (developer or more)."""
    who = access.current()
    return [t for t in await platform(request).teams.list_teams() if who.may(t.id, Role.DEVELOPER)]


async def team_names(request: Request) -> dict[int, str]:
    return {t.id: t.name for t in await platform(request).teams.list_teams()}


def chosen_team(values: dict[str, str]) -> int | None:
    """The team picked in a form (none when the user may create in one team only)."""
    raw = values.get("team_id", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("csrf", getattr(request.state, "csrf", ""))
    ctx.setdefault("who", getattr(request.state, "who", None))
    ctx.setdefault("sso", SingleSignOn(platform(request).ctx))
    ctx.setdefault("notice", request.query_params.get("notice"))
    ctx.setdefault("error", request.query_params.get("error"))
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def back(url: str, *, notice: str | None = None, error: str | None = None) -> RedirectResponse:
    params = {k: v for k, v in (("notice", notice), ("error", error)) if v}
    return RedirectResponse(f"{url}?{urlencode(params)}" if params else url, status_code=303)


def problems_of(exc: SpecError) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in exc.problems:
        where = f" (line {p.line}{f', column {p.column}' if p.column else ''})" if p.line else ""
        out.setdefault(p.field, p.message + where)
    return out


def flat(form: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            continue
        if key in LIST_FIELDS:
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
    return out


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)
