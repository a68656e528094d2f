"""The footing of lifecycle operations: the per-app operation slot, state writes and notes on
behalf of a user or policy, restore paths, savepoint polling and the snapshots we keep.

The operation slot is a conditional UPDATE, so it works across processes; a second operation
meanwhile is a Conflict (HTTP 409). The verbs themselves live in services/lifecycle.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import sqlalchemy as sa

from streampilot.domain.errors import SpecError
from streampilot.domain.states import ACTIVE_STATES, AppState, Cause
from streampilot.flink.client import FlinkClient, FlinkError, FlinkUnavailable, SavepointResult
from streampilot.services.apps import AppService
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound, Unavailable
from streampilot.services.k8s_clusters import is_kubernetes
from streampilot.services.kubernetes import KubernetesTarget
from streampilot.services.statewriter import StateChanged, lock_app, record_event, set_app_state
from streampilot.store.orm import App, Cluster, Snapshot, utcnow

STALE_OPERATION = timedelta(minutes=15)
# What we knew about an app's previous job, cleared whenever the app gets a new one.
FRESH_JOB_FIELDS: dict[str, Any] = {
    "job_state": None,
    "tasks_running": None,
    "tasks_total": None,
    "unconfirmed_since": None,
    "config_verified": None,
    "config_mismatches": None,
    "config_readback": None,
    "last_checkpoint": None,
    "jobmanager_pods": None,
}


class Observer(Protocol):
    async def observe_app(self, app_id: int) -> None: ...


def local_path(path: str) -> Path | None:
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and path.startswith("/"):
        return Path(path)
    return None


def snapshot_exists(path: str) -> bool:
    """False only if we can see that a local snapshot is gone; remote paths are trusted."""
    local = local_path(path)
    if local is None:
        return True
    return (local / "_metadata").exists() or (local.is_file() and local.name == "_metadata")


@dataclass
class Operations:
    ctx: Context
    observe: Observer | None = None  # the tracker, for a direct observation after an operation

    @property
    def apps(self) -> AppService:
        return AppService(self.ctx)

    @asynccontextmanager
    async def operation(self, app_id: int, name: str) -> AsyncIterator[None]:
        now = utcnow()
        async with self.ctx.sessions() as s, s.begin():
            result = await s.execute(
                sa.update(App)
                .where(App.id == app_id, sa.or_(App.operation.is_(None), App.operation_since < now - STALE_OPERATION))
                .values(operation=name, operation_since=now)
            )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            app = await self.apps.get(app_id)
            raise Conflict(
                f"a {app.operation} of application {app.name!r} is already in progress; wait for it to finish"
            )
        try:
            yield
        finally:
            async with self.ctx.sessions() as s, s.begin():
                await s.execute(
                    sa.update(App)
                    .where(App.id == app_id, App.operation == name)
                    .values(operation=None, operation_since=None)
                )

    async def _cluster(self, app: App) -> tuple[Cluster, FlinkClient]:
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, app.cluster_id)
        if cluster is None:
            raise NotFound(f"the cluster of application {app.name!r} no longer exists")
        return cluster, self.ctx.client(cluster)

    async def resolve_restore(self, app: App, restore: str) -> str | None:
        if restore in ("", "none"):
            return None
        if restore != "latest":
            if not snapshot_exists(restore):
                raise SpecError.one("restore", f"no savepoint or checkpoint at {restore} (no _metadata there)")
            return restore
        async with self.ctx.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(Snapshot)
                    .where(Snapshot.app_id == app.id)
                    .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
                )
            ).scalars()
            candidates = [r.path for r in rows]
        for path in candidates:
            if await asyncio.to_thread(snapshot_exists, path):
                return path
        raise SpecError.one(
            "restore",
            f"application {app.name!r} has no savepoint or retained checkpoint to "
            "restore from; start with restore 'none' or give a path",
        )

    async def _kubernetes(self, app: App) -> KubernetesTarget | None:
        cluster, _ = await self._cluster(app)
        return KubernetesTarget(self.ctx.k8s, cluster) if is_kubernetes(cluster) else None

    async def _require_active(self, app_id: int) -> tuple[App, FlinkClient]:
        app = await self.apps.get(app_id)
        if AppState(app.state) not in ACTIVE_STATES or not app.job_id:
            raise Conflict(f"application {app.name!r} is {app.state}, not running")
        _, client = await self._cluster(app)
        return app, client

    async def _await_savepoint(self, client: FlinkClient, job_id: str, trigger: str) -> SavepointResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.settings.flink.savepoint_timeout_s
        while loop.time() < deadline:
            try:
                result = await client.savepoint_status(job_id, trigger)
            except FlinkUnavailable:
                result = SavepointResult(False, None, None)
            if result.done:
                return result
            await asyncio.sleep(0.3)
        return SavepointResult(True, None, f"no result after {self.ctx.settings.flink.savepoint_timeout_s:.0f} s")

    async def _snapshot(self, app: App, path: str, trigger: str) -> None:
        async with self.ctx.sessions() as s, s.begin():
            s.add(Snapshot(app_id=app.id, job_id=app.job_id or "", kind="savepoint", trigger=trigger, path=path))

    async def snapshots(self, app_id: int, kind: str) -> list[Snapshot]:
        await self.apps.get(app_id)
        async with self.ctx.sessions() as s:
            return list(
                (
                    await s.execute(
                        sa.select(Snapshot)
                        .where(Snapshot.app_id == app_id, Snapshot.kind == kind)
                        .order_by(Snapshot.id.desc())
                    )
                ).scalars()
            )

    async def _set(self, app_id: int, to: AppState, why: str, cause: Cause = Cause.USER, **fields: Any) -> None:
        for attempt in range(5):
            try:
                async with self.ctx.sessions() as s, s.begin():
                    row = await lock_app(s, app_id)
                    assert row is not None
                    await set_app_state(s, row, to, cause, why, **fields)
                return
            except StateChanged:
                if attempt == 4:
                    raise
                # The observer wrote first: the user's intent still stands, on the state it wrote.

    async def _note(self, app_id: int, detail: str, cause: Cause = Cause.USER) -> None:
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            assert row is not None
            await record_event(s, row, row.state, cause, detail)

    async def _wait_terminal(self, app_id: int, timeout_s: float = 30) -> None:
        """Observe the app directly until Flink reports its job ended (or time runs out)."""
        tracker = self.observe
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if tracker is not None:
                await tracker.observe_app(app_id)
            app = await self.apps.get(app_id)
            if AppState(app.state) not in ACTIVE_STATES:
                return
            await asyncio.sleep(0.2)


def flink_failure(what: str, app: App, exc: FlinkError) -> Exception:
    if isinstance(exc, FlinkUnavailable):
        return Unavailable(f"cluster of {app.name!r} did not answer the {what} request: {exc}")
    return Conflict(f"Flink refused to {what} {app.name!r}: {exc}")
