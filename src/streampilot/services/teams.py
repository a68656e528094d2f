"""Teams and their members: a platform admin creates teams; an owner (or an admin) manages members."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from streampilot.domain.access import ROLE_NAMES, Role
from streampilot.domain.apps import check_name
from streampilot.domain.errors import SpecError
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound
from streampilot.store.orm import Account, AlertChannel, App, Cluster, Jar, Membership, Team, Variable

OWNED = ((App, "applications"), (Cluster, "clusters"), (AlertChannel, "alert channels"), (Variable, "variables"),
         (Jar, "jars"))  # fmt: skip


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise SpecError.one("role", f"unknown role {role!r}; use one of {ROLE_NAMES}") from None


@dataclass(frozen=True)
class Member:
    user_id: int
    name: str
    role: str


@dataclass
class TeamService:
    ctx: Context

    async def list_teams(self) -> list[Team]:
        """The teams the caller is in (a platform admin: all)."""
        q = sa.select(Team).order_by(Team.id)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(Team.id.in_(teams))
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())

    async def get(self, team_id: int, need: Role = Role.VIEWER) -> Team:
        async with self.ctx.sessions() as s:
            team = await s.get(Team, team_id)
        missing = f"no team with id {team_id}"
        if team is None:
            raise NotFound(missing)
        access.require(team_id, need, f"team {team.name!r}", missing)
        return team

    async def find(self, ref: str) -> Team:
        """By id or by name (for the CLI)."""
        async with self.ctx.sessions() as s:
            cond = Team.id == int(ref) if ref.isdigit() else Team.name == ref
            team = (await s.execute(sa.select(Team).where(cond))).scalar_one_or_none()
        if team is None or not access.current().sees(team.id):
            raise NotFound(f"no team {ref!r}")
        return team

    async def create(self, name: str, description: str = "") -> Team:
        access.require_admin("create teams")
        if why := check_name(name):
            raise SpecError.one("name", why)
        async with self.ctx.sessions() as s, s.begin():
            if (await s.execute(sa.select(Team.id).where(Team.name == name))).first():
                raise Conflict(f"a team named {name!r} already exists; choose another name")
            team = Team(name=name, description=description[:500])
            s.add(team)
            await s.flush()
            access.audit(s, "create", "team", team.id, name=name, team_id=team.id)
            return team

    async def delete(self, team_id: int) -> None:
        access.require_admin("delete teams")
        team = await self.get(team_id)
        async with self.ctx.sessions() as s, s.begin():
            for model, what in OWNED:
                count = (
                    await s.execute(sa.select(sa.func.count()).select_from(model).where(model.team_id == team_id))
                ).scalar_one()
                if count:
                    raise Conflict(f"team {team.name!r} still owns {count} {what}; delete or move them first")
            await s.execute(sa.delete(Team).where(Team.id == team_id))
            access.audit(s, "delete", "team", team_id, name=team.name, team_id=team_id)

    async def members(self, team_id: int) -> list[Member]:
        await self.get(team_id)
        async with self.ctx.sessions() as s:
            rows = await s.execute(
                sa.select(Account.id, Account.name, Membership.role)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == team_id)
                .order_by(Account.name)
            )
            return [Member(i, n, r) for i, n, r in rows.all()]

    async def set_member(self, team_id: int, user_id: int, role: str) -> Member:
        """Add a user to the team with ``role``, or change their role (owner or platform admin)."""
        wanted = parse_role(role)
        team = await self.get(team_id, Role.OWNER)
        async with self.ctx.sessions() as s, s.begin():
            account = await s.get(Account, user_id)
            if account is None:
                raise SpecError.one("user_id", f"no user with id {user_id}; see GET /api/v1/users")
            row = (
                await s.execute(
                    sa.select(Membership).where(Membership.team_id == team_id, Membership.account_id == user_id)
                )
            ).scalar_one_or_none()
            before = row.role if row is not None else None
            if row is None:
                s.add(Membership(team_id=team_id, account_id=user_id, role=wanted.value))
            else:
                row.role = wanted.value
            diff = {"user": account.name, "role": {"from": before, "to": wanted.value}}
            access.audit(s, "set_member", "team", team_id, name=team.name, team_id=team_id, diff=diff)
            return Member(user_id, account.name, wanted.value)

    async def remove_member(self, team_id: int, user_id: int) -> None:
        team = await self.get(team_id, Role.OWNER)
        async with self.ctx.sessions() as s, s.begin():
            row = (
                await s.execute(
                    sa.select(Membership).where(Membership.team_id == team_id, Membership.account_id == user_id)
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"user {user_id} is not a member of team {team.name!r}")
            account = await s.get(Account, user_id)
            await s.delete(row)
            diff = {"user": account.name if account else str(user_id), "role": {"from": row.role, "to": None}}
            access.audit(s, "remove_member", "team", team_id, name=team.name, team_id=team_id, diff=diff)
