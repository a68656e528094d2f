"""The observer: once per tick, one ``/jobs/overview`` per cluster becomes an observation
(Seen / Gone / Unknown) of every application on that cluster, and ``decide`` says what changes.

Unchanged applications cost no write but their cluster's stamp (``ClusterStamp``). Per-job detail
(checkpoint statistics, configuration readback) runs in ``details_once`` at its own cadence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.domain.alerts import AlertReason
from streampilot.domain.apps import AppSpec
from streampilot.domain.k8s_status import pod_changes
from streampilot.domain.states import (
    ACTIVE_STATES,
    AppState,
    Cause,
    FlinkJobState,
    Observation,
    Seen,
    Unknown,
)
from streampilot.domain.transitions import AppView, Decision, decide
from streampilot.domain.verify import compare
from streampilot.flink.client import CheckpointStats, FlinkError
from streampilot.services.alerting import alert_for_transition, raise_alert
from streampilot.services.context import Context
from streampilot.services.failures import failure_reason
from streampilot.services.job_metrics import record_checkpoints
from streampilot.services.leases import LeaseLost
from streampilot.services.statewriter import StateChanged, lock_app, record_event, set_app_state
from streampilot.services.targets import target_for
from streampilot.store.orm import App, AppVersion, Cluster, ClusterLease, ClusterStamp, Snapshot, utcnow
from streampilot.targets.port import Listing

log = logging.getLogger("streampilot.tracker")
KEEP_CHECKPOINTS = 3
FULL_READ_EVERY_S = 30.0  # the tracked rows are read whole this often, and changed rows in between
CHANGED_MARGIN = timedelta(seconds=10)  # clocks of other instances, commits later than their stamp


class TrackedApp(Protocol):
    """What the observer reads of an application (a plain row in the tick, the locked ORM row in apply)."""

    id: int
    cluster_id: int
    job_id: str | None
    state: str
    job_state: str | None
    tasks_running: int | None
    tasks_total: int | None
    unconfirmed_since: datetime | None
    submitted_at: datetime | None
    operation: str | None
    jobmanager_pods: dict[str, int] | None
    runtime_mode: str | None


TRACKED = (
    App.id,
    App.cluster_id,
    App.job_id,
    App.state,
    App.job_state,
    App.tasks_running,
    App.tasks_total,
    App.unconfirmed_since,
    App.submitted_at,
    App.operation,
    App.jobmanager_pods,
    App.runtime_mode,
)


@dataclass
class Tracker:
    ctx: Context
    requests: int = 0  # cluster calls made, for benchmarks and tests
    _last_detail: dict[str, float] = field(default_factory=dict)
    # Per app: the (row, job summary) of its last pass that changed nothing, and the next pass's.
    _quiet: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    _quiet_next: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    # The tracked rows as last read (see _tracked), and when and for which clusters they were read.
    _rows: dict[int, Any] = field(default_factory=dict)
    _read_at: datetime | None = None
    _read_clusters: set[int] = field(default_factory=set)
    _full_at: float = 0.0
    _clusters: dict[int, tuple[Any, Cluster]] = field(default_factory=dict)  # id -> (row read, its object)

    @property
    def lost_after(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.tracking.lost_after_s)

    @property
    def submit_grace(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.tracking.submit_grace_s)

    async def _listing(self, cluster: Cluster) -> Listing:
        self.requests += 1
        return await target_for(self.ctx, cluster).observe_all()

    async def run_once(self) -> None:
        await self.ctx.leases_ready()
        started = utcnow()
        async with self.ctx.sessions() as s:
            clusters = await self._held_clusters(s)
            apps = await self._tracked(s, set(clusters), started)
        self._quiet_next = {}
        by_cluster: dict[int, list[TrackedApp]] = defaultdict(list)
        for app in apps:
            if app.cluster_id in clusters:
                by_cluster[app.cluster_id].append(app)
        answered = await asyncio.gather(
            *(self._observe_cluster(clusters[cid], group) for cid, group in by_cluster.items())
        )
        self._quiet = self._quiet_next
        await self._stamp([cid for cid, ok in zip(by_cluster, answered, strict=True) if ok], started)

    async def _stamp(self, answered: list[int], started: datetime) -> None:
        """Stamp "when we last knew it" for every app on the clusters that answered: one row per cluster
        (see ``App.observed_at``: apps unconfirmed or submitted after ``started`` are not covered by it)."""
        if not answered:
            return
        at = utcnow()
        async with self.ctx.sessions() as s, s.begin():
            update = (
                sa.update(ClusterStamp)
                .where(ClusterStamp.cluster_id.in_(answered))
                .values(observed_at=at, pass_started_at=started)
                .execution_options(synchronize_session=False)
            )
            keeper = self.ctx.leases
            if keeper is not None:  # fenced: only clusters whose lease this instance still holds
                update = update.where(
                    ClusterStamp.cluster_id.in_(
                        sa.select(ClusterLease.cluster_id).where(
                            ClusterLease.instance_id == keeper.instance_id, ClusterLease.expires_at > at
                        )
                    )
                )
            if (await s.execute(update)).rowcount == len(answered):  # type: ignore[attr-defined]
                return
            stamped = set(
                (await s.scalars(sa.select(ClusterStamp.cluster_id).where(ClusterStamp.cluster_id.in_(answered)))).all()
            )
            for cid in sorted(set(answered) - stamped):  # a cluster's first stamp
                if keeper is not None:
                    try:
                        await keeper.fence(s, cid)
                    except LeaseLost:
                        continue
                s.add(ClusterStamp(cluster_id=cid, observed_at=at, pass_started_at=started))

    async def _held_clusters(self, s: AsyncSession) -> dict[int, Cluster]:
        """The clusters this instance watches, read as plain rows each tick; a cluster's object is made
        again only when its row changed (200 ORM objects a tick were a tenth of the tracker's CPU)."""
        which = sa.select(Cluster.__table__)
        if self.ctx.leases is not None:
            which = which.where(Cluster.id.in_(list(self.ctx.leases.held)))
        known, self._clusters = self._clusters, {}
        for row in await s.execute(which):
            if self.ctx.watches(row.id):
                kept = known.get(row.id)
                self._clusters[row.id] = kept if kept is not None and kept[0] == row else (row, Cluster(**row._mapping))
        return {cid: cluster for cid, (_, cluster) in self._clusters.items()}

    async def _tracked(self, s: AsyncSession, clusters: set[int], started: datetime) -> list[Any]:
        """The apps with a job on ``clusters``, as plain rows (not ORM objects: this runs every tick over
        every app). Read whole every ``FULL_READ_EVERY_S`` and when the clusters change; in between, only
        rows whose ``updated_at`` moved since the last read (less a margin for clocks and late commits):
        every write to an app bumps it, except the tracker's own "observed at" stamp."""
        monotonic = time.monotonic()
        changed_since = None if self._read_at is None else self._read_at - CHANGED_MARGIN
        if changed_since is None or clusters != self._read_clusters or monotonic - self._full_at > FULL_READ_EVERY_S:
            query = sa.select(*TRACKED).where(App.job_id.is_not(None), App.cluster_id.in_(list(clusters)))
            self._rows = {row.id: row for row in await s.execute(query)}
            self._full_at, self._read_clusters = monotonic, clusters
        else:
            for row in await s.execute(sa.select(*TRACKED).where(App.updated_at >= changed_since)):
                if row.job_id is None or row.cluster_id not in clusters:
                    self._rows.pop(row.id, None)
                else:
                    self._rows[row.id] = row
        self._read_at = started
        return list(self._rows.values())

    async def _observe_cluster(self, cluster: Cluster, apps: list[TrackedApp]) -> bool:
        """Observe one cluster's apps and apply changes; whether the cluster answered."""
        listing = await self._listing(cluster)
        self.ctx.metrics.cluster_polled(cluster.id, cluster.name, listing.answered)
        at = utcnow()
        for app in apps:
            assert app.job_id is not None
            summary = listing.get(app.job_id)
            if summary is not None and self._quiet.get(app.id) == (app, summary):
                # The same row and the same listing as a tick ago, which changed nothing: a decision on
                # a job seen is a function of these alone (no clock), so it would change nothing again.
                self._quiet_next[app.id] = (app, summary)
                continue
            obs = listing.observe(app.job_id, at)
            changes = self._changes(app, self._decide(app, obs))
            if changes:
                await self.apply(app.id, app.job_id, obs)
            if summary is not None and summary.pods is not None and summary.pods != app.jobmanager_pods:
                await self._pods_seen(app.id, app.job_id, summary.pods, at)
            elif not changes and isinstance(obs, Seen):
                self._quiet_next[app.id] = (app, summary)
        return listing.answered

    async def _pods_seen(self, app_id: int, job_id: str, pods: dict[str, int], at: datetime) -> None:
        """Kubernetes: remember the JobManager pods; a replaced or restarted pod is told in the timeline."""
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            if row is None or row.job_id != job_id:
                return
            if self.ctx.leases is not None:
                await self.ctx.leases.fence(s, row.cluster_id)
            for note in pod_changes(row.jobmanager_pods, pods):
                await record_event(s, row, row.state, Cause.OBSERVER, note, at=at)
            row.jobmanager_pods = pods

    async def observe_app(self, app_id: int) -> None:
        """Observe one application now (after a user's operation, instead of waiting a tick)."""
        async with self.ctx.sessions() as s:
            app = await s.get(App, app_id)
            cluster = await s.get(Cluster, app.cluster_id) if app is not None else None
        if app is None or cluster is None or app.job_id is None:
            return
        obs = (await self._listing(cluster)).observe(app.job_id, utcnow())
        await self.apply(app.id, app.job_id, obs)

    def _decide(self, app: TrackedApp, obs: Observation) -> Decision:
        view = AppView(
            AppState(app.state),
            FlinkJobState.parse(app.job_state),
            app.unconfirmed_since,
            app.submitted_at,
            stop_in_flight=app.operation in ("stop", "cancel"),
            start_in_flight=app.operation in ("start", "restart", "upgrade"),
            batch=app.runtime_mode == "BATCH",
        )
        return decide(view, obs, lost_after=self.lost_after, submit_grace=self.submit_grace)

    @staticmethod
    def _changes(app: TrackedApp, d: Decision) -> bool:
        tasks = (app.tasks_running, app.tasks_total)
        return (
            d.state is not None
            or d.note is not None
            or (d.job_state.value if d.job_state else None) != app.job_state
            or (d.tasks is not None and d.tasks != tasks)
            or d.unconfirmed_since != app.unconfirmed_since
        )

    async def apply(self, app_id: int, job_id: str, obs: Observation) -> None:
        try:
            if await self._apply(app_id, job_id, obs) == AppState.FAILED:
                self._tell_why(app_id, job_id)
        except StateChanged:
            pass  # another writer got there first; the next observation decides again
        except LeaseLost as exc:
            log.info("observation of app %s not stored: %s", app_id, exc)

    async def _apply(self, app_id: int, job_id: str, obs: Observation) -> AppState | None:
        """Store what the observation means; the state the app moved to, if it moved."""
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            if row is None or row.job_id != job_id:
                return None  # a new start replaced the job meanwhile
            if self.ctx.leases is not None:
                await self.ctx.leases.fence(s, row.cluster_id)  # another instance may watch it now
            d = self._decide(row, obs)
            fields: dict[str, object] = {
                "unconfirmed_since": d.unconfirmed_since,
                "job_state": d.job_state.value if d.job_state else None,
            }
            if not isinstance(obs, Unknown):
                fields["own_observed_at"] = obs.at
            elif row.unconfirmed_since is None:
                fields["own_observed_at"] = row.observed_at  # its cluster's stamp covers it no more
            if d.tasks is not None:
                fields["tasks_running"], fields["tasks_total"] = d.tasks
            if d.job_unknown:
                # LOST shows as unknown what is no longer known; observed_at keeps when it was last seen.
                fields.update(tasks_running=None, tasks_total=None, config_verified=None, config_mismatches=None)
            if d.state is not None:
                previous = AppState(row.state)
                await set_app_state(s, row, d.state, Cause.OBSERVER, d.detail, at=obs.at, **fields)
                reason = alert_for_transition(previous, d.state)
                if reason is not None:
                    raise_alert(s, row, reason, d.detail, previous_state=previous.value)
                return d.state
            for k, v in fields.items():
                setattr(row, k, v)
            if d.note:
                await record_event(s, row, row.state, Cause.OBSERVER, d.note, at=obs.at)
            return None

    def _tell_why(self, app_id: int, job_id: str) -> None:
        """Put Flink's reason for a failure in the timeline, read once the state is written (no I/O then)."""

        async def tell() -> None:
            async with self.ctx.sessions() as s:
                app = await s.get(App, app_id)
                cluster = await s.get(Cluster, app.cluster_id) if app is not None else None
            reason = await failure_reason(self.ctx, cluster, job_id, attempts=10) if cluster is not None else None
            if reason is None:
                return
            async with self.ctx.sessions() as s, s.begin():
                row = await lock_app(s, app_id)
                if row is not None and row.job_id == job_id:
                    await record_event(s, row, row.state, Cause.OBSERVER, f"Flink's reason: {reason}")

        task = asyncio.create_task(tell(), name=f"failure-reason:{app_id}")
        self.ctx.background.add(task)
        task.add_done_callback(self.ctx.background.discard)

    # ---- per-job detail ----------------------------------------------------------------------
    async def details_once(self) -> None:
        await self.ctx.leases_ready()
        async with self.ctx.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(App, Cluster)
                    .join(Cluster, App.cluster_id == Cluster.id)
                    .where(App.state.in_([a.value for a in ACTIVE_STATES]), App.job_id.is_not(None))
                )
            ).all()
        sem = asyncio.Semaphore(16)

        async def one(app: App, cluster: Cluster) -> None:
            async with sem:
                try:
                    await self.detail(app, cluster)
                except FlinkError as exc:
                    log.debug("detail of app %s: %s", app.id, exc)

        await asyncio.gather(*(one(app, cluster) for app, cluster in rows if self.ctx.watches(cluster.id)))

    async def detail(self, app: App, cluster: Cluster) -> None:
        assert app.job_id is not None
        rest = target_for(self.ctx, cluster).flink_api(app.job_id)
        if rest is None:
            return  # no REST API to ask (Kubernetes without a URL template): the listing is all we have
        client, flink_job_id = rest
        stats = await client.checkpoints(flink_job_id)
        await self._store_checkpoints(app.id, app.job_id, stats)
        await record_checkpoints(self.ctx, app.id, app.job_id, stats.history)
        if app.state == AppState.RUNNING.value and app.config_verified is None and app.running_version:
            job_config = await client.job_config(flink_job_id)
            checkpoint_config = await client.checkpoint_config(flink_job_id)
            async with self.ctx.sessions() as s:
                version = (
                    await s.execute(
                        sa.select(AppVersion.spec).where(
                            AppVersion.app_id == app.id, AppVersion.version == app.running_version
                        )
                    )
                ).scalar_one()
            mismatches = compare(AppSpec.model_validate(version), job_config, checkpoint_config)
            async with self.ctx.sessions() as s, s.begin():
                row = await lock_app(s, app.id)
                if row is None or row.job_id != app.job_id:
                    return
                row.config_verified = not mismatches
                row.config_mismatches = mismatches
                exec_cfg = job_config.get("execution-config") or {}
                row.config_readback = {
                    "restart_strategy": exec_cfg.get("restart-strategy"),
                    "parallelism": exec_cfg.get("job-parallelism"),
                    "checkpointing": checkpoint_config,
                }
                detail = (
                    "Flink runs with the settings asked for (verified from its readback)"
                    if not mismatches
                    else "Flink runs with other settings than asked: " + "; ".join(mismatches)
                )
                await record_event(s, row, row.state, Cause.OBSERVER, detail)
                if mismatches:
                    raise_alert(s, row, AlertReason.CONFIG_MISMATCH, detail, mismatches=mismatches)

    async def _store_checkpoints(self, app_id: int, job_id: str, stats: CheckpointStats) -> None:
        latest = stats.latest_completed
        summary = {
            "completed": stats.completed,
            "failed": stats.failed,
            "in_progress": stats.in_progress,
            "restored_from": stats.latest_restored_path,
        }
        if latest is not None:
            summary.update(
                id=latest.checkpoint_id,
                path=latest.external_path,
                completed_at_ms=latest.latest_ack_ms,
                duration_ms=latest.duration_ms,
                size_bytes=latest.size_bytes,
                is_savepoint=latest.is_savepoint,
            )
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            if row is None or row.job_id != job_id:
                return
            if row.last_checkpoint != summary:
                row.last_checkpoint = summary
            retained = (row.launch_config or {}).get(
                "execution.checkpointing.externalized-checkpoint-retention"
            ) == "RETAIN_ON_CANCELLATION"
            if latest is None or not latest.external_path or latest.is_savepoint or not retained:
                return
            known = (
                await s.execute(
                    sa.select(Snapshot.id).where(Snapshot.app_id == app_id, Snapshot.path == latest.external_path)
                )
            ).first()
            if known:
                return
            s.add(
                Snapshot(
                    app_id=app_id,
                    job_id=job_id,
                    kind="checkpoint",
                    trigger="flink",
                    path=latest.external_path,
                    checkpoint_id=latest.checkpoint_id,
                )
            )
            old = (
                (
                    await s.execute(
                        sa.select(Snapshot.id)
                        .where(Snapshot.app_id == app_id, Snapshot.kind == "checkpoint")
                        .order_by(Snapshot.id.desc())
                        .offset(KEEP_CHECKPOINTS - 1)
                    )
                )
                .scalars()
                .all()
            )
            if old:
                await s.execute(sa.delete(Snapshot).where(Snapshot.id.in_(old)))
