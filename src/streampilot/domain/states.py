"""Public application states, raw Flink job states and observations of a job.

An observation is what one look at a cluster told us about one job: ``Seen`` (the cluster answered
and listed the job), ``Gone`` (the cluster answered and positively does not have it) or ``Unknown``
(any error). Only ``Seen`` and ``Gone`` are evidence; ``Unknown`` never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AppState(StrEnum):
    CREATED = "CREATED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    LOST = "LOST"


# States in which a job is expected to exist and be working toward (or at) running.
ACTIVE_STATES = frozenset(
    {AppState.STARTING, AppState.RUNNING, AppState.RESTARTING, AppState.FAILING, AppState.STOPPING}
)
# States from which a new start is allowed.
STARTABLE_STATES = frozenset({AppState.CREATED, AppState.FAILED, AppState.CANCELED, AppState.FINISHED, AppState.LOST})


class DesiredState(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class Cause(StrEnum):
    USER = "user"
    OBSERVER = "observer"
    POLICY = "policy"
    FORCED = "forced"
    SYSTEM = "system"


class FlinkJobState(StrEnum):
    INITIALIZING = "INITIALIZING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    RESTARTING = "RESTARTING"
    SUSPENDED = "SUSPENDED"
    RECONCILING = "RECONCILING"

    @property
    def is_globally_terminal(self) -> bool:
        return self in (FlinkJobState.FAILED, FlinkJobState.CANCELED, FlinkJobState.FINISHED)

    @classmethod
    def parse(cls, raw: str | None) -> FlinkJobState | None:
        """Flink's word for a job's state, or None when there is none or it is not one we know."""
        if raw is None:
            return None
        try:
            return cls(raw)
        except ValueError:
            return None


@dataclass(frozen=True)
class Seen:
    job_state: FlinkJobState
    tasks_running: int
    tasks_total: int
    at: datetime
    note: str = ""  # the source's own words, when it is not Flink's REST API
    tasks_finished: int = 0  # of a bounded job: done, not down

    @property
    def all_tasks_running(self) -> bool:
        """Every task runs, or has finished its bounded input (a finished task is done, not down)."""
        return self.tasks_total > 0 and self.tasks_running + self.tasks_finished == self.tasks_total

    @property
    def any_task_progressed(self) -> bool:
        """A batch job runs stage after stage: some task runs or has finished while the next ones wait."""
        return self.tasks_running + self.tasks_finished > 0


@dataclass(frozen=True)
class Gone:
    at: datetime
    evidence: str


@dataclass(frozen=True)
class Unknown:
    at: datetime
    error: str


Observation = Seen | Gone | Unknown
