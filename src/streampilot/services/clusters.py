"""Flink homes and clusters: registration, and the local clusters the platform owns."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from streampilot.domain.access import Role
from streampilot.domain.apps import check_name
from streampilot.domain.errors import SpecError
from streampilot.domain.states import ACTIVE_STATES
from streampilot.domain.urls import without_credentials
from streampilot.flink.homes import HomeInfo, NotAFlinkHome, bundled_home_path, inspect_home
from streampilot.flink.launch import LaunchError
from streampilot.flink.local import LocalCluster, LocalClusterError, LocalClusterLayout, free_port
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound, Unavailable
from streampilot.services.homes import home_info
from streampilot.services.push import push_configuration, pushes_to_local
from streampilot.services.supervisor import supervision_status
from streampilot.services.targets import target_for
from streampilot.store.orm import App, AppEvent, Cluster, ClusterEvent, FlinkHome
from streampilot.targets.kinds import CLUSTER_KINDS, LOCAL, Registration, register_remote

log = logging.getLogger("streampilot.clusters")


@dataclass
class ClusterService:
    ctx: Context

    # ---- Flink homes -------------------------------------------------------------------------
    async def list_homes(self) -> list[FlinkHome]:
        async with self.ctx.sessions() as s:
            return list((await s.execute(sa.select(FlinkHome).order_by(FlinkHome.id))).scalars())

    async def register_bundled_home(self) -> FlinkHome | None:
        path = bundled_home_path()
        if path is None:
            return None
        info = await asyncio.to_thread(inspect_home, path)
        for attempt in range(2):  # instances starting at once: the one that lost the race reads the winner's
            try:
                async with self.ctx.sessions() as s, s.begin():
                    found = sa.select(FlinkHome).where(FlinkHome.bundled.is_(True))
                    home = (await s.execute(found)).scalar_one_or_none()
                    if home is None:
                        home = FlinkHome(
                            name=f"bundled-{info.version}", path=str(info.path), version=info.version, bundled=True
                        )
                        s.add(home)
                    else:
                        home.path, home.version, home.name = str(info.path), info.version, f"bundled-{info.version}"
                    await s.flush()
                    return home
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        return None

    async def add_home(self, name: str, path: str) -> FlinkHome:
        access.require_admin("add a Flink home (a directory on the platform's own host)")
        try:
            info = await asyncio.to_thread(lambda: inspect_home(Path(path).expanduser()))
        except NotAFlinkHome as exc:
            raise SpecError.one("path", str(exc)) from None
        async with self.ctx.sessions() as s, s.begin():
            if (await s.execute(sa.select(FlinkHome).where(FlinkHome.name == name))).first():
                raise Conflict(f"a Flink home named {name!r} already exists; choose another name")
            home = FlinkHome(name=name, path=str(info.path), version=info.version, bundled=False)
            s.add(home)
            await s.flush()
            access.audit(s, "create", "flink_home", home.id, name=name, diff={"path": home.path})
            return home

    async def home_info(self, home_id: int | None) -> HomeInfo:
        return await home_info(self.ctx, home_id)

    # ---- clusters ----------------------------------------------------------------------------
    async def list_clusters(self) -> list[Cluster]:
        """The clusters of the teams the caller is in."""
        q = sa.select(Cluster).order_by(Cluster.id)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(Cluster.team_id.in_(teams))
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())

    async def get(self, cluster_id: int, need: Role = Role.VIEWER, doing: str = "") -> Cluster:
        """The cluster, if the caller sees it (else 404) and holds ``need`` in its team (else 403)."""
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, cluster_id)
        missing = f"no cluster with id {cluster_id}"
        if cluster is None:
            raise NotFound(missing)
        access.require(cluster.team_id, need, doing or f"cluster {cluster.name!r}", missing)
        return cluster

    async def add(
        self,
        name: str,
        kind: str,
        *,
        rest_url: str | None = None,
        flink_home_id: int | None = None,
        slots: int | None = None,
        taskmanagers: int = 1,
        options_raw: dict[str, Any] | None = None,
        team_id: int | None = None,
    ) -> Cluster:
        # The one check of a cluster's name, for the API, the console and the CLI alike: it names a
        # directory under the home (local clusters), so it must never hold a path.
        problem = check_name(name)
        if problem is not None:
            raise SpecError.one("name", f"{name!r}: {problem}")
        if kind not in CLUSTER_KINDS:
            raise SpecError.one("kind", f"unknown cluster kind {kind!r}; use one of {', '.join(CLUSTER_KINDS)}")
        if kind == LOCAL:
            # A local cluster runs processes (and PyFlink apps' scripts) on the platform's own host.
            access.require_admin("add a local cluster (it runs on the platform's own host)")
            home = await self.home_info(flink_home_id)
            options: dict[str, Any] = {
                "rest_port": free_port(),
                "rpc_port": free_port(),
                "slots": slots or self.ctx.settings.flink.local_slots,
                "taskmanagers": taskmanagers,
            }
            registered = Registration(f"http://127.0.0.1:{options['rest_port']}", home.version, options)
            if flink_home_id is None:
                flink_home_id = await self._home_id_for(home)
        else:
            registered = await register_remote(kind, rest_url, options_raw)
        rest_url, version, options = registered.rest_url, registered.flink_version, registered.options
        async with self.ctx.sessions() as s, s.begin():
            team = await access.team_for_new(s, team_id, "clusters")
            if (await s.execute(sa.select(Cluster).where(Cluster.name == name))).first():
                raise Conflict(f"a cluster named {name!r} already exists; choose another name")
            cluster = Cluster(
                team_id=team,
                name=name,
                kind=kind,
                rest_url=rest_url,
                flink_home_id=flink_home_id,
                flink_version=version,
                options=options,
                desired_running=False,
            )
            s.add(cluster)
            await s.flush()
            access.audit(
                s, "create", "cluster", cluster.id, name=name, team_id=team,
                diff={"kind": kind, "rest_url": rest_url and without_credentials(rest_url), "options": options},
            )  # fmt: skip
            return cluster

    async def _home_id_for(self, home: HomeInfo) -> int | None:
        async with self.ctx.sessions() as s:
            row = (await s.execute(sa.select(FlinkHome.id).where(FlinkHome.path == str(home.path)))).first()
        return row[0] if row else None

    async def delete(self, cluster_id: int) -> None:
        cluster = await self.get(cluster_id, Role.DEVELOPER)
        async with self.ctx.sessions() as s:
            used = (
                await s.execute(sa.select(sa.func.count()).select_from(App).where(App.cluster_id == cluster_id))
            ).scalar_one()
        if used:
            raise Conflict(f"cluster {cluster.name!r} still has {used} application(s); delete or move them first")
        if cluster.kind == LOCAL:
            await (await self.local(cluster)).stop()
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(Cluster).where(Cluster.id == cluster_id))
            access.audit(s, "delete", "cluster", cluster_id, name=cluster.name, team_id=cluster.team_id)
        self.ctx.forget_client(cluster_id)
        self.ctx.metrics.forget_cluster(cluster_id)

    async def local(self, cluster: Cluster) -> LocalCluster:
        if cluster.kind != LOCAL:
            raise Conflict(
                f"cluster {cluster.name!r} is {cluster.kind}; only local and kubernetes-session clusters "
                "are started and stopped by the platform"
            )
        home = await self.home_info(cluster.flink_home_id)
        opts = cluster.options
        extra_conf: tuple[tuple[str, str], ...] = ()
        extra_jars: tuple[Path, ...] = ()
        if pushes_to_local(self.ctx, home.version):
            try:
                extra_jars = (await self.ctx.runners.status_push(home),)
                extra_conf = tuple(push_configuration(self.ctx, cluster.id).items())
            except LaunchError as exc:  # no JDK: the cluster runs all the same, watched by polling alone
                log.warning("cluster %r: no status push (%s)", cluster.name, exc)
        return LocalCluster(
            LocalClusterLayout(
                home=home,
                root=self.ctx.home / "clusters" / cluster.name,
                rest_port=int(opts["rest_port"]),
                rpc_port=int(opts["rpc_port"]),
                slots=int(opts.get("slots", 4)),
                taskmanagers=int(opts.get("taskmanagers", 1)),
                extra_conf=extra_conf,
                extra_jars=extra_jars,
            )
        )

    def phase(self, cluster: Cluster) -> str | None:
        """STARTING, RUNNING, FAILED or STOPPED for a cluster this process brings up; else None."""
        return self.ctx.cluster_phases.get(cluster.id)

    async def start(self, cluster_id: int) -> Cluster:
        cluster = await self.get(cluster_id, Role.OPERATOR)
        timeout_s = self.ctx.settings.flink.local_ready_timeout_s
        self.ctx.cluster_phases[cluster_id] = "STARTING"
        self.ctx.supervisions.pop(cluster_id, None)  # a start by the user renews the restart budget
        try:
            if cluster.kind != LOCAL:
                await target_for(self.ctx, cluster).start_cluster(timeout_s)
            else:
                try:
                    await (await self.local(cluster)).start(timeout_s)
                except LocalClusterError as exc:
                    raise Unavailable(str(exc)) from None
        except BaseException:
            self.ctx.cluster_phases[cluster_id] = "FAILED"
            raise
        self.ctx.cluster_phases[cluster_id] = "RUNNING"
        log.info("cluster %r running (REST %s)", cluster.name, cluster.rest_url or "-")
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(Cluster, cluster_id)
            assert row is not None
            row.desired_running = True
            access.audit(s, "start", "cluster", cluster_id, name=row.name, team_id=row.team_id)
            return row

    async def stop(self, cluster_id: int) -> Cluster:
        cluster = await self.get(cluster_id, Role.OPERATOR)
        if cluster.kind != LOCAL:
            async with self.ctx.sessions() as s:
                active = (
                    await s.execute(
                        sa.select(sa.func.count())
                        .select_from(App)
                        .where(App.cluster_id == cluster_id, App.state.in_([a.value for a in ACTIVE_STATES]))
                    )
                ).scalar_one()
            if active:
                raise Conflict(f"cluster {cluster.name!r} still runs {active} application(s); stop them first")
            await target_for(self.ctx, cluster).stop_cluster()
        else:
            self.ctx.cluster_phases[cluster_id] = "STOPPING"  # the supervisor leaves it alone
            await (await self.local(cluster)).stop()
        self.ctx.cluster_phases[cluster_id] = "STOPPED"
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(Cluster, cluster_id)
            assert row is not None
            row.desired_running = False
            access.audit(s, "stop", "cluster", cluster_id, name=row.name, team_id=row.team_id)
            return row

    async def unmanaged_jobs(self) -> list[dict[str, Any]]:
        """Jobs not yet ended on known clusters that no application owns now or owned before."""
        async with self.ctx.sessions() as s:
            known = {j for (j,) in (await s.execute(sa.select(App.job_id).where(App.job_id.is_not(None)))).all()}
            known |= {
                j
                for (j,) in (
                    await s.execute(sa.select(AppEvent.job_id).distinct().where(AppEvent.job_id.is_not(None)))
                ).all()
            }
        clusters = await self.list_clusters()

        async def jobs_of(c: Cluster) -> list[dict[str, Any]]:
            listing = await target_for(self.ctx, c).observe_all()
            return [
                {
                    "cluster_id": c.id,
                    "cluster": c.name,
                    "job_id": j.job_id,
                    "name": j.name,
                    "state": j.state,
                    "tasks_running": j.tasks_running,
                    "tasks_total": j.tasks_total,
                    "start_time_ms": j.start_time_ms,
                }
                for j in (listing.jobs or {}).values()
                if j.job_id not in known and j.state not in ("FAILED", "CANCELED", "FINISHED")
            ]

        found = await asyncio.gather(*(jobs_of(c) for c in clusters))
        return [job for jobs in found for job in jobs]

    async def status(self, cluster: Cluster) -> dict[str, Any]:
        described = await target_for(self.ctx, cluster).describe()
        supervised = supervision_status(self.ctx, cluster.id)
        return described if supervised is None else {**described, "supervision": supervised}

    async def events(self, cluster_id: int, limit: int = 200) -> list[ClusterEvent]:
        await self.get(cluster_id)
        async with self.ctx.sessions() as s:
            rows = await s.execute(
                sa.select(ClusterEvent)
                .where(ClusterEvent.cluster_id == cluster_id)
                .order_by(ClusterEvent.at.desc(), ClusterEvent.id.desc())
                .limit(limit)
            )
            return list(rows.scalars())
