"""The Target port: what the lifecycle, the tracker and the policies need of a place where Flink jobs run.

One implementation per kind of place: a standalone session cluster (local or remote,
targets/standalone/), a Kubernetes application or session cluster through the Flink Kubernetes
Operator (targets/kubernetes/), and a fake for fast service tests (targets/fake.py). Callers never ask
which kind they hold; a capability a kind lacks is a property (``upgrades_in_place``) or a clear error.

Errors follow one convention: ``SpecError`` when the target refuses what we ask (permanent, shown as
field errors), ``Unavailable`` when it did not answer (temporary: the outcome is unknown and the
tracker finds out), ``Conflict`` when it answered but could not do it now (a failed savepoint).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from streampilot.domain.apps import AppSpec
from streampilot.domain.states import FlinkJobState, Gone, Observation, Seen, Unknown
from streampilot.flink.client import FlinkClient, JobSummary
from streampilot.store.orm import Cluster


@dataclass(frozen=True)
class LaunchRequest:
    """What to run: an app's version, and where its state comes from."""

    app_id: int
    app_name: str
    version: int
    spec: AppSpec
    restore_path: str | None = None
    allow_non_restored_state: bool = False


@dataclass
class Launch:
    """A prepared submission: the job's identity and configuration, known before anything is sent.

    ``payload`` is the target's own (an uploaded-jar submission, a resource body); callers only pass it back.
    """

    request: LaunchRequest
    job_id: str
    config: dict[str, str]
    payload: Any = None


@dataclass(frozen=True)
class Listing:
    """All jobs of one cluster as one batch, or why the cluster could not be asked (then all is Unknown)."""

    jobs: dict[str, JobSummary] | None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Listing:
        return cls(None, error)

    @property
    def answered(self) -> bool:
        return self.jobs is not None

    def get(self, job_id: str) -> JobSummary | None:
        return None if self.jobs is None else self.jobs.get(job_id)

    def observe(self, job_id: str, at: datetime) -> Observation:
        """One job's observation: Seen, Gone (the cluster answered without it) or Unknown."""
        if self.jobs is None:
            return Unknown(at, self.error or "the cluster did not answer")
        job = self.jobs.get(job_id)
        if job is None:
            return Gone(at, f"job {job_id} is not in the cluster's job list")
        state = FlinkJobState.parse(job.state)
        if state is None:
            return Unknown(at, f"unrecognised Flink job state {job.state!r}")
        return Seen(state, job.tasks_running, job.tasks_total, at, job.detail, job.tasks_finished)


# Called with a savepoint's trigger id as soon as the target has one, so that an operation
# interrupted by a platform restart can ask for the savepoint's outcome afterwards.
Triggered = Callable[[str], Awaitable[None]]


class Target(Protocol):
    cluster: Cluster

    @property
    def upgrades_in_place(self) -> bool:
        """True if the target upgrades a running job to a new spec itself (the Kubernetes operator)."""
        ...

    def check(self, spec: AppSpec) -> None:
        """Field errors for what this target cannot run (no I/O); raises SpecError."""

    async def validate(self, app_name: str, spec: AppSpec) -> None:
        """Let the cluster check the program where it can (Flink's planner); no-op where it cannot."""

    async def prepare(self, request: LaunchRequest) -> Launch:
        """Everything that can be done before anything reaches the cluster (job id, configuration)."""
        ...

    async def submit(self, launch: Launch) -> None:
        """Send the prepared job. SpecError: refused (nothing runs); Unavailable: outcome unknown."""

    async def cancel(self, job_id: str) -> None:
        """Ask the cluster to cancel the job (without a savepoint); returns once asked."""

    async def stop_with_savepoint(self, job_id: str, *, drain: bool, timeout_s: float, triggered: Triggered) -> str:
        """Stop the job with a savepoint; its path. Conflict if no savepoint could be written."""
        ...

    async def savepoint(self, job_id: str, *, timeout_s: float, triggered: Triggered) -> str:
        """Take a savepoint of the running job; its path. Conflict if it failed."""
        ...

    async def savepoint_outcome(self, job_id: str, trigger: str, timeout_s: float) -> str | None:
        """After a platform restart: the path of an earlier triggered savepoint, None if it cannot be told.

        Conflict if the cluster says the savepoint failed.
        """
        ...

    async def upgrade(self, app_id: int, spec: AppSpec, config: dict[str, str], timeout_s: float) -> str | None:
        """Upgrade in place (only where ``upgrades_in_place``); the savepoint taken for it, if any."""
        ...

    async def observe_all(self) -> Listing:
        """Every job of the cluster in one batch: one request per cluster and tick."""
        ...

    def flink_api(self, job_id: str) -> tuple[FlinkClient, str] | None:
        """Flink's REST API for the job and the job's id there; None where it cannot be reached."""
        ...

    async def kept_savepoints(self, job_id: str) -> list[tuple[str, float]]:
        """Savepoints the place keeps of the job by itself, as (path, seconds since the epoch): the
        Kubernetes operator's FlinkStateSnapshots (periodic, upgrade, manual); none on a standalone
        cluster. Raises ``Unavailable`` when it cannot be asked."""
        ...

    async def describe(self) -> dict[str, Any]:
        """The cluster as an operator sees it (reachable, slots, resources, session state)."""
        ...

    async def start_cluster(self, timeout_s: float) -> str:
        """Bring up the cluster itself where the platform may (a Kubernetes session); how it went."""
        ...

    async def stop_cluster(self) -> None:
        """Tear down what ``start_cluster`` brought up."""
