"""Console single sign-on through an OpenID Connect provider (services/sso.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from streampilot.services.errors import ServiceError
from streampilot.services.sso import FLOW_COOKIE, FLOW_MAX_AGE_S, SingleSignOn
from streampilot.web.common import COOKIE, platform, render

router = APIRouter(include_in_schema=False)


def _sso(request: Request) -> SingleSignOn:
    return SingleSignOn(platform(request).ctx)


def _callback_url(request: Request) -> str:
    base = platform(request).settings.console_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
    return base.rstrip("/") + "/login/oidc/callback"


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/apps"


def _refused(request: Request, status: int, message: str) -> Response:
    return render(request, "login.html", status=status, next="/apps", error=message)


@router.get("/login/oidc")
async def begin(request: Request) -> Response:
    sso = _sso(request)
    if not sso.on:
        return _refused(request, 404, "Single sign-on is not set up (STREAMPILOT_OIDC_ISSUER).")
    try:
        url, sealed = await sso.begin(_callback_url(request), _safe_next(request.query_params.get("next", "/apps")))
    except ServiceError as exc:
        return _refused(request, exc.status, str(exc))
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider's redirect back is a top-level navigation from another site.
    response.set_cookie(FLOW_COOKIE, sealed, httponly=True, samesite="lax", max_age=FLOW_MAX_AGE_S)
    return response


@router.get("/login/oidc/callback")
async def callback(request: Request) -> Response:
    sso = _sso(request)
    q = request.query_params
    if q.get("error"):
        return _refused(request, 401, f"The sign-on was not completed: {q.get('error_description') or q['error']}.")
    flow = sso.open_flow(request.cookies.get(FLOW_COOKIE, ""))
    if flow is None or not q.get("code") or not q.get("state"):
        return _refused(request, 400, "This sign-on expired or did not start here; log in again.")
    p = platform(request)
    try:
        account = await sso.finish(flow, q["state"], q["code"], _callback_url(request))
    except ServiceError as exc:
        return _refused(request, exc.status, str(exc))
    cookie = await p.web_sessions.start(account.id)
    response = RedirectResponse(flow.next_url, status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", max_age=int(p.settings.session_hours * 3600))
    response.delete_cookie(FLOW_COOKIE)
    return response
