"""The principal each request acts as, and the checks every use case makes with it.

The API and the console set the principal once per request (``acting_as``); the services check it, so
both front ends share one path: objects of teams one is not in do not exist (404), a role too small
for the call is refused (403), lists hold one's own teams' objects only. Background work (tracker,
policies, recovery) acts as ``SYSTEM``. Each change is written to the audit log in the transaction
that makes it (``audit``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.domain.access import DOING, SYSTEM, Principal, Role
from streampilot.domain.errors import SpecError
from streampilot.services.errors import Conflict, Forbidden, NotFound
from streampilot.store.orm import Account, AuditEvent, Membership, Team

# Nobody: what an HTTP request acts as until it has authenticated (sees nothing, may do nothing).
ANONYMOUS = Principal(account_id=None, name="anonymous", admin=False)

_current: ContextVar[Principal] = ContextVar("streampilot_principal", default=SYSTEM)


def current() -> Principal:
    return _current.get()


def act_as(principal: Principal) -> Token[Principal]:
    return _current.set(principal)


def stop_acting(token: Token[Principal]) -> None:
    _current.reset(token)


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


async def principal_of(s: AsyncSession, account: Account, client: str = "") -> Principal:
    rows = (
        await s.execute(sa.select(Membership.team_id, Membership.role).where(Membership.account_id == account.id))
    ).all()
    return Principal(
        account_id=account.id,
        name=account.name,
        admin=account.role == "admin",
        roles={team_id: Role(role) for team_id, role in rows},
        client=client,
    )


def team_filter() -> set[int] | None:
    """The teams the current principal sees (None: all)."""
    return current().teams()


def visible(team_id: int, missing: str) -> None:
    """Objects of a team one is not in do not exist: ``missing`` is the same 404 as for no object."""
    if not current().sees(team_id):
        raise NotFound(missing)


def require(team_id: int, need: Role, what: str, missing: str) -> None:
    """The current principal must see ``what`` (else 404 ``missing``) and hold ``need`` in its team (else 403)."""
    who = current()
    role = who.role_in(team_id)
    if role is None:
        raise NotFound(missing)
    if not role.allows(need):
        raise Forbidden(
            f"{who.name} is {role.value} in this team and may not {DOING[need]} {what}: "
            f"that needs the {need.value} role or more (ask the team's owner)"
        )


def require_admin(what: str) -> None:
    who = current()
    if not who.admin:
        raise Forbidden(f"only a platform admin may {what} ({who.name} is not one)")


async def team_for_new(s: AsyncSession, team_id: int | None, what: str) -> int:
    """The team a new object goes to: the one asked for (developer role needed there), else the only
    team where one may create, else (a platform admin) the ``default`` team."""
    who = current()
    if team_id is not None:
        if await s.get(Team, team_id) is None:
            raise NotFound(f"no team with id {team_id}")
        require(team_id, Role.DEVELOPER, what, f"no team with id {team_id}")
        return team_id
    if who.admin:
        found = (await s.execute(sa.select(Team.id).where(Team.name == "default"))).scalar_one_or_none()
        if found is None:
            raise Conflict("there is no team named 'default' any more: say which team with team_id")
        return int(found)
    able = sorted(t for t, role in who.roles.items() if role.allows(Role.DEVELOPER))
    if len(able) == 1:
        return able[0]
    if not able:
        raise Forbidden(f"{who.name} may not create {what} in any team: that needs the developer role or more")
    raise SpecError.one("team_id", f"you may create in several teams ({', '.join(map(str, able))}): say which")


def audit(
    s: AsyncSession,
    action: str,
    kind: str,
    object_id: int | None,
    *,
    name: str = "",
    team_id: int | None = None,
    diff: dict[str, Any] | None = None,
) -> None:
    """Record a change or an operation, by the current principal, in the caller's transaction."""
    who = current()
    s.add(
        AuditEvent(
            actor=who.name,
            client=who.client[:100],
            action=action,
            object_kind=kind,
            object_id=object_id,
            object_name=name[:200],
            team_id=team_id,
            diff=diff or {},
        )
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The audit diff of two views of an object: each changed field as ``{"from": ..., "to": ...}``."""
    keys = sorted(set(before) | set(after))
    return {k: {"from": before.get(k), "to": after.get(k)} for k in keys if before.get(k) != after.get(k)}
