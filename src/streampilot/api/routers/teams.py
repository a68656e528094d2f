"""Teams and their members; the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import Body
from streampilot.domain.errors import SpecError
from streampilot.services.audit import AuditQuery
from streampilot.store.orm import AuditEvent, Team

router = APIRouter(prefix="/api/v1", tags=["teams"], dependencies=[Depends(account)])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class TeamCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    description: str = Field(default="", max_length=500)


class MemberSet(Body):
    user_id: int = Field(ge=1, le=2**31 - 1)
    role: Literal["owner", "developer", "operator", "viewer"]


class MemberOut(BaseModel):
    user_id: int
    name: str
    role: str


class TeamOut(BaseModel):
    id: int
    name: str
    description: str
    created_at: datetime
    members: list[MemberOut] | None = None

    @classmethod
    def of(cls, t: Team, members: list[MemberOut] | None = None) -> TeamOut:
        return cls(id=t.id, name=t.name, description=t.description, created_at=t.created_at, members=members)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    client: str
    action: str
    object_kind: str
    object_id: int | None
    object_name: str
    team_id: int | None
    diff: dict[str, object]

    @classmethod
    def of(cls, e: AuditEvent) -> AuditOut:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            client=e.client,
            action=e.action,
            object_kind=e.object_kind,
            object_id=e.object_id,
            object_name=e.object_name,
            team_id=e.team_id,
            diff=e.diff,
        )


@router.get("/teams")
async def list_teams(p: PlatformDep) -> list[TeamOut]:
    """The teams you are in (a platform admin: all)."""
    return [TeamOut.of(t) for t in await p.teams.list_teams()]


@router.post("/teams", status_code=201)
async def create_team(body: TeamCreate, p: PlatformDep) -> TeamOut:
    """A new team (platform admins); add its members next."""
    return TeamOut.of(await p.teams.create(body.name, body.description), [])


async def _members(p: PlatformDep, team_id: int) -> list[MemberOut]:
    return [MemberOut(user_id=m.user_id, name=m.name, role=m.role) for m in await p.teams.members(team_id)]


@router.get("/teams/{team_id}")
async def get_team(team_id: Id, p: PlatformDep) -> TeamOut:
    return TeamOut.of(await p.teams.get(team_id), await _members(p, team_id))


@router.delete("/teams/{team_id}", status_code=204)
async def delete_team(team_id: Id, p: PlatformDep) -> Response:
    """Delete an empty team (platform admins)."""
    await p.teams.delete(team_id)
    return Response(status_code=204)


@router.get("/teams/{team_id}/members")
async def list_members(team_id: Id, p: PlatformDep) -> list[MemberOut]:
    return await _members(p, team_id)


@router.post("/teams/{team_id}/members", status_code=201)
async def set_member(team_id: Id, body: MemberSet, p: PlatformDep) -> MemberOut:
    """Add a user with a role, or change their role (the team's owners and platform admins)."""
    m = await p.teams.set_member(team_id, body.user_id, body.role)
    return MemberOut(user_id=m.user_id, name=m.name, role=m.role)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204)
async def remove_member(team_id: Id, user_id: Id, p: PlatformDep) -> Response:
    await p.teams.remove_member(team_id, user_id)
    return Response(status_code=204)


TIME = "an RFC 3339 time, e.g. 2026-11-22T10:00:00Z (UTC unless it says otherwise)"


def _time(field: str, text: str | None) -> datetime | None:
    """An ISO 8601 time (not a number of seconds: that is a mistake more often than a wish)."""
    if text is None:
        return None
    try:
        found = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case t and z
    except ValueError:
        raise SpecError.one(field, f"{text!r} is not an ISO 8601 time such as 2026-11-22T10:00:00Z") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


@router.get("/audit", tags=["audit"])
async def audit(
    p: PlatformDep,
    team_id: int | None = Query(None, ge=1, le=2**31 - 1),
    actor: str | None = Query(None, max_length=100),
    action: str | None = Query(None, max_length=40),
    object_kind: str | None = Query(None, max_length=40, description="app, cluster, alert_channel, variable, ..."),
    object_id: int | None = Query(None, ge=1, le=2**31 - 1),
    since: str | None = Query(None, description=TIME, json_schema_extra={"format": "date-time"}),
    until: str | None = Query(None, description=TIME, json_schema_extra={"format": "date-time"}),
    limit: int = Query(200, ge=1, le=5000),
) -> list[AuditOut]:
    """Who changed or operated what, newest first: your teams' events (a platform admin: all)."""
    query = AuditQuery(
        team_id, actor, action, object_kind, object_id, _time("since", since), _time("until", until), limit
    )
    return [AuditOut.of(e) for e in await p.audit.events(query)]
