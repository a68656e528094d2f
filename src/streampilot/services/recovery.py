"""After a platform restart: every operation left pending or running is resumed or ends failed with
its cause, never left running forever.

What can be resumed is resumed from what the operation recorded before the process died: a start
whose job id was stored is followed until the job runs; a stop or savepoint whose trigger was stored
asks the cluster for that savepoint's outcome; a cancel is asked again. Anything else (an upgrade or
restart cut in the middle, a savepoint never triggered) fails and says what is known; the app's state
itself is the observer's, which reconciles it from the cluster by the job id stored before submission.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from streampilot.domain.states import ACTIVE_STATES, AppState, Cause
from streampilot.services.errors import Conflict, ServiceError
from streampilot.services.lifecycle import Lifecycle
from streampilot.services.operations import OpLog
from streampilot.store.operations import OperationRepository
from streampilot.store.orm import App, Operation, utcnow

log = logging.getLogger("streampilot.recovery")
INTERRUPTED = "interrupted by a platform restart"


@dataclass
class Recovery:
    lifecycle: Lifecycle

    async def run_once(self) -> None:
        ops = await OperationRepository(self.lifecycle.ctx.sessions).unfinished()
        for op in ops:
            try:
                await self._recover(op)
            except ServiceError as exc:
                await self._fail(op, f"{INTERRUPTED}; could not resume: {exc}")

    async def _recover(self, op: Operation) -> None:
        lc = self.lifecycle
        app = await lc.apps.get(op.app_id)
        result = op.result or {}
        if op.verb == "start" and result.get("job_id") and app.job_id == result["job_id"]:
            self._resume(op, self._follow_start)
        elif op.verb in ("stop", "savepoint") and result.get("trigger") and app.job_id:
            self._resume(op, self._savepoint_outcome)
        elif op.verb == "cancel" and AppState(app.state) in ACTIVE_STATES and app.job_id:
            self._resume(op, self._cancel_again)
        elif op.verb == "cancel":
            await self._fail(op, f"{INTERRUPTED}; the job is {app.state}", succeeded=app.state == "CANCELED")
        else:
            known = f"the application is {app.state}" + (f" with job {app.job_id}" if app.job_id else "")
            nothing = " before anything was sent to the cluster" if op.verb == "start" else ""
            await self._fail(op, f"{INTERRUPTED}{nothing}; {known} (the tracker confirms it from the cluster)")

    def _resume(self, op: Operation, how: object) -> None:
        lc = self.lifecycle

        async def work(oplog: OpLog) -> None:
            await oplog.step("resumed after a platform restart")
            await how(oplog)  # type: ignore[operator]

        log.info("resuming operation %s (%s)", op.id, op.verb, extra={"app": op.app_id, "operation": op.id})
        lc.in_background(op, work)

    async def _follow_start(self, oplog: OpLog) -> None:
        await self.lifecycle.submitted(oplog)  # whether or not the submission finished, the job id is known
        await self.lifecycle._await_running(oplog)

    async def _savepoint_outcome(self, oplog: OpLog) -> None:
        lc = self.lifecycle
        app = await lc.apps.get(oplog.app_id)
        assert app.job_id is not None
        target = await lc.target_of(app)
        trigger = str(oplog.result["trigger"])
        timeout_s = lc.ctx.settings.flink.savepoint_timeout_s
        path = await target.savepoint_outcome(app.job_id, trigger, timeout_s)
        if path is None:
            raise Conflict(
                f"{INTERRUPTED}: the cluster no longer knows savepoint trigger {trigger}; "
                f"the application is {app.state} (the tracker confirms it from the cluster)"
            )
        if oplog.verb == "stop":
            await lc._stopped_with(oplog, app, path)
        else:
            await lc._snapshot(app, path, "user")
            await lc._note(app.id, f"savepoint {path} written (confirmed after a platform restart)")
            await oplog.step(f"savepoint {path} written", path=path)

    async def _cancel_again(self, oplog: OpLog) -> None:
        await self.lifecycle._cancel(oplog, Cause.USER, "cancel requested again after a platform restart")

    async def _fail(self, op: Operation, why: str, *, succeeded: bool = False) -> None:
        now = utcnow()
        async with self.lifecycle.ctx.sessions() as s, s.begin():
            row = await s.get(Operation, op.id)
            if row is None:
                return
            row.state = "succeeded" if succeeded else "failed"
            row.error = None if succeeded else why
            row.steps = [*row.steps, {"at": now.isoformat(), "text": why}]
            row.finished_at = row.updated_at = now
            await s.execute(
                sa.update(App)
                .where(App.id == op.app_id, App.operation_id == op.id)
                .values(operation=None, operation_since=None, operation_id=None)
            )
        log.info("operation %s (%s): %s", op.id, op.verb, why, extra={"app": op.app_id, "operation": op.id})
