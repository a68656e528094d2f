"""What the three Kubernetes sources say about a job, merged: the operator's resource status, the
JobManager Deployment, and Flink's REST API (pure rules, no I/O)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streampilot.domain.k8s import (
    K8sOptions,
)
from streampilot.domain.k8s_status import (
    RestJob,
    jobmanager_pods,
    merge_jobmanager,
    merge_rest,
    observed_job_state,
    pod_changes,
)
from streampilot.domain.states import FlinkJobState

RUNNING = FlinkJobState.RUNNING


def resource(job: str | None, jm: str | None = "READY", lifecycle: str = "STABLE") -> dict[str, object]:
    return {
        "status": {
            "jobStatus": {"state": job} if job else {},
            "jobManagerDeploymentStatus": jm,
            "lifecycleState": lifecycle,
        }
    }


def test_operator_status_reads() -> None:
    assert observed_job_state(resource("RUNNING"))[0] == RUNNING
    assert observed_job_state(resource("RUNNING", jm="DEPLOYING"))[0] == FlinkJobState.RESTARTING
    assert observed_job_state(resource(None, jm="DEPLOYING", lifecycle="DEPLOYED"))[0] == FlinkJobState.INITIALIZING
    assert observed_job_state(resource(None, jm=None, lifecycle="SUSPENDED"))[0] is None


def test_jobmanager_deployment_missing_or_unready_is_restarting() -> None:
    assert merge_jobmanager(RUNNING, "op", None)[0] == FlinkJobState.RESTARTING
    unready = {"spec": {"replicas": 1}, "status": {"readyReplicas": 0}}
    state, detail = merge_jobmanager(RUNNING, "op", unready)
    assert state == FlinkJobState.RESTARTING and "0/1 pods ready" in detail
    assert merge_jobmanager(RUNNING, "op", {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}})[0] == RUNNING


def test_without_rest_the_operator_decides() -> None:
    merged = merge_rest(RUNNING, "op", "j1", None)
    assert (merged.state, merged.tasks_running, merged.tasks_total) == (RUNNING, 1, 1)


def test_rest_errors_are_unknown_for_that_source_only() -> None:
    merged = merge_rest(RUNNING, "op", "j1", "connection refused")
    assert merged.state == RUNNING and "Flink REST API unknown: connection refused" in merged.detail


def test_rest_answer_wins_with_real_task_counts() -> None:
    merged = merge_rest(RUNNING, "op", "j1", RestJob("RUNNING", 3, 4))
    assert (merged.state, merged.tasks_running, merged.tasks_total) == (RUNNING, 3, 4)
    assert merge_rest(RUNNING, "op", "j1", RestJob("FAILED")).state == FlinkJobState.FAILED
    assert merge_rest(FlinkJobState.FAILED, "op", "j1", RestJob("RUNNING", 2, 2)).state == RUNNING  # HA recovery


def test_a_jobmanager_without_the_job_is_recovering_not_gone() -> None:
    merged = merge_rest(RUNNING, "op", "j1", RestJob(None))
    assert merged.state == FlinkJobState.RESTARTING and "does not list job j1" in merged.detail
    assert merge_rest(FlinkJobState.FINISHED, "op", "j1", RestJob(None)).state == FlinkJobState.FINISHED


def test_rest_url_template() -> None:
    app_mode = K8sOptions(namespace="jobs", rest_url_template="http://{name}-rest.{namespace}:8081/")
    assert app_mode.rest_url("sp-app-3") == "http://sp-app-3-rest.jobs:8081"
    session = K8sOptions(session_name="shared", rest_url_template="https://flink.example.org/{namespace}/{name}")
    assert session.rest_url("sp-app-3") == "https://flink.example.org/default/shared"
    assert K8sOptions().rest_url("sp-app-3") is None
    for bad in ("flink:8081", "http://{app}:8081", "http://{name:8081"):
        with pytest.raises(ValidationError):
            K8sOptions(rest_url_template=bad)


def test_jobmanager_pods_and_their_story() -> None:
    def pod(app: str, restarts: int) -> dict[str, object]:
        return {"metadata": {"labels": {"app": app}}, "status": {"containerStatuses": [{"restartCount": restarts}]}}

    pods = jobmanager_pods({"a-jm-1": pod("a", 2), "b-jm-1": pod("b", 0)}, "a")
    assert pods == {"a-jm-1": 2}
    assert pod_changes(None, pods) == []  # first sight tells nothing
    assert pod_changes({"a-jm-1": 2}, {"a-jm-1": 3}) == ["JobManager pod a-jm-1 restarted (3 restarts in all)"]
    assert pod_changes({"a-jm-1": 3}, {"a-jm-2": 0}) == ["JobManager pod a-jm-2 started, replacing a-jm-1"]
    assert pod_changes({"a-jm-1": 3}, {}) == ["JobManager pod a-jm-1 is gone"]
    assert pod_changes({"a-jm-1": 3}, {"a-jm-1": 3}) == []
