"""Supervision of the local clusters the platform runs, the way a process supervisor keeps services up.

Every ``STREAMPILOT_FLINK_SUPERVISE_EVERY_S`` the JobManager and TaskManager processes of each local
cluster this process brought up (phase RUNNING) are looked up: a TaskManager that is gone is started
again, a JobManager that is gone brings the whole cluster up again (Flink then recovers the jobs
through the apps' restart strategies and policies). Each restart is an event on the cluster's
timeline; more than ``STREAMPILOT_FLINK_LOCAL_RESTARTS_PER_HOUR`` within an hour and the platform
stops trying (the cluster is FAILED) rather than loop on a cause it cannot fix, until the user
starts the cluster again. The local clusters' heartbeats (1 s, timeout 5 s) let Flink notice a lost
TaskManager in seconds as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from streampilot.flink.local import LocalCluster, LocalClusterError
from streampilot.services.context import Context
from streampilot.store.orm import Cluster, ClusterEvent, utcnow
from streampilot.targets.kinds import LOCAL

log = logging.getLogger("streampilot.supervisor")
WINDOW_S = 3600.0


@dataclass
class Supervision:
    """What the supervisor knows of one local cluster (shown by GET /api/v1/clusters/{id})."""

    processes: dict[str, list[int]] = field(default_factory=dict)
    restarts: deque[float] = field(default_factory=deque)  # monotonic times within the last hour
    restarts_total: int = 0
    last_restart_at: datetime | None = None
    last_reason: str | None = None

    def as_dict(self, budget: int) -> dict[str, Any]:
        return {
            "processes": [{"role": role, "pid": pid} for role, pids in self.processes.items() for pid in pids],
            "restarts": self.restarts_total,
            "restarts_last_hour": len(self.restarts),
            "restart_budget_per_hour": budget,
            "last_restart_at": self.last_restart_at.isoformat() if self.last_restart_at else None,
            "last_reason": self.last_reason,
        }


@dataclass
class Supervisor:
    ctx: Context

    @property
    def seen(self) -> dict[int, Any]:
        return self.ctx.supervisions

    @property
    def budget(self) -> int:
        return self.ctx.settings.flink.local_restarts_per_hour

    async def run_once(self) -> None:
        from streampilot.services.clusters import ClusterService  # services import each other lazily

        async with self.ctx.sessions() as s:
            clusters = list(
                (await s.execute(sa.select(Cluster).where(Cluster.kind == LOCAL, Cluster.desired_running))).scalars()
            )
        await self.ctx.leases_ready()
        for cluster in clusters:
            if not self.ctx.watches(cluster.id):
                continue
            if self.ctx.cluster_phases.get(cluster.id) != "RUNNING":
                continue  # starting, stopping, stopped or given up: not ours to touch now
            local = await ClusterService(self.ctx).local(cluster)
            try:
                await self.check(cluster, local)
            except LocalClusterError as exc:
                await self._event(cluster.id, "restart_failed", f"starting the cluster's processes failed: {exc}")

    async def check(self, cluster: Cluster, local: LocalCluster) -> None:
        state: Supervision = self.seen.setdefault(cluster.id, Supervision())
        jobmanagers = await asyncio.to_thread(local.pids, "jobmanager")
        taskmanagers = await asyncio.to_thread(local.pids, "taskmanager")
        before = state.processes
        state.processes = {"jobmanager": jobmanagers, "taskmanager": taskmanagers}
        if not jobmanagers:
            was = ", ".join(str(p) for p in before.get("jobmanager", [])) or "?"
            if await self._spend(cluster, state, f"the JobManager (pid {was}) is gone"):
                # Without their JobManager (no HA) the TaskManagers hold nothing worth a graceful stop,
                # which can take them 20 s: they go at once and the cluster starts afresh.
                await asyncio.to_thread(local.kill, "taskmanager")
                await local.start(self.ctx.settings.flink.local_ready_timeout_s)
                await self._restarted(cluster, state, local, "JobManager and TaskManagers started again")
            return
        missing = local.layout.taskmanagers - len(taskmanagers)
        if missing > 0:
            gone = [p for p in before.get("taskmanager", []) if p not in taskmanagers]
            which = f"pid {', '.join(map(str, gone))}" if gone else f"{missing} of {local.layout.taskmanagers}"
            if await self._spend(cluster, state, f"TaskManager ({which}) is gone"):
                for _ in range(missing):
                    await local.start_taskmanager()
                await self._restarted(cluster, state, local, f"{missing} TaskManager(s) started again")

    async def _spend(self, cluster: Cluster, state: Supervision, reason: str) -> bool:
        """Whether the budget allows one more restart; when spent, the cluster is given up (FAILED)."""
        now = time.monotonic()
        while state.restarts and now - state.restarts[0] > WINDOW_S:
            state.restarts.popleft()
        state.last_reason = reason
        if len(state.restarts) >= self.budget:
            self.ctx.cluster_phases[cluster.id] = "FAILED"
            await self._event(
                cluster.id,
                "budget_spent",
                f"{reason}; {len(state.restarts)} restarts within the last hour reach the budget of {self.budget}: "
                "not restarting it again; find the cause in the cluster's logs, then start the cluster",
            )
            log.error("local cluster %r: %s; restart budget spent", cluster.name, reason)
            return False
        state.restarts.append(now)
        state.restarts_total += 1
        state.last_restart_at = utcnow()
        return True

    async def _restarted(self, cluster: Cluster, state: Supervision, local: LocalCluster, what: str) -> None:
        state.processes = {
            "jobmanager": await asyncio.to_thread(local.pids, "jobmanager"),
            "taskmanager": await asyncio.to_thread(local.pids, "taskmanager"),
        }
        detail = f"{state.last_reason}: {what} (restart {len(state.restarts)} of at most {self.budget} per hour)"
        log.warning("local cluster %r: %s", cluster.name, detail)
        await self._event(cluster.id, "process_restarted", detail)

    async def _event(self, cluster_id: int, kind: str, detail: str) -> None:
        async with self.ctx.sessions() as s, s.begin():
            s.add(ClusterEvent(cluster_id=cluster_id, kind=kind, detail=detail))


def supervision_status(ctx: Context, cluster_id: int) -> dict[str, Any] | None:
    state = ctx.supervisions.get(cluster_id)
    return state.as_dict(ctx.settings.flink.local_restarts_per_hour) if isinstance(state, Supervision) else None
