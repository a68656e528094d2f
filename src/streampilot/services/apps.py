"""Applications: create, edit (each edit a new immutable version), list, diff and delete."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from streampilot.domain.access import Role
from streampilot.domain.apps import AppKind, AppSpec, check_name
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.domain.states import ACTIVE_STATES, AppState, Cause
from streampilot.flink.client import FlinkClient
from streampilot.services import access
from streampilot.services.clusters import ClusterService
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound
from streampilot.services.jars import JarService, dependency_jars
from streampilot.services.statewriter import record_event
from streampilot.services.submissions import (
    check_jar_entry,
    launch_config,
)
from streampilot.services.targets import target_for
from streampilot.services.variables import Resolved, VariableService
from streampilot.store.orm import AlertChannel, App, AppEvent, AppVersion, Cluster


def spec_from(data: dict[str, Any]) -> AppSpec:
    try:
        return AppSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [FieldProblem(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]
        ) from None


APP_SORTS = ("name", "state", "cluster", "started", "updated")


@dataclass(frozen=True)
class AppListQuery:
    """Which page of the apps list: filters, a search in names, the order and the page."""

    state: str | None = None
    cluster_id: int | None = None
    q: str = ""
    sort: str = "name"  # one of APP_SORTS
    descending: bool = False
    offset: int = 0
    limit: int | None = 50  # None: all


@dataclass
class AppService:
    ctx: Context

    @property
    def clusters(self) -> ClusterService:
        return ClusterService(self.ctx)

    async def get(self, app_id: int, need: Role = Role.VIEWER) -> App:
        """The app, if the caller sees it (else 404) and holds ``need`` in its team (else 403)."""
        async with self.ctx.sessions() as s:
            app = await s.get(App, app_id)
        missing = f"no application with id {app_id}"
        if app is None:
            raise NotFound(missing)
        access.require(app.team_id, need, f"application {app.name!r}", missing)
        return app

    async def find(self, ref: str) -> App:
        """By id or by name (for the CLI)."""
        async with self.ctx.sessions() as s:
            cond = App.id == int(ref) if ref.isdigit() else App.name == ref
            app = (await s.execute(sa.select(App).where(cond))).scalar_one_or_none()
        if app is None:
            raise NotFound(f"no application {ref!r}")
        access.visible(app.team_id, f"no application {ref!r}")
        return app

    async def list_apps(self, state: str | None = None, cluster_id: int | None = None) -> list[App]:
        q = sa.select(App).order_by(App.id)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(App.team_id.in_(teams))
        if state:
            q = q.where(App.state == state.upper())
        if cluster_id is not None:
            q = q.where(App.cluster_id == cluster_id)
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())

    async def page_with_specs(self, query: AppListQuery) -> tuple[list[tuple[App, dict[str, Any], str]], int]:
        """One page of the apps this user sees (searched, filtered, sorted), each with its current spec
        (raw) and cluster name, and how many match in all: two queries whatever the number of apps."""
        where: list[sa.ColumnElement[bool]] = []
        teams = access.team_filter()
        if teams is not None:
            where.append(App.team_id.in_(teams))
        if query.state:
            where.append(App.state == query.state.upper())
        if query.cluster_id is not None:
            where.append(App.cluster_id == query.cluster_id)
        if query.q.strip():
            where.append(sa.func.lower(App.name).contains(query.q.strip().lower(), autoescape=True))
        sorts: dict[str, list[Any]] = {
            "name": [App.name],
            "state": [App.state, App.name],
            "cluster": [Cluster.name, App.name],
            "started": [App.submitted_at, App.name],
            "updated": [App.updated_at, App.name],
        }
        order = [k.desc() if query.descending else k.asc() for k in sorts.get(query.sort, sorts["name"])]
        page = (
            sa.select(App, AppVersion.spec, Cluster.name)
            .join(AppVersion, sa.and_(AppVersion.app_id == App.id, AppVersion.version == App.current_version))
            .join(Cluster, Cluster.id == App.cluster_id)
            .where(*where)
            .order_by(*order, App.id)
            .offset(query.offset)
            .limit(query.limit)
        )
        count = sa.select(sa.func.count()).select_from(App).where(*where)
        async with self.ctx.sessions() as s:
            rows = [(app, spec, cluster) for app, spec, cluster in (await s.execute(page)).all()]
            total = (await s.execute(count)).scalar_one()
        return rows, int(total)

    async def spec(self, app_id: int, version: int | None = None) -> tuple[int, AppSpec]:
        app = await self.get(app_id)
        v = version or app.current_version
        async with self.ctx.sessions() as s:
            row = (
                await s.execute(sa.select(AppVersion).where(AppVersion.app_id == app_id, AppVersion.version == v))
            ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"application {app.name!r} has no version {v}")
        return v, AppSpec.model_validate(row.spec)

    async def _check(
        self, name: str, cluster_id: int, spec: AppSpec, *, app_id: int | None, team_id: int | None
    ) -> Cluster:
        """All field problems at once; then, if the script is sound, Flink's own opinion of it.

        Everything an app refers to (cluster, jars, alert channels, variables) must be its team's own:
        ``team_id`` is the app's team, or None for a new app that takes its cluster's team."""
        problems: list[FieldProblem] = []
        reason = check_name(name)
        if reason:
            problems.append(FieldProblem("name", reason))
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, cluster_id)
            clash = (await s.execute(sa.select(App.id).where(App.name == name))).scalar_one_or_none()
        if cluster is not None and not access.current().sees(cluster.team_id):
            cluster = None  # another team's cluster does not exist for the caller
        if cluster is None:
            problems.append(FieldProblem("cluster_id", f"no cluster with id {cluster_id}; see GET /api/v1/clusters"))
        elif team_id is not None and cluster.team_id != team_id:
            problems.append(
                FieldProblem(
                    "cluster_id", f"cluster {cluster.name!r} belongs to another team; use one of team {team_id}"
                )
            )
        team = team_id if team_id is not None else cluster.team_id if cluster is not None else None
        resolved = Resolved(spec)
        try:
            resolved = await VariableService(self.ctx).resolve(spec, team)
        except SpecError as exc:
            problems.extend(exc.problems)
        else:
            try:
                launch_config(resolved.spec, name)
            except SpecError as exc:
                problems.extend(resolved.hide_in(exc).problems)
            if cluster is not None:
                try:
                    target_for(self.ctx, cluster).check(resolved.spec)
                except SpecError as exc:
                    problems.extend(exc.problems)
        if spec.kind == AppKind.JAR and spec.jar_id is not None:
            try:
                await check_jar_entry(await JarService(self.ctx).get(spec.jar_id, team), spec.entry_class)
            except NotFound:
                problems.append(FieldProblem("jar_id", f"no uploaded jar with id {spec.jar_id}; upload it first"))
            except SpecError as exc:
                problems.extend(exc.problems)
        try:
            await dependency_jars(self.ctx, spec.dependency_jar_ids, team)  # one query; as at submission
        except SpecError as exc:
            problems.extend(exc.problems)
        if spec.alert_channel_ids:
            async with self.ctx.sessions() as s:
                known = set(
                    (
                        await s.execute(
                            sa.select(AlertChannel.id).where(
                                AlertChannel.id.in_(spec.alert_channel_ids), AlertChannel.team_id == team
                            )
                        )
                    ).scalars()
                )
            unknown = [c for c in spec.alert_channel_ids if c not in known]
            if unknown:
                problems.append(FieldProblem("alert_channel_ids", f"no alert channel with id {unknown[0]}"))
        if problems:
            raise SpecError(problems)
        if clash is not None and clash != app_id:
            raise Conflict(f"an application named {name!r} already exists; choose another name")
        assert cluster is not None
        try:
            await target_for(self.ctx, cluster).validate(name, resolved.spec)
        except SpecError as exc:
            raise resolved.hide_in(exc) from None
        return cluster

    async def flink_api(self, app: App) -> tuple[FlinkClient, str] | None:
        """Flink's REST API for the app's job and its id there (None: no job, or no API to reach)."""
        if not app.job_id:
            return None
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, app.cluster_id)
        return None if cluster is None else target_for(self.ctx, cluster).flink_api(app.job_id)

    async def create(self, name: str, cluster_id: int, spec: AppSpec, team_id: int | None = None) -> App:
        """A new app in ``team_id`` (default: its cluster's team); the developer role is needed there."""
        cluster = await self._check(name, cluster_id, spec, app_id=None, team_id=team_id)
        async with self.ctx.sessions() as s, s.begin():
            team = await access.team_for_new(s, cluster.team_id, "applications")
            app = App(
                team_id=team,
                name=name,
                cluster_id=cluster_id,
                current_version=1,
                state=AppState.CREATED.value,
                desired_state="STOPPED",
            )
            s.add(app)
            try:
                await s.flush()
            except sa.exc.IntegrityError:
                raise Conflict(f"an application named {name!r} already exists; choose another name") from None
            s.add(AppVersion(app_id=app.id, version=1, spec=spec.model_dump(mode="json")))
            await record_event(s, app, AppState.CREATED, Cause.USER, "application created (version 1)", from_state="")
            access.audit(
                s, "create", "app", app.id, name=name, team_id=team,
                diff={"cluster_id": cluster_id, "spec": spec.model_dump(mode="json", exclude_defaults=True)},
            )  # fmt: skip
            return app

    async def update(self, app_id: int, changes: dict[str, Any]) -> App:
        app = await self.get(app_id, Role.DEVELOPER)
        version, spec = await self.spec(app_id)
        name = changes.pop("name", None) or app.name
        cluster_id = changes.pop("cluster_id", None) or app.cluster_id
        wanted_version = changes.pop("current_version", None)
        merged = {**spec.model_dump(mode="json"), **changes}
        new_spec = spec_from(merged) if changes else spec
        if cluster_id != app.cluster_id and AppState(app.state) in ACTIVE_STATES:
            raise Conflict("the application is running; stop it before moving it to another cluster")
        await self._check(name, cluster_id, new_spec, app_id=app_id, team_id=app.team_id)
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(App, app_id, with_for_update=True)
            assert row is not None
            notes = []
            if new_spec != spec:
                latest = (
                    await s.execute(sa.select(sa.func.max(AppVersion.version)).where(AppVersion.app_id == app_id))
                ).scalar_one()
                row.current_version = latest + 1
                s.add(AppVersion(app_id=app_id, version=row.current_version, spec=new_spec.model_dump(mode="json")))
                notes.append(f"version {row.current_version} created from version {version}")
            elif wanted_version is not None:
                exists = (
                    await s.execute(
                        sa.select(AppVersion.id).where(
                            AppVersion.app_id == app_id, AppVersion.version == int(wanted_version)
                        )
                    )
                ).first()
                if not exists:
                    raise SpecError.one("current_version", f"the application has no version {wanted_version}")
                row.current_version = int(wanted_version)
                notes.append(f"version {wanted_version} chosen to run")
            if name != row.name:
                notes.append(f"renamed from {row.name!r} to {name!r}")
                row.name = name
            if cluster_id != row.cluster_id:
                notes.append(f"moved to cluster {cluster_id}")
                row.cluster_id = cluster_id
            if notes:
                await record_event(s, row, row.state, Cause.USER, "; ".join(notes))
                before = {"name": app.name, "cluster_id": app.cluster_id, "current_version": app.current_version}
                after = {"name": row.name, "cluster_id": row.cluster_id, "current_version": row.current_version}
                diff = access.changes(
                    {**before, **spec.model_dump(mode="json")}, {**after, **new_spec.model_dump(mode="json")}
                )
                access.audit(s, "update", "app", app_id, name=row.name, team_id=row.team_id, diff=diff)
            return row

    async def delete(self, app_id: int) -> None:
        app = await self.get(app_id, Role.DEVELOPER)
        if AppState(app.state) in ACTIVE_STATES:
            raise Conflict(f"application {app.name!r} is {app.state}; stop or cancel it before deleting it")
        if app.operation:
            raise Conflict(f"an operation ({app.operation_id}) of application {app.name!r} is in progress; wait for it")
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(App).where(App.id == app_id))
            access.audit(s, "delete", "app", app_id, name=app.name, team_id=app.team_id)

    async def versions(self, app_id: int) -> list[AppVersion]:
        await self.get(app_id)
        async with self.ctx.sessions() as s:
            return list(
                (
                    await s.execute(
                        sa.select(AppVersion).where(AppVersion.app_id == app_id).order_by(AppVersion.version)
                    )
                ).scalars()
            )

    async def diff(self, app_id: int, a: int, b: int) -> str:
        _, spec_a = await self.spec(app_id, a)
        _, spec_b = await self.spec(app_id, b)

        def text(spec: AppSpec) -> list[str]:
            data = spec.model_dump(mode="json", exclude_none=True)
            return yaml.safe_dump(data, sort_keys=True, allow_unicode=True).splitlines(keepends=True)

        return "".join(difflib.unified_diff(text(spec_a), text(spec_b), f"version {a}", f"version {b}"))

    async def events(self, app_id: int, limit: int = 200) -> list[AppEvent]:
        await self.get(app_id)
        async with self.ctx.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(AppEvent).where(AppEvent.app_id == app_id).order_by(AppEvent.id.desc()).limit(limit)
                )
            ).scalars()
            return list(reversed(list(rows)))
