"""Lifecycle verbs: start, stop (with savepoint), cancel, savepoint, upgrade, attach and a policy's
restart, one at a time per app, each an operation (services/operations.py).

A verb first checks what can be checked at once (field errors, 422; conflicts, 409), then takes the
app's slot and stores the operation; ``start``/``stop``/... return it at once and its work goes on in
the background, talking to the app's cluster through the Target port only. State changes go through
``set_app_state``; the observer (tracker) confirms their outcome.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from streampilot.domain.access import Role
from streampilot.domain.errors import SpecError
from streampilot.domain.states import ACTIVE_STATES, STARTABLE_STATES, AppState, Cause
from streampilot.services.errors import Conflict, NotFound, ServiceError, Unavailable
from streampilot.services.operations import FRESH_JOB_FIELDS, Operations, OpLog
from streampilot.services.statewriter import lock_app, record_event, set_app_state
from streampilot.services.submissions import launch_config
from streampilot.store.operations import OperationRepository
from streampilot.store.orm import App, Operation, utcnow
from streampilot.targets.port import LaunchRequest, Target

ENDED = {AppState.FAILED, AppState.CANCELED, AppState.FINISHED, AppState.LOST}


@dataclass(frozen=True)
class StartPlan:
    """A start checked up front: what runs, from where."""

    version: int
    restore_path: str | None
    allow_non_restored_state: bool


@dataclass
class Lifecycle(Operations):
    # ---- start ---------------------------------------------------------------------------------
    async def _plan_start(
        self, app: App, restore: str, allow_non_restored_state: bool, version: int | None
    ) -> StartPlan:
        if AppState(app.state) not in STARTABLE_STATES:
            raise Conflict(f"application {app.name!r} is {app.state}; stop or cancel it before starting it again")
        chosen, stored = await self.apps.spec(app.id, version)
        spec = (await self.variables.resolve(stored, app.team_id)).spec
        (await self.target_of(app)).check(spec)
        launch_config(spec, app.name)
        return StartPlan(chosen, await self.resolve_restore(app, restore), allow_non_restored_state)

    async def start(
        self,
        app_id: int,
        *,
        restore: str = "none",
        allow_non_restored_state: bool = False,
        version: int | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Start the app's job. A retry with the same ``idempotency_key`` answers with the operation the
        first request began, whatever happened to that request's answer."""
        app = await self.apps.get(app_id, Role.OPERATOR)
        if done := await self.replayed(app_id, "start", idempotency_key):
            return done
        plan = await self._plan_start(app, restore, allow_non_restored_state, version)
        params = {"restore": restore, "allow_non_restored_state": allow_non_restored_state, "version": plan.version}
        op = await self.begin(app_id, "start", params=params, actor=actor, idempotency_key=idempotency_key)

        async def work(oplog: OpLog) -> None:
            await self._start(oplog, plan, cause=Cause.USER, why="start")
            await self._await_running(oplog)

        self.in_background(op, work)
        return op

    async def _start(self, oplog: OpLog, plan: StartPlan, *, cause: Cause, why: str) -> None:
        """Submit a new job; the caller holds the operation slot."""
        app_id = oplog.app_id
        app = await self.apps.get(app_id)
        if AppState(app.state) not in STARTABLE_STATES:
            raise Conflict(f"application {app.name!r} is {app.state}; stop or cancel it before starting it again")
        _, stored = await self.apps.spec(app_id, plan.version)
        resolved = await self.variables.resolve(stored, app.team_id)  # ${name} in SQL, properties and args
        cluster = await self._cluster(app)
        target = await self.target_of(app)
        request = LaunchRequest(
            app.id, app.name, plan.version, resolved.spec, plan.restore_path, plan.allow_non_restored_state
        )
        launch = await target.prepare(request)
        job_id = launch.job_id
        previous, previous_job = AppState(app.state), app.job_id
        how = f"from {plan.restore_path}" if plan.restore_path else "without restoring state"
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            assert row is not None
            # Recorded before submission: after a crash the tracker finds this job id.
            await set_app_state(
                s,
                row,
                AppState.STARTING,
                cause,
                f"{why} of version {plan.version} on cluster {cluster.name!r} {how} (job {job_id})",
                job_id=job_id,
                submitted_at=utcnow(),
                launch_config=resolved.masked(launch.config),
                runtime_mode=launch.config.get("execution.runtime-mode", "STREAMING").upper(),
                running_version=plan.version,
                desired_state="RUNNING",
                **FRESH_JOB_FIELDS,
            )
        await oplog.step(f"submitting job {job_id} to cluster {cluster.name!r} {how}", job_id=job_id)
        try:
            await target.submit(launch)
        except SpecError as refused:
            why_not = resolved.hide("; ".join(p.message for p in refused.problems))
            if await self._runs_anyway(target, job_id):
                # E.g. a PyFlink Table API script that waits for its result: Flink started the job, then the
                # wait failed in the submission. The job is this app's, never an orphan.
                await self._note(
                    app_id,
                    f"the cluster answered the submission with an error ({why_not}) but runs job {job_id}: "
                    "it is this application's job and is tracked",
                    Cause.SYSTEM,
                )
                await oplog.step(f"Flink answered with an error ({why_not}) but runs job {job_id}; tracking it")
                await self.submitted(oplog)
                return
            await self._roll_back_start(
                app_id, previous, previous_job, f"the cluster refused the job: {why_not}", cause
            )
            raise
        except Unavailable as exc:
            await self._note(
                app_id, f"submission outcome unknown ({exc}); the tracker watches for job {job_id}", Cause.SYSTEM
            )
            raise
        await self.submitted(oplog)
        await oplog.step(f"job {job_id} submitted")

    @staticmethod
    async def _runs_anyway(target: Target, job_id: str) -> bool:
        """Whether a job the cluster refused is listed all the same (asked twice: it may just be starting)."""
        for attempt in range(2):
            listing = await target.observe_all()
            if listing.get(job_id) is not None:
                return True
            if attempt == 0:
                await asyncio.sleep(0.5)
        return False

    async def _await_running(self, oplog: OpLog) -> None:
        """Follow a just-started job until it runs (all tasks) or ends; a job still waiting for slots
        after the start wait is left to the tracker, and the operation says so."""
        wait_s = self.ctx.settings.flink.start_wait_s
        app = await self._wait_until(oplog.app_id, lambda a: a.state != AppState.STARTING.value, wait_s, 0.02)
        state = AppState(app.state)
        oplog.result["state"] = state.value
        if state == AppState.RUNNING:
            await oplog.step(f"job {app.job_id} is RUNNING ({app.tasks_running}/{app.tasks_total} tasks)")
            return
        if state == AppState.FINISHED:
            await oplog.step(f"job {app.job_id} ran and FINISHED (its input is bounded)")
            return
        if state in ENDED:
            raise Conflict(f"job {app.job_id} ended {state.value} while starting; see the app's events and exceptions")
        await oplog.step(
            f"job {app.job_id} is {state.value} after {wait_s:.0f} s (Flink: {app.job_state or 'not listed yet'}); "
            "the tracker keeps watching it"
        )

    async def _roll_back_start(
        self, app_id: int, previous: AppState, previous_job: str | None, why: str, cause: Cause = Cause.USER
    ) -> None:
        """Undo the STARTING written before a refused submission; if the observer has moved the app on
        meanwhile (a slow refusal: LOST after the submit grace), its state stands and the refusal is told."""
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            assert row is not None
            if AppState(row.state) != AppState.STARTING:
                row.desired_state = "STOPPED"
                await record_event(s, row, row.state, cause, why)
                return
            await set_app_state(
                s, row, previous, cause, why, job_id=previous_job, desired_state="STOPPED", submitted_at=None
            )

    # ---- attach --------------------------------------------------------------------------------
    async def attach(self, app_id: int, job_id: str, *, actor: str | None = None) -> App:
        """Make ``app_id`` the owner of a job already running on its cluster (no submission)."""
        job_id = job_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            raise SpecError.one("job_id", f"{job_id!r} is not a Flink job id (32 hexadecimal characters)")
        async with self.operation(app_id, "attach", params={"job_id": job_id}, actor=actor) as oplog:
            app = await self.apps.get(app_id)
            if AppState(app.state) not in STARTABLE_STATES:
                raise Conflict(f"application {app.name!r} is {app.state}; stop it before attaching it to another job")
            async with self.ctx.sessions() as s:
                owner = (await s.execute(sa.select(App.name).where(App.job_id == job_id))).scalar_one_or_none()
            if owner is not None:
                raise Conflict(f"job {job_id} already belongs to application {owner!r}")
            cluster = await self._cluster(app)
            listing = await (await self.target_of(app)).observe_all()
            if not listing.answered:
                raise Unavailable(f"cluster {cluster.name!r} did not answer: {listing.error}")
            job = listing.get(job_id)
            if job is None:
                raise SpecError.one("job_id", f"cluster {cluster.name!r} has no job {job_id}")
            if job.state in ("FAILED", "CANCELED", "FINISHED"):
                raise SpecError.one("job_id", f"job {job_id} has already ended ({job.state}); attach a running job")
            await self._set(
                app_id,
                AppState.STARTING,
                f"attached to job {job_id} ({job.name!r}) already on cluster {cluster.name!r}",
                job_id=job_id,
                running_version=app.current_version,
                desired_state="RUNNING",
                submitted_at=None,
                launch_config=None,
                **FRESH_JOB_FIELDS,
            )
            await oplog.step(f"attached to job {job_id}", job_id=job_id)
            if self.observe is not None:
                await self.observe.observe_app(app_id)
        return await self.apps.get(app_id)

    # ---- stop, cancel, savepoint -----------------------------------------------------------------
    async def stop(
        self,
        app_id: int,
        *,
        savepoint: bool = True,
        drain: bool = False,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        if not savepoint:
            return await self.cancel(app_id, actor=actor, idempotency_key=idempotency_key)
        await self.apps.get(app_id, Role.OPERATOR)
        if done := await self.replayed(app_id, "stop", idempotency_key):
            return done
        await self._require_active(app_id, Role.OPERATOR)
        params = {"savepoint": True, "drain": drain}
        op = await self.begin(app_id, "stop", params=params, actor=actor, idempotency_key=idempotency_key)

        async def work(oplog: OpLog) -> None:
            await self._stop_with_savepoint(oplog, drain, desired_state="STOPPED")

        self.in_background(op, work)
        return op

    async def _stop_with_savepoint(self, oplog: OpLog, drain: bool, **fields: Any) -> str:
        """Stop the job with a savepoint and wait until it ended; the caller holds the slot."""
        app = await self._require_active(oplog.app_id)
        job_id = app.job_id
        assert job_id is not None
        previous = AppState(app.state)
        target = await self.target_of(app)
        # The intent first: once Flink stops the job, the observer may write its end at any moment.
        await self._set(app.id, AppState.STOPPING, f"stop with savepoint requested (drain={drain})", **fields)

        async def triggered(trigger: str) -> None:
            await oplog.step(f"savepoint triggered ({trigger}); the job stops once it is written", trigger=trigger)

        try:
            path = await target.stop_with_savepoint(
                job_id, drain=drain, timeout_s=self.ctx.settings.flink.savepoint_timeout_s, triggered=triggered
            )
        except Conflict as exc:
            await self._set(app.id, previous, f"stop with savepoint failed: {exc}")
            raise
        await self._stopped_with(oplog, app, path)
        return path

    async def _stopped_with(self, oplog: OpLog, app: App, path: str) -> None:
        await self._snapshot(app, path, "stop")
        await self._note(app.id, f"savepoint {path} written; job stopping")
        await oplog.step(f"savepoint {path} written", savepoint=path)
        ended = await self._wait_terminal(app.id)
        oplog.result["state"] = ended.state
        await oplog.step(f"job {app.job_id} is {ended.state}")

    async def cancel(self, app_id: int, *, actor: str | None = None, idempotency_key: str | None = None) -> Operation:
        await self.apps.get(app_id, Role.OPERATOR)
        if done := await self.replayed(app_id, "cancel", idempotency_key):
            return done
        await self._require_active(app_id, Role.OPERATOR)
        op = await self.begin(app_id, "cancel", actor=actor, idempotency_key=idempotency_key)

        async def work(oplog: OpLog) -> None:
            await self._cancel(oplog, Cause.USER, "cancel requested", desired_state="STOPPED")

        self.in_background(op, work)
        return op

    async def _cancel(self, oplog: OpLog, cause: Cause, why: str, **fields: Any) -> None:
        """Cancel the app's job and wait until Flink reports it ended; the caller holds the slot."""
        app = await self._require_active(oplog.app_id)
        assert app.job_id is not None
        target = await self.target_of(app)
        previous = AppState(app.state)
        # The intent first: once Flink cancels, the observer may write the job's end at any moment.
        await self._set(app.id, AppState.STOPPING, why, cause=cause, **fields)
        try:
            await target.cancel(app.job_id)
        except ServiceError as exc:
            await self._set(app.id, previous, f"cancel failed: {exc}", cause=cause)
            raise
        await oplog.step(f"cancel of job {app.job_id} requested")
        ended = await self._wait_terminal(app.id)
        oplog.result["state"] = ended.state
        if AppState(ended.state) in ACTIVE_STATES:
            raise Conflict(f"job {app.job_id} is still {ended.state} 30 s after the cancel; the tracker keeps watching")
        await oplog.step(f"job {app.job_id} is {ended.state}")

    async def savepoint(
        self, app_id: int, *, actor: str | None = None, idempotency_key: str | None = None
    ) -> Operation:
        await self.apps.get(app_id, Role.OPERATOR)
        if done := await self.replayed(app_id, "savepoint", idempotency_key):
            return done
        await self._require_active(app_id, Role.OPERATOR)
        op = await self.begin(app_id, "savepoint", actor=actor, idempotency_key=idempotency_key)

        async def work(oplog: OpLog) -> None:
            app = await self._require_active(app_id)
            assert app.job_id is not None
            target = await self.target_of(app)

            async def triggered(trigger: str) -> None:
                await oplog.step(f"savepoint triggered ({trigger})", trigger=trigger)

            try:
                path = await target.savepoint(
                    app.job_id, timeout_s=self.ctx.settings.flink.savepoint_timeout_s, triggered=triggered
                )
            except Conflict as exc:
                await self._note(app_id, f"savepoint failed: {exc}")
                raise
            await self._snapshot(app, path, "user")
            await self._note(app_id, f"savepoint {path} written")
            await oplog.step(f"savepoint {path} written", path=path)

        self.in_background(op, work)
        return op

    # ---- upgrade -------------------------------------------------------------------------------
    async def upgrade(
        self,
        app_id: int,
        *,
        version: int | None = None,
        drain: bool = False,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Run another version of a running app and keep its state, as one operation.

        Where the target upgrades in place (the Kubernetes operator), the new spec goes to it with the
        cluster's upgrade mode; elsewhere: stop with a savepoint, then start the new version from it.
        """
        await self.apps.get(app_id, Role.OPERATOR)
        if done := await self.replayed(app_id, "upgrade", idempotency_key):
            return done
        app = await self._require_active(app_id, Role.OPERATOR)
        chosen, stored = await self.apps.spec(app_id, version)
        if chosen == app.running_version:
            raise Conflict(f"application {app.name!r} already runs version {chosen}; edit it to make a new version")
        spec = (await self.variables.resolve(stored, app.team_id)).spec
        target = await self.target_of(app)
        target.check(spec)
        launch_config(spec, app.name)
        params = {"version": chosen, "drain": drain}
        op = await self.begin(app_id, "upgrade", params=params, actor=actor, idempotency_key=idempotency_key)

        async def work(oplog: OpLog) -> None:
            if target.upgrades_in_place:
                await self._upgrade_in_place(oplog, target, chosen)
            else:
                await self._upgrade_by_restart(oplog, chosen, drain)

        self.in_background(op, work)
        return op

    async def _upgrade_by_restart(self, oplog: OpLog, chosen: int, drain: bool) -> None:
        app = await self.apps.get(oplog.app_id)
        old = app.running_version
        path = await self._stop_with_savepoint(oplog, drain)
        try:
            await self._start(
                oplog, StartPlan(chosen, path, False), cause=Cause.USER, why=f"upgrade from version {old}:"
            )
            await self._await_running(oplog)
        except (SpecError, ServiceError) as exc:
            await self._note(app.id, f"upgrade to version {chosen} failed after the stop: {exc}")
            raise Conflict(
                f"{app.name!r} stopped with savepoint {path}, but version {chosen} did not start: {exc}; "
                f"start it from that savepoint once fixed"
            ) from None
        oplog.result["version"] = chosen

    async def _upgrade_in_place(self, oplog: OpLog, target: Target, chosen: int) -> None:
        app = await self.apps.get(oplog.app_id)
        _, stored = await self.apps.spec(app.id, chosen)
        resolved = await self.variables.resolve(stored, app.team_id)
        spec = resolved.spec
        old = app.running_version
        config = launch_config(spec, app.name)
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app.id)
            assert row is not None
            row.running_version, row.launch_config = chosen, resolved.masked(config)
            row.config_verified = row.config_mismatches = row.config_readback = None  # verify the new job
            await record_event(
                s, row, row.state, Cause.USER, f"upgrade from version {old} to {chosen} requested (in place)"
            )
        await oplog.step(f"version {chosen} handed to the cluster; waiting for it to run")
        path = await target.upgrade(app.id, spec, config, 2 * self.ctx.settings.flink.savepoint_timeout_s)
        if path:
            await self._snapshot(app, path, "upgrade")
            await self._note(app.id, f"savepoint {path} taken for the upgrade")
            await oplog.step(f"savepoint {path} taken for the upgrade", savepoint=path)
        await self._note(app.id, f"version {chosen} runs: the upgrade finished")
        await oplog.step(f"version {chosen} runs", version=chosen)

    # ---- a policy's restart ----------------------------------------------------------------------
    async def restart(self, app_id: int, *, restore: str, why: str, cause: Cause = Cause.POLICY) -> App | None:
        """Cancel (if running) and start again from ``restore``, as one operation run inline.

        Used by policies: it never races a user's operation (the slot is taken, or this is a Conflict)
        and does nothing when the user wants the app stopped. Returns None if it did not act.
        """
        async with self.operation(
            app_id, "restart", cause=cause, params={"restore": restore}, actor=cause.value
        ) as oplog:
            app = await self.apps.get(app_id)
            if app.desired_state != "RUNNING":
                await oplog.step("not restarted: the application is meant to be stopped")
                return None
            if AppState(app.state) in ACTIVE_STATES:
                await self._cancel(oplog, cause, f"{why}: canceling job {app.job_id}")
            app = await self.apps.get(app_id)
            if AppState(app.state) not in STARTABLE_STATES:
                raise Conflict(f"job of application {app.name!r} did not end after cancel; restart abandoned")
            restore_path = await self.resolve_restore(app, restore)
            plan = StartPlan(app.running_version or app.current_version, restore_path, False)
            await self._start(oplog, plan, cause=cause, why=why)
            # Watched closely until it leaves STARTING; the policy confirms the restore afterwards.
            wait_s = self.ctx.settings.flink.start_wait_s
            await self._wait_until(app_id, lambda a: a.state != AppState.STARTING.value, wait_s, 0.05)
        return await self.apps.get(app_id)

    # ---- reading operations ----------------------------------------------------------------------
    async def get_operation(self, op_id: int) -> Operation:
        op = await OperationRepository(self.ctx.sessions).get(op_id)
        if op is None:
            raise NotFound(f"no operation with id {op_id}")
        try:
            await self.apps.get(op.app_id)  # another team's operation does not exist for the caller
        except NotFound:
            raise NotFound(f"no operation with id {op_id}") from None
        return op

    async def operations_of(self, app_id: int, limit: int = 50) -> list[Operation]:
        await self.apps.get(app_id)
        return await OperationRepository(self.ctx.sessions).of_app(app_id, limit)
