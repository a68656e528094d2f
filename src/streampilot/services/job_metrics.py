"""Job metrics: sampled from Flink's REST API in one round per cluster, stored, averaged and pruned.

Each ``STREAMPILOT_METRICS_EVERY_S`` the sampler asks every cluster this instance watches about its
running jobs, all jobs of a cluster in one round of concurrent requests (never one app per tick): per
vertex one request for its subtasks' aggregated metrics, per job one for its restart count every
sixth round. What to ask
of a job's vertices is found once per job (its graph and the operator metrics Flink lists). Samples
are kept as taken for ``STREAMPILOT_METRICS_RAW_HOURS``, then as 1-minute averages until
``STREAMPILOT_METRICS_KEEP_DAYS``. Checkpoints come from the checkpoint history the tracker's details
read (``record_checkpoints``), one row per finished checkpoint, failed ones included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from streampilot.domain.apps import MetricAlerts
from streampilot.domain.job_metrics import (
    JOB_METRICS,
    UNITS,
    VertexPlan,
    downsample,
    job_values,
    plan_vertex,
    series,
    vertex_values,
)
from streampilot.domain.metric_rules import readings
from streampilot.domain.states import AppState, Cause
from streampilot.flink.client import CheckpointInfo, FlinkClient, FlinkError, FlinkUnavailable
from streampilot.services.alerting import raise_alert
from streampilot.services.context import Context
from streampilot.services.leases import LeaseLost
from streampilot.services.statewriter import lock_app, record_event
from streampilot.services.targets import target_for
from streampilot.store.orm import (
    App,
    AppVersion,
    CheckpointRecord,
    Cluster,
    JobMetricSample,
    MetricBreach,
    utcnow,
)

log = logging.getLogger("streampilot.metrics")

ROLLUP_STEP_S = 60
MAINTAIN_EVERY_S = 300.0
JOB_METRICS_EVERY = 6  # rounds between two reads of a job's restart count
PER_CLUSTER = 8  # concurrent requests to one cluster in a round
MAX_POINTS = 720  # a window answers at most about this many points per series (coarser steps beyond)


@dataclass
class MetricsSampler:
    ctx: Context
    requests: int = 0  # calls made, for benchmarks and tests
    _plans: dict[tuple[int, str], list[VertexPlan]] = field(default_factory=dict)
    _rounds: dict[tuple[int, str], int] = field(default_factory=dict)
    _maintained_at: float = 0.0

    async def run_once(self) -> None:
        await self.ctx.leases_ready()
        async with self.ctx.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(App.id, App.job_id, Cluster)
                    .join(Cluster, App.cluster_id == Cluster.id)
                    .where(App.state == AppState.RUNNING.value, App.job_id.is_not(None))
                )
            ).all()
        by_cluster: dict[int, tuple[Cluster, list[tuple[int, str]]]] = {}
        for app_id, job_id, cluster in rows:
            if job_id is not None and self.ctx.watches(cluster.id):
                by_cluster.setdefault(cluster.id, (cluster, []))[1].append((app_id, job_id))
        rounds = await asyncio.gather(*(self._round(cluster, apps) for cluster, apps in by_cluster.values()))
        samples = [sample for found in rounds for sample in found]
        if samples:
            async with self.ctx.sessions() as s, s.begin():
                await s.execute(sa.insert(JobMetricSample), samples)
            await self._alerts(samples)
        running = {(app_id, job_id) for _, apps in by_cluster.values() for app_id, job_id in apps}
        for key in [k for k in self._plans if k not in running]:
            del self._plans[key]
            self._rounds.pop(key, None)  # the job ended: its graph is asked again if it ever runs again
        if time.monotonic() - self._maintained_at > MAINTAIN_EVERY_S:
            self._maintained_at = time.monotonic()
            await self.maintain()

    async def _round(self, cluster: Cluster, apps: list[tuple[int, str]]) -> list[dict[str, Any]]:
        target = target_for(self.ctx, cluster)
        limit = asyncio.Semaphore(PER_CLUSTER)

        async def one(app_id: int, job_id: str) -> dict[str, Any] | None:
            rest = target.flink_api(job_id)
            if rest is None:
                return None  # no REST API to ask (Kubernetes without a URL template)
            try:
                values = await self._sample(rest[0], rest[1], (app_id, job_id), limit)
            except FlinkError as exc:  # this job this round: the next round asks again
                log.debug("metrics of app %s: %s", app_id, exc)
                return None
            return {"app_id": app_id, "job_id": job_id, "at": utcnow(), "step_s": 0, "values": values}

        found = await asyncio.gather(*(one(app_id, job_id) for app_id, job_id in apps))
        return [f for f in found if f is not None]

    async def _get(self, limit: asyncio.Semaphore, call: Any) -> Any:
        async with limit:
            self.requests += 1
            return await call

    async def _sample(
        self, client: FlinkClient, flink_job: str, key: tuple[int, str], limit: asyncio.Semaphore
    ) -> dict[str, Any]:
        plans = self._plans.get(key)
        if plans is None:
            plans = await self._plan(client, flink_job, limit)
            if not plans or any(not p.task for p in plans):
                # Flink's metric store has not read the TaskManagers yet (a job just started): next round.
                raise FlinkUnavailable("Flink lists no metrics for the job's vertices yet")
            self._plans[key] = plans
        # The restart count changes seldom: asked every JOB_METRICS_EVERY-th round (a third of the calls).
        rounds = self._rounds[key] = self._rounds.get(key, -1) + 1
        job_calls = [client.job_metrics(flink_job, list(JOB_METRICS))] if rounds % JOB_METRICS_EVERY == 0 else []
        raws = await asyncio.gather(
            *(self._get(limit, client.vertex_metrics(flink_job, p.id, p.names)) for p in plans),
            *(self._get(limit, call) for call in job_calls),
        )
        now_ms = time.time() * 1000
        per_vertex = {p.id: raw for p, raw in zip(plans, raws[: len(plans)], strict=True)}
        vertices = {p.id: vertex_values(p, per_vertex[p.id], now_ms) for p in plans}
        return {
            "job": job_values(plans, per_vertex, vertices, raws[len(plans)] if job_calls else {}),
            "vertices": {p.id: {"name": p.name, **vertices[p.id]} for p in plans},
        }

    async def _plan(self, client: FlinkClient, flink_job: str, limit: asyncio.Semaphore) -> list[VertexPlan]:
        """What to ask of each vertex: once per job, from its graph and the metrics Flink lists for it."""
        vertices = await self._get(limit, client.job_vertices(flink_job))
        feeding = {i for v in vertices for i in v.inputs}
        listed = await asyncio.gather(*(self._get(limit, client.vertex_metrics(flink_job, v.id, [])) for v in vertices))
        return [
            plan_vertex(v.id, v.name, source=not v.inputs, sink=v.id not in feeding, available=names)
            for v, names in zip(vertices, listed, strict=True)
        ]

    async def _alerts(self, samples: list[dict[str, Any]]) -> None:
        """Read each sampled app's metric alerts against its newest sample; a breach that has held long
        enough is told once (an alert through the app's channels and a line in its timeline), and its end
        is noted in the timeline."""
        newest = {sample["app_id"]: sample for sample in samples}
        async with self.ctx.sessions() as s:
            specs = (
                await s.execute(
                    sa.select(App.id, AppVersion.spec)
                    .join(AppVersion, (AppVersion.app_id == App.id) & (AppVersion.version == App.running_version))
                    .where(App.id.in_(list(newest)))
                )
            ).all()
        for app_id, spec in specs:
            if not spec.get("metric_alerts"):
                continue
            try:
                await self._read_rules(app_id, newest[app_id], MetricAlerts.model_validate(spec["metric_alerts"]))
            except LeaseLost:
                return  # another instance watches this cluster now
            except Exception:  # one app's rules must not keep the others from being read
                log.exception("metric alerts of app %s", app_id)

    async def _read_rules(self, app_id: int, sample: dict[str, Any], rules: MetricAlerts) -> None:
        now = sample["at"]
        last_checkpoint_ms = None
        async with self.ctx.sessions() as s:
            if rules.checkpoint_duration_above_s is not None:
                last_checkpoint_ms = (
                    await s.execute(
                        sa.select(CheckpointRecord.duration_ms)
                        .where(
                            CheckpointRecord.app_id == app_id,
                            CheckpointRecord.job_id == sample["job_id"],
                            CheckpointRecord.status == "COMPLETED",
                        )
                        .order_by(CheckpointRecord.checkpoint_id.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
        found = readings(rules, sample["values"]["job"], last_checkpoint_ms)
        async with self.ctx.sessions() as s, s.begin():
            app = await lock_app(s, app_id)
            if app is None or app.job_id != sample["job_id"]:
                return
            if self.ctx.leases is not None:
                await self.ctx.leases.fence(s, app.cluster_id)
            breaches = {
                b.reason: b
                for b in (await s.execute(sa.select(MetricBreach).where(MetricBreach.app_id == app_id))).scalars()
            }
            for reading in found:
                breach = breaches.get(reading.reason.value)
                if reading.breached is None:
                    continue
                if not reading.breached:
                    if breach is not None:
                        if breach.alerted_at is not None:
                            await record_event(s, app, app.state, Cause.OBSERVER, f"back to normal: {reading.detail}")
                        await s.delete(breach)
                    continue
                if breach is None:
                    breach = MetricBreach(app_id=app_id, reason=reading.reason.value, since=now, alerted_at=None)
                    s.add(breach)
                if breach.alerted_at is None and (now - breach.since).total_seconds() >= reading.hold_s:
                    breach.alerted_at = now
                    await record_event(s, app, app.state, Cause.OBSERVER, reading.detail)
                    raise_alert(s, app, reading.reason, reading.detail, since=breach.since.isoformat())

    async def maintain(self) -> None:
        """Average samples older than the raw period into minutes, and prune what is past keeping."""
        settings = self.ctx.settings.metrics
        now = utcnow()
        raw_until = now - timedelta(hours=settings.raw_hours)
        raw_until = raw_until.replace(second=0, microsecond=0)  # whole minutes only
        async with self.ctx.sessions() as s, s.begin():
            old = (
                await s.execute(
                    sa.select(
                        JobMetricSample.app_id, JobMetricSample.job_id, JobMetricSample.at, JobMetricSample.values
                    )
                    .where(JobMetricSample.step_s == 0, JobMetricSample.at < raw_until)
                    .order_by(JobMetricSample.app_id, JobMetricSample.at)
                )
            ).all()
            groups: dict[tuple[int, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
            for row in old:
                groups[(row.app_id, row.job_id)].append((_ms(row.at), row.values))
            rollups = [
                {"app_id": app_id, "job_id": job_id, "at": _dt(at_ms), "step_s": ROLLUP_STEP_S, "values": values}
                for (app_id, job_id), samples in groups.items()
                for at_ms, values in downsample(samples, ROLLUP_STEP_S * 1000)
            ]
            if rollups:
                await s.execute(sa.insert(JobMetricSample), rollups)
            await s.execute(
                sa.delete(JobMetricSample).where(JobMetricSample.step_s == 0, JobMetricSample.at < raw_until)
            )
            keep_until = now - timedelta(days=settings.keep_days)
            await s.execute(sa.delete(JobMetricSample).where(JobMetricSample.at < keep_until))
            await s.execute(sa.delete(CheckpointRecord).where(CheckpointRecord.triggered_at < keep_until))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _dt(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC)


async def record_checkpoints(ctx: Context, app_id: int, job_id: str, history: list[CheckpointInfo]) -> None:
    """Keep each finished checkpoint of Flink's history (completed or failed) once."""
    done = [c for c in history if c.status in ("COMPLETED", "FAILED") and c.checkpoint_id >= 0]
    if not done:
        return
    async with ctx.sessions() as s, s.begin():
        known = set(
            (
                await s.execute(
                    sa.select(CheckpointRecord.checkpoint_id).where(
                        CheckpointRecord.app_id == app_id,
                        CheckpointRecord.job_id == job_id,
                        CheckpointRecord.checkpoint_id.in_([c.checkpoint_id for c in done]),
                    )
                )
            ).scalars()
        )
        for c in done:
            if c.checkpoint_id in known:
                continue
            s.add(
                CheckpointRecord(
                    app_id=app_id,
                    job_id=job_id,
                    checkpoint_id=c.checkpoint_id,
                    status=c.status,
                    triggered_at=_dt(c.trigger_ms) if c.trigger_ms else utcnow(),
                    duration_ms=c.duration_ms,
                    size_bytes=c.size_bytes,
                    is_savepoint=c.is_savepoint,
                    failure=(c.failure_message or "")[:1000] or None,
                )
            )


async def app_metrics(ctx: Context, app_id: int, window_s: int) -> dict[str, Any]:
    """An app's series over the last ``window_s`` seconds (the caller has checked it may see the app):
    samples as taken where the window allows, coarser where it is long (about ``MAX_POINTS`` points)."""
    now = utcnow()
    since = now - timedelta(seconds=window_s)
    async with ctx.sessions() as s:
        rows = (
            await s.execute(
                sa.select(JobMetricSample.at, JobMetricSample.step_s, JobMetricSample.values)
                .where(JobMetricSample.app_id == app_id, JobMetricSample.at >= since)
                .order_by(JobMetricSample.at)
            )
        ).all()
        checkpoints = (
            (
                await s.execute(
                    sa.select(CheckpointRecord)
                    .where(CheckpointRecord.app_id == app_id, CheckpointRecord.triggered_at >= since)
                    .order_by(CheckpointRecord.triggered_at)
                )
            )
            .scalars()
            .all()
        )
    every_ms = int(ctx.settings.metrics.every_s * 1000)
    step_ms = max(every_ms, window_s * 1000 // MAX_POINTS)
    rollup_ms = ROLLUP_STEP_S * 1000
    if step_ms > every_ms:
        step_ms = -(-step_ms // rollup_ms) * rollup_ms if step_ms > rollup_ms else step_ms
        samples = downsample([(_ms(r.at), r.values) for r in rows], step_ms)
    else:
        samples = [(_ms(r.at), r.values) for r in rows if r.step_s == 0]
    answer = series(samples)
    answer["series"]["checkpoint_duration_ms"] = [
        [_ms(c.triggered_at), c.duration_ms]
        for c in checkpoints
        if c.status == "COMPLETED" and c.duration_ms is not None
    ]
    answer["series"]["checkpoint_size_bytes"] = [
        [_ms(c.triggered_at), c.size_bytes] for c in checkpoints if c.status == "COMPLETED" and c.size_bytes is not None
    ]
    answer["checkpoints"] = [
        {
            "id": c.checkpoint_id,
            "at_ms": _ms(c.triggered_at),
            "status": c.status,
            "duration_ms": c.duration_ms,
            "size_bytes": c.size_bytes,
            "savepoint": c.is_savepoint,
            "failure": c.failure,
        }
        for c in checkpoints
    ]
    answer.update(window_s=window_s, step_s=max(every_ms, step_ms) / 1000, units=UNITS, now_ms=_ms(now))
    return answer
