"""Standalone session clusters (local ones the platform starts, or remote ones it is given): jobs go
through the JobManager's REST API (jar upload + run with the job id we chose), and one
``/jobs/overview`` per tick observes all of them.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.errors import SpecError
from streampilot.flink.client import FlinkClient, FlinkError, FlinkRejected, FlinkUnavailable
from streampilot.flink.launch import Submission, has_flink_python
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, Unavailable
from streampilot.services.homes import home_info
from streampilot.services.submissions import SubmissionBuilder, explain_rejection, validate_on_cluster
from streampilot.store.orm import Cluster
from streampilot.targets.port import Launch, LaunchRequest, Listing, Triggered


def _unavailable(what: str, cluster: Cluster, exc: FlinkError) -> Exception:
    if isinstance(exc, FlinkUnavailable):
        return Unavailable(f"cluster {cluster.name!r} did not answer the {what} request: {exc}")
    return Conflict(f"Flink refused to {what}: {exc}")


@dataclass
class StandaloneTarget:
    ctx: Context
    cluster: Cluster

    @property
    def upgrades_in_place(self) -> bool:
        return False

    @property
    def client(self) -> FlinkClient:
        return self.ctx.client(self.cluster)

    def check(self, spec: AppSpec) -> None:
        if spec.kind == AppKind.JAR and spec.jar_id is None:
            raise SpecError.one(
                "jar_id", f"a {self.cluster.kind} cluster runs an uploaded jar: upload it and give jar_id"
            )

    async def _python_in_lib(self) -> bool:
        """Whether the cluster's own class path has flink-python (asked once; unknown means no)."""
        known = self.ctx.python_in_lib.get(self.client.base_url)
        if known is None:
            try:
                known = has_flink_python(await self.client.classpath())
            except FlinkError:
                return False
            self.ctx.python_in_lib[self.client.base_url] = known
        return known

    async def _build(self, request: LaunchRequest, job_id: str | None) -> Submission:
        python_in_lib = request.spec.kind == AppKind.PYTHON and await self._python_in_lib()
        return await SubmissionBuilder(self.ctx).build(
            app_id=request.app_id,
            app_name=request.app_name,
            version=request.version,
            spec=request.spec,
            home=await home_info(self.ctx, self.cluster.flink_home_id),
            job_id=job_id,
            restore_path=request.restore_path,
            allow_non_restored_state=request.allow_non_restored_state,
            python_in_lib=python_in_lib,
        )

    async def validate(self, app_name: str, spec: AppSpec) -> None:
        """SQL: Flink's planner checks the script when the cluster answers; otherwise start will."""
        if spec.kind != AppKind.SQL:
            return
        submission = await self._build(LaunchRequest(0, app_name, 0, spec), None)
        try:
            await validate_on_cluster(self.ctx, self.client, submission, spec.kind)
        except FlinkUnavailable:
            pass

    async def prepare(self, request: LaunchRequest) -> Launch:
        # The job id is ours and stored before submission: after a crash the tracker finds this job.
        job_id = uuid.uuid4().hex
        submission = await self._build(request, job_id)
        return Launch(request, job_id, submission.run.configuration, submission)

    async def submit(self, launch: Launch) -> None:
        submission: Submission = launch.payload
        try:
            if launch.request.spec.kind == AppKind.PYTHON:
                # PyFlink scripts run in the JobManager and reach Java through Py4J threads, which see
                # StreamExecutionEnvironment's static context factory, not the submitting thread's own
                # (Flink: StreamExecutionEnvironment.getExecutionEnvironment, resolveFactory): two
                # scripts at once get each other's environment ("Application has already been
                # submitted", "Cannot have more than 1 streaming jobs in a single environment").
                lock = self.ctx.python_submits.setdefault(self.client.base_url, asyncio.Lock())
                async with lock:
                    await self.ctx.uploads.submit(self.client, submission)
            else:
                await self.ctx.uploads.submit(self.client, submission)
        except FlinkRejected as exc:
            raise await explain_rejection(submission, exc, launch.request.spec.kind) from None
        except FlinkUnavailable as exc:
            raise Unavailable(
                f"cluster {self.cluster.name!r} did not answer the submission: {exc}; the job may "
                f"still start, the tracker watches for job {launch.job_id}"
            ) from None

    async def cancel(self, job_id: str) -> None:
        try:
            await self.client.cancel(job_id)
        except FlinkError as exc:
            raise _unavailable("cancel the job", self.cluster, exc) from None

    async def stop_with_savepoint(self, job_id: str, *, drain: bool, timeout_s: float, triggered: Triggered) -> str:
        try:
            trigger = await self.client.stop_with_savepoint(job_id, None, drain)
        except FlinkError as exc:
            raise _unavailable("stop the job with a savepoint", self.cluster, exc) from None
        await triggered(trigger)
        return await self._await_savepoint(job_id, trigger, timeout_s, "stop the job with a savepoint")

    async def savepoint(self, job_id: str, *, timeout_s: float, triggered: Triggered) -> str:
        try:
            trigger = await self.client.trigger_savepoint(job_id, None)
        except FlinkError as exc:
            raise _unavailable("take a savepoint", self.cluster, exc) from None
        await triggered(trigger)
        return await self._await_savepoint(job_id, trigger, timeout_s, "take a savepoint")

    async def savepoint_outcome(self, job_id: str, trigger: str, timeout_s: float) -> str | None:
        try:
            return await self._await_savepoint(job_id, trigger, timeout_s, "take the savepoint")
        except Unavailable:
            return None

    async def _await_savepoint(self, job_id: str, trigger: str, timeout_s: float, what: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                result = await self.client.savepoint_status(job_id, trigger)
            except FlinkRejected:
                # Flink forgot the trigger (its operation cache expired, or the JobManager restarted).
                raise Unavailable(f"Flink no longer knows savepoint trigger {trigger} of job {job_id}") from None
            except FlinkUnavailable:
                result = None
            if result is not None and result.done:
                if result.path is None:
                    raise Conflict(f"Flink could not {what}: {result.failure}")
                return result.path
            await asyncio.sleep(0.3)
        raise Unavailable(f"Flink did not {what} within {timeout_s:.0f} s (trigger {trigger})")

    async def upgrade(self, app_id: int, spec: AppSpec, config: dict[str, str], timeout_s: float) -> str | None:
        raise Conflict("a standalone cluster does not upgrade jobs in place; stop with a savepoint and start")

    async def observe_all(self) -> Listing:
        try:
            return Listing({j.job_id: j for j in await self.client.jobs_overview()})
        except FlinkError as exc:
            return Listing.failed(str(exc))

    async def kept_savepoints(self, job_id: str) -> list[tuple[str, float]]:
        return []  # Flink keeps no list of savepoints; ours are recorded when taken

    def flink_api(self, job_id: str) -> tuple[FlinkClient, str] | None:
        return self.client, job_id

    async def describe(self) -> dict[str, Any]:
        try:
            ov = await self.client.overview()
        except FlinkError as exc:
            return {"reachable": False, "error": str(exc)}
        return {
            "reachable": True,
            "flink_version": ov.flink_version,
            "taskmanagers": ov.taskmanagers,
            "slots_total": ov.slots_total,
            "slots_available": ov.slots_available,
        }

    async def start_cluster(self, timeout_s: float) -> str:
        raise Conflict(
            f"cluster {self.cluster.name!r} is {self.cluster.kind}; only local and kubernetes-session clusters "
            "are started and stopped by the platform"
        )

    async def stop_cluster(self) -> None:
        await self.start_cluster(0)
