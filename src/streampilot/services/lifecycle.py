"""Lifecycle operations: start, stop (with savepoint), cancel, savepoint, upgrade and a policy's
restart, one at a time per app.

Each verb holds the application's operation slot (services/operations.py); a second operation
meanwhile is a Conflict (HTTP 409). State changes go through ``set_app_state``; the observer
(tracker) confirms their outcome.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import resource_name
from streampilot.domain.states import ACTIVE_STATES, STARTABLE_STATES, AppState, Cause
from streampilot.flink.client import FlinkError, FlinkRejected, FlinkUnavailable
from streampilot.flink.launch import Submission
from streampilot.services.clusters import ClusterService
from streampilot.services.errors import Conflict, ServiceError, Unavailable
from streampilot.services.k8s_clusters import is_kubernetes
from streampilot.services.kubernetes import KubernetesTarget
from streampilot.services.operations import FRESH_JOB_FIELDS, Operations, flink_failure
from streampilot.services.statewriter import lock_app, record_event, set_app_state
from streampilot.services.submissions import SubmissionBuilder, explain_rejection, launch_config
from streampilot.store.orm import App, utcnow


@dataclass
class Lifecycle(Operations):
    async def start(
        self,
        app_id: int,
        *,
        restore: str = "none",
        allow_non_restored_state: bool = False,
        version: int | None = None,
    ) -> App:
        async with self.operation(app_id, "start"):
            await self._start(
                app_id,
                restore=restore,
                allow_non_restored_state=allow_non_restored_state,
                version=version,
                cause=Cause.USER,
                why="start",
            )
        return await self.apps.get(app_id)

    async def _start(
        self,
        app_id: int,
        *,
        restore: str,
        allow_non_restored_state: bool,
        version: int | None,
        cause: Cause,
        why: str,
    ) -> None:
        """Submit a new job; the caller holds the operation slot."""
        app = await self.apps.get(app_id)
        if AppState(app.state) not in STARTABLE_STATES:
            raise Conflict(f"application {app.name!r} is {app.state}; stop or cancel it before starting it again")
        chosen, spec = await self.apps.spec(app_id, version)
        cluster, client = await self._cluster(app)
        restore_path = await self.resolve_restore(app, restore)
        k8s = KubernetesTarget(self.ctx.k8s, cluster) if is_kubernetes(cluster) else None
        submission: Submission | None = None
        if k8s is not None:
            k8s.check(spec)
            job_id = resource_name(app.id)  # on Kubernetes the resource is the job's identity
            config = launch_config(spec, app.name)
        else:
            home = await ClusterService(self.ctx).home_info(cluster.flink_home_id)
            job_id = uuid.uuid4().hex
            submission = await SubmissionBuilder(self.ctx).build(
                app_id=app.id,
                app_name=app.name,
                version=chosen,
                spec=spec,
                home=home,
                job_id=job_id,
                restore_path=restore_path,
                allow_non_restored_state=allow_non_restored_state,
            )
            config = submission.run.configuration
        previous = AppState(app.state)
        previous_job = app.job_id
        how = f"from {restore_path}" if restore_path else "without restoring state"
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            assert row is not None
            # Recorded before submission: after a crash the tracker finds this job id.
            await set_app_state(
                s,
                row,
                AppState.STARTING,
                cause,
                f"{why} of version {chosen} on cluster {cluster.name!r} {how} (job {job_id})",
                job_id=job_id,
                submitted_at=utcnow(),
                launch_config=config,
                running_version=chosen,
                desired_state="RUNNING",
                **FRESH_JOB_FIELDS,
            )
        if k8s is not None:
            try:
                await k8s.start(app.id, spec, config, restore_path, allow_non_restored_state)
            except SpecError as refused:
                await self._roll_back_start(app_id, previous, previous_job, f"Kubernetes refused it: {refused}", cause)
                raise
            except Unavailable as exc:
                await self._note(
                    app_id, f"outcome unknown ({exc}); the tracker watches resource {job_id}", Cause.SYSTEM
                )
                raise
            self._follow(app_id)
            return
        assert submission is not None
        try:
            await self.ctx.uploads.submit(client, submission)
        except FlinkRejected as exc:
            error = explain_rejection(submission, exc, spec.kind)
            await self._roll_back_start(app_id, previous, previous_job, f"Flink rejected the job: {error}", cause)
            raise error from None
        except FlinkUnavailable as exc:
            await self._note(
                app_id, f"submission outcome unknown ({exc}); the tracker looks for job {job_id}", Cause.SYSTEM
            )
            raise Unavailable(
                f"cluster {cluster.name!r} did not answer the submission: {exc}; the job may "
                f"still start, the tracker watches for job {job_id}"
            ) from None
        self._follow(app_id)

    def _follow(self, app_id: int) -> None:
        """Observe a just-started app closely (not only every tick) until it leaves STARTING."""
        tracker = self.observe
        if tracker is None:
            return

        async def follow() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while loop.time() < deadline:
                await asyncio.sleep(0.02)
                await tracker.observe_app(app_id)
                if (await self.apps.get(app_id)).state != AppState.STARTING.value:
                    return

        task = asyncio.create_task(follow(), name=f"follow-start:{app_id}")
        self.ctx.background.add(task)
        task.add_done_callback(self.ctx.background.discard)

    async def attach(self, app_id: int, job_id: str) -> App:
        """Make ``app_id`` the owner of a job already running on its cluster (no submission)."""
        job_id = job_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            raise SpecError.one("job_id", f"{job_id!r} is not a Flink job id (32 hexadecimal characters)")
        async with self.operation(app_id, "attach"):
            app = await self.apps.get(app_id)
            if AppState(app.state) not in STARTABLE_STATES:
                raise Conflict(f"application {app.name!r} is {app.state}; stop it before attaching it to another job")
            async with self.ctx.sessions() as s:
                owner = (await s.execute(sa.select(App.name).where(App.job_id == job_id))).scalar_one_or_none()
            if owner is not None:
                raise Conflict(f"job {job_id} already belongs to application {owner!r}")
            cluster, client = await self._cluster(app)
            try:
                jobs = {j.job_id: j for j in await client.jobs_overview()}
            except FlinkError as exc:
                raise Unavailable(f"cluster {cluster.name!r} did not answer: {exc}") from None
            job = jobs.get(job_id)
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
            if self.observe is not None:
                await self.observe.observe_app(app_id)
        return await self.apps.get(app_id)

    async def _roll_back_start(
        self, app_id: int, previous: AppState, previous_job: str | None, why: str, cause: Cause = Cause.USER
    ) -> None:
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            assert row is not None
            await set_app_state(
                s, row, previous, cause, why, job_id=previous_job, desired_state="STOPPED", submitted_at=None
            )

    async def stop(self, app_id: int, *, savepoint: bool = True, drain: bool = False) -> App:
        if not savepoint:
            return await self.cancel(app_id)
        async with self.operation(app_id, "stop"):
            await self._stop_with_savepoint(app_id, drain, desired_state="STOPPED")
        return await self.apps.get(app_id)

    async def _stop_with_savepoint(self, app_id: int, drain: bool, **fields: Any) -> str | None:
        """Stop the job with a savepoint and wait until it ended; the caller holds the slot."""
        app, client = await self._require_active(app_id)
        job_id = app.job_id
        assert job_id is not None
        previous = AppState(app.state)
        target = await self._kubernetes(app)
        if target is not None:
            await self._set(
                app_id,
                AppState.STOPPING,
                "stop with savepoint requested (the operator suspends the job with upgrade mode savepoint)",
                **fields,
            )
            path = await target.stop(job_id, True, self.ctx.settings.flink.savepoint_timeout_s)
            if path:
                await self._snapshot(app, path, "stop")
                await self._note(app_id, f"savepoint {path} written; job stopping")
            await self._wait_terminal(app_id)
            return path
        try:
            trigger = await client.stop_with_savepoint(job_id, None, drain)
        except FlinkError as exc:
            raise flink_failure("stop", app, exc) from None
        await self._set(app_id, AppState.STOPPING, f"stop with savepoint requested (drain={drain})", **fields)
        result = await self._await_savepoint(client, job_id, trigger)
        if result.path is None:
            await self._set(app_id, previous, f"stop with savepoint failed: {result.failure}")
            raise Conflict(f"Flink could not stop {app.name!r} with a savepoint: {result.failure}")
        await self._snapshot(app, result.path, "stop")
        await self._note(app_id, f"savepoint {result.path} written; job stopping")
        await self._wait_terminal(app_id)
        return result.path

    async def upgrade(self, app_id: int, *, version: int | None = None, drain: bool = False) -> App:
        """Run another version of a running app and keep its state, as one operation.

        Session clusters: stop with a savepoint, then start the new version from it. Kubernetes: the new
        spec goes into the resource and the operator upgrades the job with the cluster's upgrade mode.
        """
        async with self.operation(app_id, "upgrade"):
            app, _ = await self._require_active(app_id)
            chosen, spec = await self.apps.spec(app_id, version)
            if chosen == app.running_version:
                raise Conflict(f"application {app.name!r} already runs version {chosen}; edit it to make a new version")
            old = app.running_version
            target = await self._kubernetes(app)
            if target is None:
                path = await self._stop_with_savepoint(app_id, drain)
                try:
                    await self._start(
                        app_id,
                        restore=path or "none",
                        allow_non_restored_state=False,
                        version=chosen,
                        cause=Cause.USER,
                        why=f"upgrade from version {old}:",
                    )
                except (SpecError, ServiceError) as exc:
                    await self._note(app_id, f"upgrade to version {chosen} failed after the stop: {exc}")
                    raise Conflict(
                        f"{app.name!r} stopped with savepoint {path}, but version {chosen} did not start: {exc}; "
                        f"start it from that savepoint once fixed"
                    ) from None
                return await self.apps.get(app_id)
            target.check(spec)
            mode = target.options.upgrade_mode
            config = launch_config(spec, app.name)
            async with self.ctx.sessions() as s, s.begin():
                row = await lock_app(s, app_id)
                assert row is not None
                row.running_version, row.launch_config = chosen, config
                row.config_verified = row.config_mismatches = row.config_readback = None  # verify the new job
                await record_event(
                    s,
                    row,
                    row.state,
                    Cause.USER,
                    f"upgrade from version {old} to {chosen} requested "
                    f"(the operator applies it with upgrade mode {mode})",
                )
            path = await target.upgrade(app.id, spec, config, self._upgrade_timeout_s)
            if path:
                await self._snapshot(app, path, "upgrade")
                await self._note(app_id, f"the operator took savepoint {path} for the upgrade")
            await self._note(app_id, f"version {chosen} runs: the operator finished the upgrade")
        return await self.apps.get(app_id)

    @property
    def _upgrade_timeout_s(self) -> float:
        # A savepoint, a new JobManager and a resubmission: give it the savepoint timeout twice.
        return 2 * self.ctx.settings.flink.savepoint_timeout_s

    async def cancel(self, app_id: int) -> App:
        async with self.operation(app_id, "cancel"):
            await self._cancel(app_id, Cause.USER, "cancel requested", desired_state="STOPPED")
        return await self.apps.get(app_id)

    async def _cancel(self, app_id: int, cause: Cause, why: str, **fields: Any) -> None:
        """Cancel the app's job and wait until Flink reports it ended; the caller holds the slot."""
        app, client = await self._require_active(app_id)
        assert app.job_id is not None
        target = await self._kubernetes(app)
        previous = AppState(app.state)
        # The intent first: once Flink cancels, the observer may write the job's end at any moment.
        await self._set(app_id, AppState.STOPPING, why, cause=cause, **fields)
        try:
            if target is not None:
                await target.stop(app.job_id, False, self.ctx.settings.flink.savepoint_timeout_s)
            else:
                await client.cancel(app.job_id)
        except (FlinkError, ServiceError) as exc:
            await self._set(app_id, previous, f"cancel failed: {exc}", cause=cause)
            if isinstance(exc, FlinkError):
                raise flink_failure("cancel", app, exc) from None
            raise
        await self._wait_terminal(app_id)

    async def restart(self, app_id: int, *, restore: str, why: str, cause: Cause = Cause.POLICY) -> App | None:
        """Cancel (if running) and start again from ``restore``, as one operation.

        Used by policies: it never races a user's operation (the slot is taken, or this is a Conflict)
        and does nothing when the user wants the app stopped. Returns None if it did not act.
        """
        async with self.operation(app_id, "restart"):
            app = await self.apps.get(app_id)
            if app.desired_state != "RUNNING":
                return None
            if AppState(app.state) in ACTIVE_STATES:
                await self._cancel(app_id, cause, f"{why}: canceling job {app.job_id}")
            if AppState((await self.apps.get(app_id)).state) not in STARTABLE_STATES:
                raise Conflict(f"job of application {app.name!r} did not end after cancel; restart abandoned")
            await self._start(
                app_id,
                restore=restore,
                allow_non_restored_state=False,
                version=app.running_version,
                cause=cause,
                why=why,
            )
        return await self.apps.get(app_id)

    async def savepoint(self, app_id: int) -> str:
        async with self.operation(app_id, "savepoint"):
            app, client = await self._require_active(app_id)
            assert app.job_id is not None
            target = await self._kubernetes(app)
            if target is not None:
                path = await target.savepoint(app.job_id, self.ctx.settings.flink.savepoint_timeout_s)
                await self._snapshot(app, path, "user")
                await self._note(app_id, f"savepoint {path} written (through the operator's savepoint nonce)")
                return path
            try:
                trigger = await client.trigger_savepoint(app.job_id, None)
            except FlinkError as exc:
                raise flink_failure("savepoint", app, exc) from None
            result = await self._await_savepoint(client, app.job_id, trigger)
            if result.path is None:
                await self._note(app_id, f"savepoint failed: {result.failure}")
                raise Conflict(f"Flink could not take a savepoint of {app.name!r}: {result.failure}")
            await self._snapshot(app, result.path, "user")
            await self._note(app_id, f"savepoint {result.path} written")
            return result.path
