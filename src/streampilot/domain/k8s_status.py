"""What a Flink Kubernetes Operator resource's status says about its job: the job state the operator
reports, refined by Flink's REST answer and the JobManager's Deployment and pods, the operator's error,
and the savepoints it kept (FlinkStateSnapshots or the job status of older operators)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streampilot.domain.states import FlinkJobState


def kept_savepoints(snapshots: list[dict[str, Any]], resource: str) -> list[tuple[str, float]]:
    """Completed savepoints among FlinkStateSnapshots that refer to ``resource``, as (path, epoch s):
    the time is the operator's ``status.resultTimestamp`` (else the object's creation)."""
    found = []
    for snap in snapshots:
        spec, status = snap.get("spec") or {}, snap.get("status") or {}
        if (spec.get("jobReference") or {}).get("name") != resource or spec.get("savepoint") is None:
            continue
        if status.get("state") != "COMPLETED" or not status.get("path"):
            continue
        stamp = status.get("resultTimestamp") or (snap.get("metadata") or {}).get("creationTimestamp")
        try:
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() if stamp else 0.0
        except ValueError:
            at = 0.0
        found.append((str(status["path"]), at))
    return sorted(found, key=lambda f: f[1], reverse=True)


def suspend_savepoint(resource: dict[str, Any]) -> str | None:
    """The savepoint of a resource's last suspend or upgrade: ``upgradeSavepointPath`` (the operator
    sets it whether or not it records snapshots as FlinkStateSnapshots), else the legacy
    ``savepointInfo.lastSavepoint`` of older operators."""
    job_status = (resource.get("status") or {}).get("jobStatus") or {}
    upgrade = job_status.get("upgradeSavepointPath")
    if upgrade:
        return str(upgrade)
    location = ((job_status.get("savepointInfo") or {}).get("lastSavepoint") or {}).get("location")
    return str(location) if location else None


_OPERATOR_JOB_STATES = {s.value for s in FlinkJobState}


def observed_job_state(resource: dict[str, Any]) -> tuple[FlinkJobState | None, str]:
    """The job state a FlinkDeployment/FlinkSessionJob's status reports, and a sentence saying so.

    None means the resource does not say yet (deploying, or the operator has not reconciled it).
    """
    status = resource.get("status") or {}
    job_status = status.get("jobStatus") or {}
    raw = str(job_status.get("state") or "").upper()
    lifecycle = status.get("lifecycleState")
    jm = status.get("jobManagerDeploymentStatus")
    error = status.get("error")
    detail = f"operator reports job {raw or '-'}, lifecycle {lifecycle or '-'}, JobManager {jm or '-'}"
    if error:
        detail += f", error: {operator_error(error)[:500]}"
    if lifecycle == "FAILED" and not raw:
        # Refused before anything was deployed (its validator): no job will come until the spec changes.
        return FlinkJobState.FAILED, detail
    if lifecycle == "UPGRADING":
        # The operator suspends the job to apply a new spec: whatever the old job's state, it comes back.
        return FlinkJobState.RESTARTING, detail
    if raw in _OPERATOR_JOB_STATES:
        state = FlinkJobState(raw)
        # A job the operator still calls RUNNING while its JobManager is not ready is restarting.
        if state == FlinkJobState.RUNNING and jm not in (None, "READY"):
            return FlinkJobState.RESTARTING, detail
        return state, detail
    if jm in ("DEPLOYING", "DEPLOYED_NOT_READY") or lifecycle in ("CREATED", "UPGRADING", "DEPLOYED"):
        return FlinkJobState.INITIALIZING, detail
    return None, detail


def operator_error(error: Any) -> str:
    """The message of the operator's status.error (a serialized FlinkResourceException: type, message,
    throwableList), or the text as it is."""
    try:
        parsed = json.loads(str(error))
    except ValueError:
        return str(error)
    if not isinstance(parsed, dict) or not parsed.get("message"):
        return str(error)
    kind = str(parsed.get("type") or "").rsplit(".", 1)[-1]
    return f"{kind}: {parsed['message']}" if kind else str(parsed["message"])


def flink_job_id(resource: dict[str, Any]) -> str | None:
    """The Flink job id the operator reports for the resource's current job."""
    job_id = ((resource.get("status") or {}).get("jobStatus") or {}).get("jobId")
    return str(job_id) if job_id else None


@dataclass(frozen=True)
class RestJob:
    """What Flink's REST API said about one job: its state and task counts; ``state`` None: not listed."""

    state: str | None
    tasks_running: int = 0
    tasks_total: int = 0


@dataclass(frozen=True)
class MergedJob:
    state: FlinkJobState
    tasks_running: int
    tasks_total: int
    detail: str


def merge_rest(operator: FlinkJobState, detail: str, job_id: str | None, rest: RestJob | str | None) -> MergedJob:
    """The third source on top of the operator's status and the JobManager Deployment.

    ``rest`` is None when there is no REST API to ask (no URL template, or no job id yet), a string when
    the call failed (Unknown: it says nothing about the job), or the answer. An answer listing the job
    is the freshest word on it and brings real task counts; a JobManager that answers without the job
    is recovering it (never evidence that the job is gone: only the resource's absence is).
    """
    fallback = MergedJob(operator, 1 if operator == FlinkJobState.RUNNING else 0, 1, detail)
    if rest is None:
        return fallback
    if isinstance(rest, str):
        return MergedJob(fallback.state, fallback.tasks_running, 1, f"{detail}; Flink REST API unknown: {rest}")
    if rest.state is None:
        if operator.is_globally_terminal:
            return fallback
        return MergedJob(
            FlinkJobState.RESTARTING, 0, 1, f"{detail}; the JobManager answers but does not list job {job_id} yet"
        )
    try:
        state = FlinkJobState(rest.state)
    except ValueError:
        return MergedJob(
            fallback.state, fallback.tasks_running, 1, f"{detail}; Flink reports unknown state {rest.state}"
        )
    return MergedJob(
        state,
        rest.tasks_running,
        rest.tasks_total,
        f"Flink's REST API reports job {job_id} {state.value} ({rest.tasks_running}/{rest.tasks_total} tasks running); "
        + detail,
    )


def jobmanager_pods(pods: dict[str, dict[str, Any]], name: str) -> dict[str, int]:
    """The JobManager pods of FlinkDeployment ``name``, with the restarts of their containers."""
    out: dict[str, int] = {}
    for pod_name, pod in pods.items():
        if ((pod.get("metadata") or {}).get("labels") or {}).get("app") != name:
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        out[pod_name] = sum(int(c.get("restartCount") or 0) for c in statuses)
    return out


def pod_changes(before: dict[str, int] | None, now: dict[str, int]) -> list[str]:
    """Sentences for the timeline: pods replaced, containers restarted (nothing on first sight)."""
    if before is None:
        return []
    notes: list[str] = []
    gone = sorted(set(before) - set(now))
    for pod in sorted(set(now) - set(before)):
        replacing = f", replacing {', '.join(gone)}" if gone else ""
        notes.append(f"JobManager pod {pod} started{replacing}")
    if gone and not set(now) - set(before):
        notes.append(f"JobManager pod {', '.join(gone)} is gone")
    for pod in sorted(set(now) & set(before)):
        if now[pod] > before[pod]:
            notes.append(f"JobManager pod {pod} restarted ({now[pod]} restarts in all)")
    return notes


def merge_jobmanager(state: FlinkJobState, detail: str, deployment: dict[str, Any] | None) -> tuple[FlinkJobState, str]:
    """A job the operator calls RUNNING whose JobManager Deployment is missing or not ready is restarting."""
    if deployment is None:
        return FlinkJobState.RESTARTING, f"{detail}; its JobManager Deployment is missing (being recreated)"
    wanted = int((deployment.get("spec") or {}).get("replicas") or 1)
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    if ready < wanted:
        return FlinkJobState.RESTARTING, f"{detail}; JobManager not ready ({ready}/{wanted} pods ready)"
    return state, detail
