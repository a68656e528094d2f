"""Request and response bodies, split by role: actions (requests) and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streampilot.domain.apps import AppSpec
from streampilot.domain.urls import without_credentials
from streampilot.domain.variables import NAME as VARIABLE_NAME
from streampilot.store.orm import App, AppEvent, Cluster, ClusterEvent, FlinkHome, Jar, Operation, Snapshot, Variable


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


class Body(BaseModel):
    """A request body as JSON types it: unknown fields, "1" for a number or 0 for false are refused
    (strict); a whole number written 2.0 is 2, as JSON Schema's ``integer`` allows."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        return {k: _whole(v) for k, v in data.items()} if isinstance(data, dict) else data


# ---- actions --------------------------------------------------------------------------------


class AppCreate(AppSpec):
    name: str = Field(min_length=1, max_length=100)
    cluster_id: int
    team_id: int | None = Field(default=None, description="The owning team (default: its cluster's team)")


class VariableCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=VARIABLE_NAME.pattern)
    value: str = Field(max_length=65536)
    secret: bool = Field(default=False, description="Stored encrypted, never shown again, masked where resolved")
    description: str = Field(default="", max_length=500)
    team_id: int | None = Field(
        default=None, description="The owning team (default: your only team where you may create)"
    )


class VariablePatch(Body):
    value: str | None = Field(default=None, max_length=65536)
    secret: bool | None = None
    description: str | None = Field(default=None, max_length=500)


class VariableOut(BaseModel):
    """A variable; a secret's ``value`` is null (it is never returned)."""

    id: int
    team_id: int
    name: str
    value: str | None
    secret: bool
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, v: Variable) -> VariableOut:
        return cls(
            id=v.id,
            team_id=v.team_id,
            name=v.name,
            value=None if v.secret else v.value,
            secret=v.secret,
            description=v.description,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )


class ExplainRequest(Body):
    """A SQL script not (yet) saved as an app version, planned as it would run on ``cluster_id``."""

    cluster_id: int
    sql: str = Field(min_length=1, max_length=1_000_000)
    runtime_mode: Literal["streaming", "batch"] = "streaming"
    dependency_jar_ids: list[int] = Field(default_factory=list)


class ExplainOut(BaseModel):
    """Flink's plan of the script: abstract syntax tree, optimized physical plan, execution plan."""

    version: int | None
    plan: str


class AppPatch(BaseModel):
    """Any subset of an application's fields; the result is validated as a whole."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    cluster_id: int | None = None
    current_version: int | None = Field(default=None, ge=1)


class StartAction(Body):
    restore: str = Field(default="none", description='"none", "latest" or a savepoint/checkpoint path')
    allow_non_restored_state: bool = False
    version: int | None = Field(default=None, ge=1)


class StopAction(Body):
    savepoint: bool = True
    drain: bool = False


class UpgradeAction(Body):
    version: int | None = Field(default=None, ge=1, description="The version to run (default: the current one)")
    drain: bool = Field(default=False, description="Session clusters: drain the pipeline before the savepoint")


class AttachAction(Body):
    job_id: str = Field(
        pattern=r"^\s*[0-9a-fA-F]{32}\s*$", description="The Flink job id (32 hex digits) to attach the application to"
    )


class ClusterCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["local", "standalone", "kubernetes-application", "kubernetes-session"]
    rest_url: str | None = None
    flink_home_id: int | None = None
    slots: int | None = Field(default=None, ge=1, le=256)
    taskmanagers: int = Field(default=1, ge=1, le=16)
    options: dict[str, Any] | None = Field(
        default=None,
        description="Kubernetes clusters: kubeconfig, namespace, "
        "image, service_account, jobmanager/taskmanager resources, ...",
    )
    team_id: int | None = Field(
        default=None, description="The owning team (default: your only team where you may create)"
    )


class FlinkHomeCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    path: str = Field(min_length=1)


# ---- responses ------------------------------------------------------------------------------


class AppStatus(BaseModel):
    state: str
    job_state: str | None
    job_id: str | None
    tasks_running: int | None
    tasks_total: int | None
    observed_at: datetime | None
    unconfirmed_since: datetime | None
    config_verified: bool | None
    config_mismatches: list[str]
    last_checkpoint: dict[str, Any] | None
    jobmanager_pods: dict[str, int] | None = Field(
        default=None, description="Kubernetes application mode: JobManager pods by name, with their restart counts"
    )


class AppOut(BaseModel):
    id: int
    team_id: int
    name: str
    kind: str
    cluster_id: int
    current_version: int
    running_version: int | None
    desired_state: str
    operation: str | None
    status: AppStatus
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any] | None = None

    @classmethod
    def of(cls, app: App, spec: AppSpec, *, with_spec: bool = False) -> AppOut:
        return cls(
            id=app.id,
            team_id=app.team_id,
            name=app.name,
            kind=spec.kind.value,
            cluster_id=app.cluster_id,
            current_version=app.current_version,
            running_version=app.running_version,
            desired_state=app.desired_state,
            operation=app.operation,
            status=AppStatus(
                state=app.state,
                job_state=app.job_state,
                job_id=app.job_id,
                tasks_running=app.tasks_running,
                tasks_total=app.tasks_total,
                observed_at=app.observed_at,
                unconfirmed_since=app.unconfirmed_since,
                config_verified=app.config_verified,
                config_mismatches=app.config_mismatches or [],
                last_checkpoint=app.last_checkpoint,
                jobmanager_pods=app.jobmanager_pods,
            ),
            created_at=app.created_at,
            updated_at=app.updated_at,
            spec=spec.model_dump(mode="json") if with_spec else None,
        )


class EventOut(BaseModel):
    id: int
    at: datetime
    from_state: str | None
    to_state: str
    cause: str
    detail: str
    job_id: str | None

    @classmethod
    def of(cls, e: AppEvent) -> EventOut:
        return cls(
            id=e.id,
            at=e.at,
            from_state=e.from_state or None,
            to_state=e.to_state,
            cause=e.cause,
            detail=e.detail,
            job_id=e.job_id,
        )


class SnapshotOut(BaseModel):
    id: int
    kind: str
    trigger: str
    path: str
    job_id: str
    checkpoint_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, s: Snapshot) -> SnapshotOut:
        return cls(
            id=s.id,
            kind=s.kind,
            trigger=s.trigger,
            path=s.path,
            job_id=s.job_id,
            checkpoint_id=s.checkpoint_id,
            created_at=s.created_at,
        )


class ClusterOut(BaseModel):
    id: int
    team_id: int
    name: str
    kind: str
    rest_url: str | None
    flink_version: str | None
    flink_home_id: int | None
    desired_running: bool
    options: dict[str, Any]
    # Clusters the platform brings up itself: STARTING until ready, then RUNNING (or FAILED, STOPPED).
    state: str | None = None
    runtime: dict[str, Any] | None = None

    @classmethod
    def of(cls, c: Cluster, runtime: dict[str, Any] | None = None, state: str | None = None) -> ClusterOut:
        return cls(
            id=c.id,
            team_id=c.team_id,
            name=c.name,
            kind=c.kind,
            rest_url=without_credentials(c.rest_url) if c.rest_url else None,
            flink_version=c.flink_version,
            flink_home_id=c.flink_home_id,
            desired_running=c.desired_running,
            options=c.options,
            state=state,
            runtime=runtime,
        )


class ClusterEventOut(BaseModel):
    at: datetime
    kind: str
    detail: str

    @classmethod
    def of(cls, e: ClusterEvent) -> ClusterEventOut:
        return cls(at=e.at, kind=e.kind, detail=e.detail)


class FlinkHomeOut(BaseModel):
    id: int
    name: str
    path: str
    version: str
    bundled: bool

    @classmethod
    def of(cls, h: FlinkHome) -> FlinkHomeOut:
        return cls(id=h.id, name=h.name, path=h.path, version=h.version, bundled=h.bundled)


class JarOut(BaseModel):
    id: int
    team_id: int
    filename: str
    size: int
    sha256: str
    main_class: str | None

    @classmethod
    def of(cls, j: Jar) -> JarOut:
        return cls(
            id=j.id, team_id=j.team_id, filename=j.filename, size=j.size, sha256=j.sha256, main_class=j.main_class
        )


class OperationStep(BaseModel):
    at: datetime
    text: str


class OperationOut(BaseModel):
    """A lifecycle verb in progress or done: ``state`` is pending, running, succeeded or failed."""

    id: int
    verb: str
    app_id: int
    state: str
    cause: str
    actor: str | None
    params: dict[str, Any]
    steps: list[OperationStep]
    error: str | None
    problems: list[dict[str, Any]] | None
    result: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, op: Operation) -> OperationOut:
        return cls(
            id=op.id,
            verb=op.verb,
            app_id=op.app_id,
            state=op.state,
            cause=op.cause,
            actor=op.actor,
            params=op.params or {},
            steps=[OperationStep(at=s["at"], text=s["text"]) for s in op.steps or []],
            error=op.error,
            problems=op.problems,
            result=op.result,
            created_at=op.created_at,
            finished_at=op.finished_at,
        )


class OperationAccepted(BaseModel):
    """The answer to a lifecycle verb: the operation (follow it at /api/v1/operations/{id}) and the app."""

    operation: OperationOut
    app: AppOut
