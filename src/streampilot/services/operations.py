"""The footing of lifecycle operations: stored operations and the per-app slot, state writes and notes
on behalf of a user or policy, restore paths and the snapshots we keep.

An operation is a row (store/orm.Operation) with its steps. Taking one is a conditional UPDATE of the
app's slot in the same transaction that inserts the row, so it works across processes; a second
operation meanwhile is a Conflict (HTTP 409). Its work runs in the background (an API verb answers 202
with the operation) or inline (a policy's restart); either way it ends ``succeeded`` or ``failed`` with
its cause and frees the slot. The verbs live in services/lifecycle.py; after a platform restart,
services/recovery.py resumes or fails what was left running.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from streampilot.domain.access import SYSTEM, Role
from streampilot.domain.errors import SpecError
from streampilot.domain.rules import TransitionRefused
from streampilot.domain.states import ACTIVE_STATES, AppState, Cause
from streampilot.services import access
from streampilot.services.apps import AppService
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound, ServiceError
from streampilot.services.restore_points import newest_restorable, snapshot_problem
from streampilot.services.statewriter import StateChanged, lock_app, record_event, set_app_state
from streampilot.services.targets import target_for
from streampilot.services.variables import VariableService
from streampilot.store.db import lost_connection
from streampilot.store.orm import App, Cluster, Operation, Snapshot, utcnow
from streampilot.targets.port import Target

log = logging.getLogger("streampilot.operations")

STALE_OPERATION = timedelta(minutes=15)
# The slot's phase once a start's job is submitted: the observer then takes every state Flink reports
# as the new job's (before, an ended state may still describe the previous run).
FOLLOWING = "following"
STATE_CHECK_S = 0.05  # how often a waiting operation reads the app's stored state
FINISHED_OPERATION_STATES = ("succeeded", "failed")
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


@dataclass
class OpLog:
    """The running operation as its work sees it: steps to tell, a result to leave."""

    ctx: Context
    op_id: int
    app_id: int
    verb: str
    result: dict[str, Any] = field(default_factory=dict)

    async def step(self, text: str, **result: Any) -> None:
        """Record a step (and facts for the result, e.g. a savepoint trigger to resume from)."""
        self.result.update(result)
        log.debug("%s", text, extra={"app": self.app_id, "operation": self.op_id})
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(Operation, self.op_id)
            if row is None:
                return
            row.steps = [*row.steps, {"at": utcnow().isoformat(), "text": text}]
            row.result = dict(self.result)
            row.updated_at = utcnow()


Work = Callable[[OpLog], Awaitable[None]]


@dataclass
class Operations:
    ctx: Context
    observe: Observer | None = None  # the tracker, for a direct observation after an operation

    @property
    def apps(self) -> AppService:
        return AppService(self.ctx)

    # ---- operations --------------------------------------------------------------------------
    async def replayed(self, app_id: int, verb: str, key: str | None) -> Operation | None:
        """The operation a request with this Idempotency-Key already began (its answer was lost), if any."""
        if not key:
            return None
        async with self.ctx.sessions() as s:
            found = (
                await s.execute(
                    sa.select(Operation).where(Operation.app_id == app_id, Operation.idempotency_key == key)
                )
            ).scalar_one_or_none()
        if found is not None and found.verb != verb:
            raise SpecError.one(
                "Idempotency-Key", f"this key was used for a {found.verb} (operation {found.id}); use a new key"
            )
        return found

    async def begin(
        self,
        app_id: int,
        verb: str,
        *,
        cause: Cause = Cause.USER,
        params: dict[str, Any] | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Take the app's operation slot and store the operation (pending); Conflict if one runs.

        The caller needs the operator role in the app's team (developer to attach a job); the
        operation is recorded in the audit log with who asked. When the database connection drops
        during the commit, the operation's key tells whether it was stored: found, it is this call's
        operation; not found, the slot is taken again once."""
        app = await self.apps.get(app_id, Role.DEVELOPER if verb == "attach" else Role.OPERATOR)
        who = access.current()
        actor = actor or (who.name if who is not SYSTEM else None)
        key = idempotency_key or secrets.token_hex(16)
        try:
            return await self._take_slot(app, verb, cause, params or {}, actor, key)
        except sa.exc.DBAPIError as exc:
            if not lost_connection(exc):
                raise
            log.warning("app %s: the database connection dropped while a %s began; checking whether it was stored",
                        app.name, verb)  # fmt: skip
        found = await self.replayed(app_id, verb, key)
        if found is not None:
            return found
        return await self._take_slot(app, verb, cause, params or {}, actor, key)

    async def _take_slot(
        self, app: App, verb: str, cause: Cause, params: dict[str, Any], actor: str | None, key: str
    ) -> Operation:
        app_id = app.id
        now = utcnow()
        async with self.ctx.sessions() as s, s.begin():
            if cause is not Cause.USER and self.ctx.leases is not None:
                # The platform's own actions (policies) only by the instance watching the cluster, and
                # only while it still does: a paused instance cannot restart a job another one watches.
                await self.ctx.leases.fence(s, app.cluster_id)
            result = await s.execute(
                sa.update(App)
                .where(App.id == app_id, sa.or_(App.operation.is_(None), App.operation_since < now - STALE_OPERATION))
                .values(operation=verb, operation_since=now, operation_id=None)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                held = await s.get(App, app_id)
                if held is None:
                    raise NotFound(f"no application with id {app_id}")
                running = await s.get(Operation, held.operation_id) if held.operation_id else None
                verb = running.verb if running is not None else (held.operation or "operation")
                raise Conflict(
                    f"a {verb} of application {held.name!r} is already in progress (operation "
                    f"{held.operation_id}); wait for it to finish"
                )
            op = Operation(
                app_id=app_id,
                verb=verb,
                state="pending",
                cause=cause.value,
                actor=actor,
                idempotency_key=key,
                params=params,
                steps=[{"at": now.isoformat(), "text": f"{verb} requested by {actor or cause.value}"}],
                result={},
                created_at=now,
                updated_at=now,
            )
            s.add(op)
            await s.flush()
            await s.execute(sa.update(App).where(App.id == app_id).values(operation_id=op.id))
            access.audit(
                s, verb, "app", app_id, name=app.name, team_id=app.team_id,
                diff={"operation_id": op.id, "cause": cause.value, "params": params},
            )  # fmt: skip
            return op

    @asynccontextmanager
    async def running(self, op: Operation) -> AsyncIterator[OpLog]:
        """Run ``op``'s work: mark it running; on exit record how it ended and free the slot."""
        oplog = OpLog(self.ctx, op.id, op.app_id, op.verb, dict(op.result or {}))
        await self._update(op.id, state="running")
        try:
            yield oplog
        except BaseException as exc:
            await self._finish(oplog, exc)
            raise
        else:
            await self._finish(oplog, None)

    @asynccontextmanager
    async def operation(
        self,
        app_id: int,
        verb: str,
        *,
        cause: Cause = Cause.USER,
        params: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> AsyncIterator[OpLog]:
        """An operation run inline by its caller (attach, a policy's restart)."""
        op = await self.begin(app_id, verb, cause=cause, params=params, actor=actor)
        async with self.running(op) as oplog:
            yield oplog

    def in_background(self, op: Operation, work: Work) -> None:
        """Run ``work`` for ``op`` after the request that began it has been answered."""

        async def run() -> None:
            try:
                async with self.running(op) as oplog:
                    await work(oplog)
            except (ServiceError, SpecError, TransitionRefused):
                pass  # recorded on the operation
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("operation %s (%s of app %s) failed", op.id, op.verb, op.app_id)

        task = asyncio.create_task(run(), name=f"operation:{op.id}")
        self.ctx.background.add(task)
        task.add_done_callback(self.ctx.background.discard)

    async def _update(self, op_id: int, **values: Any) -> None:
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.update(Operation).where(Operation.id == op_id).values(updated_at=utcnow(), **values))

    async def _finish(self, oplog: OpLog, exc: BaseException | None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"result": dict(oplog.result), "finished_at": now, "updated_at": now}
        if exc is None:
            values["state"], text = "succeeded", f"{oplog.verb} succeeded"
        elif isinstance(exc, asyncio.CancelledError):
            # The platform is shutting down: the next start resumes or fails it (services/recovery.py).
            await self._update(oplog.op_id, result=dict(oplog.result))
            return
        else:
            values["state"] = "failed"
            if isinstance(exc, SpecError):
                values["problems"] = [p.as_dict() for p in exc.problems]
                values["error"] = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
            elif isinstance(exc, (ServiceError, TransitionRefused)):
                values["error"] = str(exc)
            else:
                values["error"] = f"internal error: {type(exc).__name__}: {exc}"
            text = f"{oplog.verb} failed: {values['error']}"
        log.info("%s", text, extra={"app": oplog.app_id, "operation": oplog.op_id})
        self.ctx.metrics.operations.labels(oplog.verb, values["state"]).inc()
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(Operation, oplog.op_id)
            if row is not None:
                row.steps = [*row.steps, {"at": now.isoformat(), "text": text}]
                for k, v in values.items():
                    setattr(row, k, v)
            await s.execute(
                sa.update(App)
                .where(App.id == oplog.app_id, App.operation_id == oplog.op_id)
                .values(operation=None, operation_since=None, operation_id=None)
            )

    async def submitted(self, oplog: OpLog) -> None:
        """The operation's job is with the cluster: what Flink reports from now on is about this job."""
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(
                sa.update(App)
                .where(App.id == oplog.app_id, App.operation_id == oplog.op_id)
                .values(operation=FOLLOWING)
            )

    # ---- the footing of the verbs ---------------------------------------------------------------
    async def _cluster(self, app: App) -> Cluster:
        async with self.ctx.sessions() as s:
            cluster = await s.get(Cluster, app.cluster_id)
        if cluster is None:
            raise NotFound(f"the cluster of application {app.name!r} no longer exists")
        return cluster

    @property
    def variables(self) -> VariableService:
        return VariableService(self.ctx)

    async def target_of(self, app: App) -> Target:
        return target_for(self.ctx, await self._cluster(app))

    async def resolve_restore(self, app: App, restore: str) -> str | None:
        if restore in ("", "none"):
            return None
        if restore != "latest":
            problem = await asyncio.to_thread(snapshot_problem, restore)
            if problem is not None:
                raise SpecError.one("restore", f"cannot restore {restore}: {problem}")
            return restore
        newest = await newest_restorable(self.ctx, app)
        if newest is not None:
            return newest.path
        raise SpecError.one(
            "restore",
            f"application {app.name!r} has no savepoint or retained checkpoint to "
            "restore from; start with restore 'none' or give a path",
        )

    async def _require_active(self, app_id: int, need: Role = Role.VIEWER) -> App:
        app = await self.apps.get(app_id, need)
        if AppState(app.state) not in ACTIVE_STATES or not app.job_id:
            raise Conflict(f"application {app.name!r} is {app.state}, not running")
        return app

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

    async def _wait_until(self, app_id: int, done: Callable[[App], bool], timeout_s: float, every_s: float) -> App:
        """Observe the app directly (not only every tick) until ``done`` or time runs out.

        Each look asks the cluster for its whole job list: quick at first (a job usually runs within a
        second), then backing off to one look a second for a job that waits longer (e.g. for slots).
        """
        tracker = self.observe
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        look_every, slowest = every_s, max(every_s, 1.0)
        next_look = loop.time()
        while True:
            if tracker is not None and loop.time() >= next_look:
                await tracker.observe_app(app_id)
                next_look = loop.time() + look_every
                look_every = min(look_every * 1.5, slowest)
            # The stored state is checked often (cheap): the tracker's own tick may see the change first.
            app = await self.apps.get(app_id)
            if done(app) or loop.time() >= deadline:
                return app
            await asyncio.sleep(min(every_s, STATE_CHECK_S, max(0.0, deadline - loop.time())))

    async def _wait_terminal(self, app_id: int, timeout_s: float = 30) -> App:
        """Until Flink reports the app's job ended (or time runs out)."""
        return await self._wait_until(app_id, lambda a: AppState(a.state) not in ACTIVE_STATES, timeout_s, 0.2)
