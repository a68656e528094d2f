"""A fake Target for fast service tests: jobs live in memory, every behaviour a test needs is a switch.

It keeps Flink's observable rules that the lifecycle depends on (stop with savepoint ends a job
FINISHED, cancel ends it CANCELED, a failed savepoint leaves the job running, a job id is listed once
submitted) and nothing else; the real targets are tested against real Flink and the Kubernetes stand-ins.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from streampilot.domain.apps import AppSpec
from streampilot.domain.errors import SpecError
from streampilot.flink.client import FlinkClient, JobSummary
from streampilot.services.errors import Conflict, Unavailable
from streampilot.services.submissions import launch_config
from streampilot.store.orm import Cluster
from streampilot.targets.port import Launch, LaunchRequest, Listing, Triggered

KIND = "fake"


@dataclass
class FakeJob:
    job_id: str
    name: str
    state: str = "RUNNING"
    tasks_running: int = 1
    tasks_total: int = 1
    restored_from: str | None = None


FAKE_SLOTS = 16


@dataclass
class FakeFleet:
    """The fake clusters' shared state: their jobs, and the switches a test flips."""

    jobs: dict[str, FakeJob] = field(default_factory=dict)
    launches: list[Launch] = field(default_factory=list)
    savepoints: dict[str, str] = field(default_factory=dict)  # trigger -> path
    refuse: str | None = None  # the next submissions are refused with this reason (a field error on "sql")
    refuse_but_run: bool = False  # ... and the job runs all the same (Flink: a PyFlink script that waits)
    unavailable: bool = False  # every call fails as if the cluster did not answer
    savepoint_failure: str | None = None  # savepoints fail with this cause
    submit_gate: asyncio.Event | None = None  # when set, a submission waits for it
    savepoint_gate: asyncio.Event | None = None  # when set, a savepoint waits for it after its trigger
    in_place: bool = False  # upgrades in place, like the Kubernetes operator
    slots_free: bool = True  # False: new jobs are RUNNING with their tasks waiting for slots
    fail_at_start: bool = False  # new jobs fail at once (a program that throws in its first records)
    finish_at_once: bool = False  # new jobs are done at once (a small bounded input)
    counter: int = 0

    def target(self, ctx: Any, cluster: Cluster) -> FakeTarget:
        return FakeTarget(self, cluster)


@dataclass
class FakeTarget:
    fleet: FakeFleet
    cluster: Cluster

    @property
    def upgrades_in_place(self) -> bool:
        return self.fleet.in_place

    def _answer(self) -> None:
        if self.fleet.unavailable:
            raise Unavailable(f"fake cluster {self.cluster.name!r} does not answer")

    def check(self, spec: AppSpec) -> None:
        if spec.properties.get("fake.unsupported"):
            raise SpecError.one("properties", "the fake target does not support 'fake.unsupported'")

    async def validate(self, app_name: str, spec: AppSpec) -> None:
        return None

    async def prepare(self, request: LaunchRequest) -> Launch:
        self.fleet.counter += 1
        job_id = f"{self.fleet.counter:032x}"
        return Launch(request, job_id, launch_config(request.spec, request.app_name), None)

    async def submit(self, launch: Launch) -> None:
        if self.fleet.submit_gate is not None:
            await self.fleet.submit_gate.wait()
        self._answer()
        if self.fleet.refuse and not self.fleet.refuse_but_run:
            raise SpecError.one("sql", self.fleet.refuse)
        self.fleet.launches.append(launch)
        self.fleet.jobs[launch.job_id] = FakeJob(
            launch.job_id,
            launch.request.app_name,
            state="FAILED" if self.fleet.fail_at_start else ("FINISHED" if self.fleet.finish_at_once else "RUNNING"),
            tasks_running=1 if self.fleet.slots_free and not self.fleet.fail_at_start else 0,
            restored_from=launch.request.restore_path,
        )
        if self.fleet.refuse:
            raise SpecError.one("sql", self.fleet.refuse)

    def _job(self, job_id: str) -> FakeJob:
        self._answer()
        job = self.fleet.jobs.get(job_id)
        if job is None or job.state in ("FINISHED", "CANCELED", "FAILED"):
            raise Conflict(f"job {job_id} is not running")
        return job

    async def cancel(self, job_id: str) -> None:
        self._job(job_id).state = "CANCELED"

    async def _savepoint(self, job_id: str, triggered: Triggered) -> tuple[FakeJob, str]:
        job = self._job(job_id)
        self.fleet.counter += 1
        trigger = f"trigger-{self.fleet.counter}"
        await triggered(trigger)
        if self.fleet.savepoint_gate is not None:
            await self.fleet.savepoint_gate.wait()
        if self.fleet.savepoint_failure:
            raise Conflict(f"savepoint failed: {self.fleet.savepoint_failure}")
        path = f"memory://fake/savepoints/savepoint-{self.fleet.counter}"
        self.fleet.savepoints[trigger] = path
        return job, path

    async def stop_with_savepoint(self, job_id: str, *, drain: bool, timeout_s: float, triggered: Triggered) -> str:
        job, path = await self._savepoint(job_id, triggered)
        job.state = "FINISHED"
        return path

    async def savepoint(self, job_id: str, *, timeout_s: float, triggered: Triggered) -> str:
        return (await self._savepoint(job_id, triggered))[1]

    async def savepoint_outcome(self, job_id: str, trigger: str, timeout_s: float) -> str | None:
        return self.fleet.savepoints.get(trigger)

    async def upgrade(self, app_id: int, spec: AppSpec, config: dict[str, str], timeout_s: float) -> str | None:
        return None

    async def observe_all(self) -> Listing:
        if self.fleet.unavailable:
            return Listing.failed(f"fake cluster {self.cluster.name!r} does not answer")
        return Listing(
            {
                j.job_id: JobSummary(j.job_id, j.name, j.state, j.tasks_running, j.tasks_total, 0)
                for j in self.fleet.jobs.values()
            }
        )

    async def kept_savepoints(self, job_id: str) -> list[tuple[str, float]]:
        return []

    def flink_api(self, job_id: str) -> tuple[FlinkClient, str] | None:
        return None

    async def describe(self) -> dict[str, Any]:
        free = FAKE_SLOTS if self.fleet.slots_free else 0
        return {
            "reachable": not self.fleet.unavailable,
            "jobs": len(self.fleet.jobs),
            "slots_total": FAKE_SLOTS,
            "slots_available": free,
        }

    async def start_cluster(self, timeout_s: float) -> str:
        return "exists"

    async def stop_cluster(self) -> None:
        return None
