"""Variables: create, list, change and delete them, and resolve an app's ``${name}`` references."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import sqlalchemy as sa

from streampilot.domain.access import Role
from streampilot.domain.apps import AppSpec
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.domain.variables import mask, name_problem, resolve, undefined, used_names
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound
from streampilot.store.orm import App, AppVersion, Variable

MAX_VALUE = 64 * 1024


@dataclass(frozen=True)
class Resolved:
    """An app's spec with its variables' values in, and how to mask its secrets where it is shown."""

    spec: AppSpec
    secrets: tuple[str, ...] = ()

    def masked(self, config: dict[str, str]) -> dict[str, str]:
        return mask(config, self.secrets)

    def hide_in(self, exc: SpecError) -> SpecError:
        return SpecError([replace(p, message=self.hide(p.message)) for p in exc.problems])

    def hide(self, text: str) -> str:
        """``text`` (a message that may quote the script) with the secrets masked."""
        return mask({"": text}, self.secrets)[""]


@dataclass
class VariableService:
    ctx: Context

    async def all(self) -> list[Variable]:
        """The variables of the caller's teams."""
        q = sa.select(Variable).order_by(Variable.name)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(Variable.team_id.in_(teams))
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())

    async def get(self, variable_id: int, need: Role = Role.VIEWER) -> Variable:
        async with self.ctx.sessions() as s:
            row = await s.get(Variable, variable_id)
        missing = f"no variable with id {variable_id}"
        if row is None:
            raise NotFound(missing)
        access.require(row.team_id, need, f"variable {row.name!r}", missing)
        return row

    async def create(
        self, name: str, value: str, *, secret: bool, description: str = "", team_id: int | None = None
    ) -> Variable:
        problems = [FieldProblem("name", why)] if (why := name_problem(name)) else []
        problems += _value_problems(value)
        if problems:
            raise SpecError(problems)
        stored = await self._stored(value, secret)
        async with self.ctx.sessions() as s, s.begin():
            team = await access.team_for_new(s, team_id, "variables")
            if (await s.execute(sa.select(Variable.id).where(Variable.name == name))).first() is not None:
                raise Conflict(f"a variable named {name!r} already exists; change it with PATCH")
            row = Variable(team_id=team, name=name, value=stored, secret=secret, description=description)
            s.add(row)
            try:
                await s.flush()
            except sa.exc.IntegrityError:
                raise Conflict(f"a variable named {name!r} already exists; change it with PATCH") from None
            shown = "(secret)" if secret else value
            access.audit(s, "create", "variable", row.id, name=name, team_id=team, diff={"value": shown})
            return row

    async def update(
        self, variable_id: int, *, value: str | None, secret: bool | None, description: str | None
    ) -> Variable:
        if value is not None and (problems := _value_problems(value)):
            raise SpecError(problems)
        await self.get(variable_id, Role.DEVELOPER)
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(Variable, variable_id)
            if row is None:
                raise NotFound(f"no variable with id {variable_id}")
            before = {"secret": row.secret, "description": row.description}
            if secret is False and row.secret and value is None:
                # Depends on what is stored (the value is sealed), not on the request alone: 409.
                raise Conflict(f"variable {row.name!r} is secret: to make it plain, give its value again")
            plain = value if value is not None else await asyncio.to_thread(self.ctx.secrets.open, row.value)
            now_secret = row.secret if secret is None else secret
            row.value = await self._stored(plain, now_secret)
            row.secret = now_secret
            if description is not None:
                row.description = description
            diff = access.changes(before, {"secret": row.secret, "description": row.description})
            if value is not None:
                diff["value"] = {"to": "(secret)" if now_secret else value}
            access.audit(s, "update", "variable", row.id, name=row.name, team_id=row.team_id, diff=diff)
            return row

    async def delete(self, variable_id: int) -> None:
        row = await self.get(variable_id, Role.DEVELOPER)
        users = await self._apps_using(row.name)
        if users:
            raise Conflict(
                f"variable {row.name!r} is used by the current version of {', '.join(sorted(users))}; "
                "remove it from them first"
            )
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(Variable).where(Variable.id == variable_id))
            access.audit(s, "delete", "variable", variable_id, name=row.name, team_id=row.team_id)

    async def _apps_using(self, name: str) -> list[str]:
        async with self.ctx.sessions() as s:
            rows = await s.execute(
                sa.select(App.name, AppVersion.spec).join(
                    AppVersion, sa.and_(AppVersion.app_id == App.id, AppVersion.version == App.current_version)
                )
            )
            return [app for app, spec in rows if name in used_names(AppSpec.model_validate(spec))]

    async def _stored(self, value: str, secret: bool) -> str:
        return await asyncio.to_thread(self.ctx.secrets.seal, value) if secret else value

    async def resolve(self, spec: AppSpec, team_id: int | None) -> Resolved:
        """``spec`` with its references replaced by the variables of team ``team_id`` (None: of the
        caller's teams); an undefined one is a field error naming it."""
        names = used_names(spec)
        if not names:
            return Resolved(spec)
        q = sa.select(Variable).where(Variable.name.in_(names))
        teams = {team_id} if team_id is not None else access.team_filter()
        if teams is not None:
            q = q.where(Variable.team_id.in_(teams))
        async with self.ctx.sessions() as s:
            rows = list((await s.execute(q)).scalars())
        problems = undefined(spec, [r.name for r in rows])
        if problems:
            raise SpecError(problems)
        values = {r.name: await asyncio.to_thread(self.ctx.secrets.open, r.value) for r in rows}
        secrets = tuple(values[r.name] for r in rows if r.secret)
        return Resolved(resolve(spec, values), secrets)


def _value_problems(value: str) -> list[FieldProblem]:
    if len(value) > MAX_VALUE:
        return [FieldProblem("value", f"a value is at most {MAX_VALUE // 1024} KiB")]
    if "\x00" in value:
        return [FieldProblem("value", "a value cannot contain a NUL character")]
    return []
