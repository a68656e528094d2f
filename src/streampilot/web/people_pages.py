"""Console pages for people: teams and their members, users (admins), one's own tokens and password,
and the audit log. The same services as the API decide who may do what."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from streampilot.domain.access import Role
from streampilot.domain.errors import SpecError
from streampilot.services import access
from streampilot.services.audit import AuditQuery
from streampilot.services.errors import ServiceError
from streampilot.web.common import back, page_account, platform, problems_of, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_account)])


async def _values(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}


# ---- teams and users ----------------------------------------------------------------------------
@router.get("/teams")
async def teams_page(request: Request) -> HTMLResponse:
    return await _teams(request)


async def _teams(request: Request, status: int = 200, **form: object) -> HTMLResponse:
    p = platform(request)
    who = access.current()
    teams = await p.teams.list_teams()
    members = {t.id: await p.teams.members(t.id) for t in teams}
    return render(
        request,
        "teams.html",
        status=status,
        teams=teams,
        members=members,
        owned={t.id for t in teams if who.may(t.id, Role.OWNER)},
        roles=[r.value for r in Role],
        users=await p.accounts.list_users(),
        values=form.pop("values", {}),
        errors=form.pop("errors", {}),
        **form,
    )


@router.post("/teams")
async def add_team(request: Request) -> Response:
    values = await _values(request)
    try:
        await platform(request).teams.create(values.get("name", "").strip(), values.get("description", ""))
    except SpecError as exc:
        return await _teams(request, 422, values=values, errors=problems_of(exc))
    except ServiceError as exc:
        return back("/teams", error=str(exc))
    return back("/teams", notice=f"Team {values.get('name')} created.")


@router.post("/users")
async def add_user(request: Request) -> Response:
    values = await _values(request)
    name = values.get("user_name", "").strip()
    try:
        await platform(request).accounts.create(
            name, password=values.get("password") or None, admin=values.get("admin") == "on"
        )
    except SpecError as exc:
        errors = {("user_name" if k == "name" else k): v for k, v in problems_of(exc).items()}
        return await _teams(request, 422, values=values, errors=errors)
    except ServiceError as exc:
        return back("/teams", error=str(exc))
    return back("/teams", notice=f"User {name} created.")


@router.post("/teams/{team_id}/members")
async def set_member(request: Request, team_id: int) -> Response:
    values = await _values(request)
    try:
        user_id = int(values.get("user_id", "0") or 0)
        m = await platform(request).teams.set_member(team_id, user_id, values.get("role", ""))
    except (SpecError, ValueError) as exc:
        said = "; ".join(problems_of(exc).values()) if isinstance(exc, SpecError) else "choose a user"
        return back("/teams", error=said)
    except ServiceError as exc:
        return back("/teams", error=str(exc))
    return back("/teams", notice=f"{m.name} is {m.role}.")


@router.post("/teams/{team_id}/members/{user_id}/remove")
async def remove_member(request: Request, team_id: int, user_id: int) -> Response:
    try:
        await platform(request).teams.remove_member(team_id, user_id)
    except ServiceError as exc:
        return back("/teams", error=str(exc))
    return back("/teams", notice="Member removed.")


# ---- one's own account ------------------------------------------------------------------------
@router.get("/account")
async def account_page(request: Request) -> HTMLResponse:
    return await _account(request)


async def _account(request: Request, status: int = 200, **form: object) -> HTMLResponse:
    who = access.current()
    assert who.account_id is not None
    return render(
        request,
        "account.html",
        status=status,
        tokens=await platform(request).accounts.tokens(who.account_id),
        values=form.pop("values", {}),
        errors=form.pop("errors", {}),
        **form,
    )


@router.post("/account/tokens")
async def create_token(request: Request) -> Response:
    values = await _values(request)
    who = access.current()
    assert who.account_id is not None
    days = values.get("expires_in_days", "").strip()
    try:
        made = await platform(request).accounts.create_token(
            who.account_id, values.get("name", "").strip(), int(days) if days.isdigit() and len(days) < 6 else None
        )
    except SpecError as exc:
        return await _account(request, 422, values=values, errors=problems_of(exc))
    except ServiceError as exc:
        return back("/account", error=str(exc))
    # Shown this once, on this page (not in a redirect's URL, which browsers keep in their history).
    return await _account(request, 201, new_token=made.secret, notice=f"Token {made.row.name!r} created.")


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int) -> Response:
    who = access.current()
    assert who.account_id is not None
    try:
        await platform(request).accounts.revoke_token(who.account_id, token_id)
    except ServiceError as exc:
        return back("/account", error=str(exc))
    return back("/account", notice="Token revoked.")


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    values = await _values(request)
    who = access.current()
    assert who.account_id is not None
    if values.get("password") != values.get("again"):
        return await _account(request, 422, errors={"again": "the two passwords differ"})
    try:
        await platform(request).accounts.update(who.account_id, password=values.get("password", ""))
    except SpecError as exc:
        return await _account(request, 422, errors=problems_of(exc))
    except ServiceError as exc:
        return back("/account", error=str(exc))
    return back("/account", notice="Password changed.")


# ---- audit ------------------------------------------------------------------------------------
@router.get("/audit")
async def audit_page(request: Request) -> HTMLResponse:
    q = request.query_params
    object_id = q.get("object_id", "")
    since = q.get("since", "")
    query = AuditQuery(
        actor=q.get("actor") or None,
        object_kind=q.get("object_kind") or None,
        object_id=int(object_id) if object_id.isdigit() and len(object_id) < 10 else None,
        action=q.get("action") or None,
        since=_date(since),
        limit=500,
    )
    p = platform(request)
    return render(
        request,
        "audit.html",
        events=await p.audit.events(query),
        filters=dict(q),
        team_names={t.id: t.name for t in await p.teams.list_teams()},
    )


def _date(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found
