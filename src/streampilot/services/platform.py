"""Wiring: builds the context, services and loops from settings; opens and closes them in order."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from streampilot.domain.apps import AppKind, AppSpec, Checkpointing
from streampilot.domain.throttle import LoginThrottle
from streampilot.flink.launch import LaunchError, RunnerBuilder
from streampilot.services.accounts import AccountService, SessionService
from streampilot.services.apps import AppService
from streampilot.services.audit import AuditService
from streampilot.services.channels import ChannelService
from streampilot.services.clusters import ClusterService
from streampilot.services.context import Context
from streampilot.services.dispatch import Dispatcher
from streampilot.services.errors import ServiceError
from streampilot.services.explain import Explainer
from streampilot.services.homes import home_info
from streampilot.services.jars import JarService
from streampilot.services.job_metrics import MetricsSampler
from streampilot.services.leases import LeaseKeeper
from streampilot.services.lifecycle import Lifecycle
from streampilot.services.loops import Loop
from streampilot.services.policies import PolicyLoop
from streampilot.services.push import PushReceiver
from streampilot.services.recovery import Recovery
from streampilot.services.supervisor import Supervisor
from streampilot.services.teams import TeamService
from streampilot.services.tracker import Tracker
from streampilot.services.variables import VariableService
from streampilot.settings import Settings
from streampilot.store.db import create_engine, migrate, sessions
from streampilot.store.orm import App, Cluster, Operation
from streampilot.targets.kinds import LOCAL

log = logging.getLogger("streampilot")

EXAMPLE_APP = "example-datagen-to-blackhole"
EXAMPLE_SQL = """-- An example streaming job: random rows from the datagen connector into a blackhole sink.
CREATE TABLE orders (
  order_id BIGINT,
  amount   DOUBLE,
  ts       TIMESTAMP(3)
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '10'
);

CREATE TABLE sink (
  order_id BIGINT,
  amount   DOUBLE,
  ts       TIMESTAMP(3)
) WITH ('connector' = 'blackhole');

INSERT INTO sink SELECT order_id, amount, ts FROM orders;
"""


@dataclass
class Platform:
    settings: Settings
    ctx: Context = field(init=False)
    tracker: Tracker = field(init=False)
    policies: PolicyLoop = field(init=False)
    dispatcher: Dispatcher = field(init=False)
    sampler: MetricsSampler = field(init=False)
    loops: list[Loop] = field(default_factory=list)
    # This process among streampilot's instances: in health answers, logs and (later) cluster leases.
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")

    def __post_init__(self) -> None:
        engine = create_engine(self.settings.effective_database_url)
        self.ctx = Context(
            settings=self.settings,
            engine=engine,
            sessions=sessions(engine),
            runners=RunnerBuilder(self.settings.home / "runners"),
            logins=LoginThrottle(failures=self.settings.login_failures_per_minute),
        )
        self.tracker = Tracker(self.ctx)
        self.dispatcher = Dispatcher(self.ctx)
        self.sampler = MetricsSampler(self.ctx)
        self.policies = PolicyLoop(self.ctx, Lifecycle(self.ctx, observe=self.tracker))

    @property
    def apps(self) -> AppService:
        return AppService(self.ctx)

    @property
    def clusters(self) -> ClusterService:
        return ClusterService(self.ctx)

    @property
    def jars(self) -> JarService:
        return JarService(self.ctx)

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.ctx, observe=self.tracker)

    @property
    def variables(self) -> VariableService:
        return VariableService(self.ctx)

    @property
    def explainer(self) -> Explainer:
        return Explainer(self.ctx)

    @property
    def accounts(self) -> AccountService:
        return AccountService(self.ctx)

    @property
    def web_sessions(self) -> SessionService:
        return SessionService(self.ctx)

    @property
    def teams(self) -> TeamService:
        return TeamService(self.ctx)

    @property
    def audit(self) -> AuditService:
        return AuditService(self.ctx)

    async def open(self) -> bool:
        """Migrate the database, ensure the admin and the bundled Flink home. True if a token was issued."""
        await asyncio.to_thread(self._private_home, before_db=True)
        await migrate(self.ctx.engine)
        await asyncio.to_thread(self._private_home, before_db=False)
        issued = await self.accounts.ensure_admin()
        sealed = await self.channels.seal_stored()
        if sealed:
            log.info("encrypted the secrets of %d alert channel(s) stored before secrets were encrypted", sealed)
        await self.clusters.register_bundled_home()
        await self._recover_operations()
        return issued

    def _private_home(self, before_db: bool) -> None:
        """The home (database, keys, tokens, scripts) is the owner's only: 0700, and a SQLite database
        with its journal files 0600."""
        home = self.settings.home
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        if before_db or self.settings.database_url:
            return
        for db_file in home.glob("streampilot.db*"):
            db_file.chmod(0o600)

    async def _recover_operations(self) -> None:
        # Operations of an earlier process are resumed or failed with their cause; a slot held
        # without an operation (written by an older version) is released.
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(
                sa.update(App)
                .where(App.operation.is_not(None), App.operation_id.is_(None))
                .values(operation=None, operation_since=None)
            )
        await Recovery(self.lifecycle).run_once()

    async def readiness(self) -> dict[str, str]:
        """What keeps this instance from doing its work: each check with "ok" or what is wrong."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(3):
                async with self.ctx.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure to reach it is the answer itself
            checks["database"] = f"not reachable: {type(exc).__name__}"
        now = time.monotonic()
        for loop in self.loops:
            if loop.stale(now):
                since = f"{now - loop.last_pass_at:.0f} s ago" if loop.last_pass_at is not None else "never"
                checks[f"loop:{loop.name}"] = f"no pass finished since {since}"
            else:
                checks[f"loop:{loop.name}"] = "ok"
        return checks

    def start_loops(self) -> None:
        t = self.settings.tracking
        seen = self.ctx.metrics.loop_pass_done
        keeper = self.ctx.leases = LeaseKeeper(self.ctx, self.instance_id)
        self.loops = [
            Loop("leases", min(t.tick_s, t.lease_ttl_s / 3), keeper.run_once, on_pass=seen),
            Loop("tracker", t.tick_s, self.tracker.run_once, on_pass=seen),
            Loop("details", t.detail_every_s, self.tracker.details_once, on_pass=seen),
            Loop("policies", t.tick_s, self.policies.run_once, on_pass=seen),
            Loop("alerts", self.settings.alerts.dispatch_tick_s, self.dispatcher.run_once, on_pass=seen),
            Loop("supervisor", self.settings.flink.supervise_every_s, Supervisor(self.ctx).run_once, on_pass=seen),
            Loop("job-metrics", self.settings.metrics.every_s, self.sampler.run_once, on_pass=seen),
        ]
        if self.ctx.engine.dialect.name != "sqlite":  # several instances: pushes one got for another's cluster
            receiver = PushReceiver(self.ctx)
            self.loops.append(
                Loop("handoffs", t.push_handoff_s, lambda: receiver.take_handed(self.tracker.observe_app), on_pass=seen)
            )
        for loop in self.loops:
            loop.start()

    async def stop_loops(self) -> None:
        for loop in self.loops:
            await loop.stop()
        await self.policies.close()
        if self.ctx.leases is not None:
            try:
                await self.ctx.leases.release_all()  # the others take over now, not after the lease's time
            except Exception as exc:  # the database may be gone; the leases then simply expire
                log.warning("could not hand back this instance's cluster leases: %s", exc)
            self.ctx.leases = None

    async def start_local_clusters(self, *, create_default: bool) -> list[Cluster]:
        """Start (or adopt) local clusters the user wants running; create 'local' on first start."""
        clusters = await self.clusters.list_clusters()
        if not clusters and create_default:
            cluster = await self.clusters.add("local", LOCAL)
            self.ctx.cluster_phases[cluster.id] = "STARTING"
            await self.clusters.start(cluster.id)
            return [await self.clusters.get(cluster.id)]
        wanted = [c for c in clusters if c.kind == LOCAL and c.desired_running]
        for c in wanted:
            self.ctx.cluster_phases[c.id] = "STARTING"
        for c in wanted:
            await self.clusters.start(c.id)
        return wanted

    def bring_up_in_background(self, *, example: bool) -> asyncio.Task[None]:
        """Start the local clusters (and the example app on a first start) without holding up the API:
        each cluster shows STARTING until it is ready."""

        async def build_runner() -> None:
            try:  # built once per Flink version, while the cluster starts: a first create need not wait
                await self.ctx.runners.sql_runner(await home_info(self.ctx, None))
            except (ServiceError, LaunchError) as exc:
                log.warning("the SQL runner could not be built ahead: %s", exc)

        async def bring_up() -> None:
            runner = asyncio.create_task(build_runner(), name="sql-runner")
            try:
                started = await self.start_local_clusters(create_default=True)
            except ServiceError as exc:
                log.error("the local Flink cluster did not start: %s", exc)
                return
            finally:
                await runner
            if example and started:
                op = await self.create_example(started[0].id)
                if op is not None:
                    log.info("example application %r starting (operation %s)", EXAMPLE_APP, op.id)

        task = asyncio.create_task(bring_up(), name="bring-up")
        self.ctx.background.add(task)
        task.add_done_callback(self.ctx.background.discard)
        return task

    async def stop_local_clusters(self) -> None:
        for c in await self.clusters.list_clusters():
            if c.kind == LOCAL:
                self.ctx.cluster_phases[c.id] = "STOPPING"  # the supervisor leaves it alone
                local = await self.clusters.local(c)
                await local.stop()

    async def create_example(self, cluster_id: int) -> Operation | None:
        async with self.ctx.sessions() as s:
            if (await s.execute(sa.select(sa.func.count()).select_from(App))).scalar_one():
                return None
        spec = AppSpec(
            kind=AppKind.SQL,
            sql=EXAMPLE_SQL,
            checkpointing=Checkpointing(interval_s=10),
        )
        app = await self.apps.create(EXAMPLE_APP, cluster_id, spec)
        return await self.lifecycle.start(app.id)

    @property
    def channels(self) -> ChannelService:
        return ChannelService(self.ctx)

    async def close(self) -> None:
        await self.stop_loops()
        await self.dispatcher.close()
        await self.ctx.close()
