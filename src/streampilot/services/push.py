"""Job status pushed by the JobManager (flink/runner/StreampilotStatusPush.java, Flink 2.x).

A pushed status change makes the tracker observe that job at once, through the same rules and the one
state writer as its polls: so a push that is late, repeated or out of order changes nothing the
cluster does not confirm, and a lost one is caught up by the next poll. A pushed creation event
carries the job's lineage (its sources and sinks), stored per app. Each cluster has its own push token
(an HMAC of its id with the home's artifact key): a token opens one cluster's endpoint only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from streampilot.domain.urls import without_credentials
from streampilot.services.context import Context
from streampilot.services.errors import NotFound, Unauthorized
from streampilot.store.orm import App, Cluster, Lineage, PushedStatus, utcnow

log = logging.getLogger("streampilot.push")

LISTENER_CLASS = "io.streampilot.StreampilotStatusPush"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STALE_PUSH = timedelta(minutes=1)
CONFIRM_AFTER_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)  # re-observations until Flink's REST API agrees


def push_token(ctx: Context, cluster_id: int) -> str:
    return ctx.artifacts.signature(f"push:{cluster_id}")


def push_url(ctx: Context, cluster_id: int) -> str:
    base = ctx.settings.console_url or ctx.settings.server_url
    return f"{base.rstrip('/')}/api/v1/push/{cluster_id}"


def push_configuration(ctx: Context, cluster_id: int) -> dict[str, str]:
    """What a JobManager's configuration needs to push to this platform."""
    return {
        "execution.job-status-changed-listeners": LISTENER_CLASS,
        "streampilot.push.url": push_url(ctx, cluster_id),
        "streampilot.push.token": push_token(ctx, cluster_id),
    }


def pushes_to_local(ctx: Context, version: str) -> bool:
    """Local clusters get the listener where Flink has the listener interface (2.0 and newer)."""
    return ctx.settings.push and int(version.split(".", 1)[0]) >= 2


class _TakenMeanwhile(Exception):
    """Another instance took some of the pushed statuses first (rolled back; they are its now)."""


@dataclass
class PushReceiver:
    ctx: Context
    _passes: int = 0

    async def receive(self, cluster_id: int, token: str, event: dict[str, Any], observe: Any) -> str:
        """Take one pushed event; what became of it (for the answer and the log)."""
        if not hmac.compare_digest(token.encode(), push_token(self.ctx, cluster_id).encode()):
            raise Unauthorized("wrong push token for this cluster (X-Streampilot-Push)")
        metrics = self.ctx.metrics
        kind = str(event.get("kind", ""))
        metrics.push_events.labels(kind or "unknown").inc()
        at_ms = event.get("at_ms")
        if isinstance(at_ms, int | float):
            metrics.push_delay.observe(max(0.0, time.time() - at_ms / 1000))
        job_id = str(event.get("job_id", "")).lower()
        if not _JOB_ID.match(job_id):
            return "ignored: no job id"
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, cluster_id)
            if cluster is None:
                raise NotFound(f"no cluster with id {cluster_id}")
            app = (
                await s.execute(sa.select(App).where(App.cluster_id == cluster_id, App.job_id == job_id))
            ).scalar_one_or_none()
        if app is None:
            return "ignored: no application runs this job"
        if kind == "status":
            pushed = str(event.get("new_status", ""))[:20]
            if not self.ctx.watches(cluster_id):
                # Another instance holds this cluster's lease (only its writes count): hand it over.
                async with self.ctx.sessions() as s, s.begin():
                    s.add(PushedStatus(cluster_id=cluster_id, app_id=app.id, new_status=pushed))
                return f"handed to the instance watching this cluster ({pushed})"
            return await self._observe(app.id, pushed, observe)
        if kind == "created":
            await self._lineage(app.id, job_id, event)
            return "lineage stored"
        return "ignored: unknown kind"

    async def _observe(self, app_id: int, pushed: str, observe: Any) -> str:
        if await self._confirmed(app_id, pushed, observe):
            return f"observed ({pushed})"
        # The JobManager tells at the transition; its REST API may say so a moment later (a job's
        # end is listed once its JobMaster has finished): confirm shortly, in the background.
        task = asyncio.create_task(self._confirm_later(app_id, pushed, observe))
        self.ctx.background.add(task)
        task.add_done_callback(self.ctx.background.discard)
        return f"observing ({pushed})"

    async def take_handed(self, observe: Any) -> int:
        """Observe the pushes other instances received for the clusters this one watches (a loop's pass,
        each ``STREAMPILOT_PUSH_HANDOFF_S``); pushes nobody took within a minute are dropped (polls
        have seen them by then). How many were taken."""
        leases = self.ctx.leases
        held = sorted(leases.held) if leases is not None else []
        self._passes += 1
        try:
            rows = await self._take(held)
        except _TakenMeanwhile:
            return 0  # the lease moved meanwhile: its new holder takes them
        latest = {r.app_id: r.new_status for r in sorted(rows, key=lambda r: r.id)}
        for app_id, pushed in latest.items():
            try:
                await self._observe(app_id, pushed, observe)
            except Exception as exc:  # the next poll sees it anyway
                log.info("observing a handed push of app %s: %s", app_id, exc)
        return len(rows)

    async def _take(self, held: list[int]) -> list[Any]:
        async with self.ctx.sessions() as s, s.begin():
            if self._passes % 600 == 1:
                await s.execute(sa.delete(PushedStatus).where(PushedStatus.received_at < utcnow() - STALE_PUSH))
            if not held:
                return []
            rows = (
                await s.execute(
                    sa.select(PushedStatus.id, PushedStatus.app_id, PushedStatus.new_status).where(
                        PushedStatus.cluster_id.in_(held)
                    )
                )
            ).all()
            if not rows:
                return []
            # Taken once: with the lease moving meanwhile, only the instance whose delete counted observes.
            deleted = await s.execute(sa.delete(PushedStatus).where(PushedStatus.id.in_([r.id for r in rows])))
            if deleted.rowcount != len(rows):  # type: ignore[attr-defined]
                raise _TakenMeanwhile()
        return list(rows)

    async def _confirmed(self, app_id: int, pushed: str, observe: Any) -> bool:
        await observe(app_id)
        async with self.ctx.sessions() as s:
            app = await s.get(App, app_id)
        return app is None or app.job_state == pushed

    async def _confirm_later(self, app_id: int, pushed: str, observe: Any) -> None:
        for wait_s in CONFIRM_AFTER_S:
            await asyncio.sleep(wait_s)
            try:
                if await self._confirmed(app_id, pushed, observe):
                    return
            except Exception as exc:  # the next poll sees it anyway
                log.info("confirming a pushed %s of app %s: %s", pushed, app_id, exc)
                return

    async def _lineage(self, app_id: int, job_id: str, event: dict[str, Any]) -> None:
        def vertices(raw: Any) -> list[dict[str, Any]]:
            out = []
            for v in raw if isinstance(raw, list) else []:
                datasets = v.get("datasets", []) if isinstance(v, dict) else []
                out.append(
                    {
                        "datasets": [
                            {"name": str(d.get("name", "")), "namespace": str(d.get("namespace", ""))}
                            for d in datasets
                            if isinstance(d, dict)
                        ]
                    }
                )
            return out

        sources, sinks = vertices(event.get("sources")), vertices(event.get("sinks"))
        relations = [
            [int(a), int(b)]
            for a, b in (r for r in event.get("relations", []) if isinstance(r, list) and len(r) == 2)
            if 0 <= int(a) < len(sources) and 0 <= int(b) < len(sinks)
        ]
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(Lineage).where(Lineage.app_id == app_id, Lineage.job_id == job_id))
            s.add(
                Lineage(
                    app_id=app_id,
                    job_id=job_id,
                    mode=str(event.get("mode") or "") or None,
                    sources=sources,
                    sinks=sinks,
                    relations=relations,
                )
            )


def dataset_key(dataset: dict[str, Any]) -> str:
    """How a dataset is named across apps: its namespace (a connector's address) and name, credentials
    left out."""
    namespace = without_credentials(str(dataset.get("namespace", ""))) if dataset.get("namespace") else ""
    return f"{namespace}/{dataset.get('name', '')}" if namespace else str(dataset.get("name", ""))
