"""What a stock operator and API server do that a lenient stand-in would hide: finalizers that keep a
deleted resource until its job is torn down, the operator's validator refusing a resource (status.error,
nothing deployed), fields the CRD does not know, and savepoints kept as FlinkStateSnapshot resources
(or, on operators without them, in the job's status)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.domain.k8s import DEPLOYMENTS, SESSION_JOBS, SNAPSHOTS
from streampilot.services.platform import Platform
from streampilot.targets.kubernetes import target as target_module
from streampilot.targets.kubernetes.client import KubeApi, KubeRejected
from tests.helpers import act, wait_app, wait_operation, wait_state
from tests.k8s.conftest import NS, add_cluster, fetch_from, jar_app
from tests.k8s.operator_sim import OperatorSimulator
from tests.k8s_emulator import KubeEmulator

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def running_app(
    api: httpx.AsyncClient, kube: KubeEmulator, platform: Platform, tmp_path: Path, **spec: Any
) -> tuple[int, str]:
    """A jar app started on a new application cluster: its id and its resource's name."""
    cluster = await add_cluster(api, kube, tmp_path)
    platform.start_loops()
    app_id = await jar_app(api, cluster, **spec)
    await act(api, app_id, "start", {})
    return app_id, (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]


def deletions(kube: KubeEmulator, name: str) -> list[tuple[int, str, bool]]:
    """The resource's history as (resourceVersion, event, marked for deletion)."""
    return [
        (rv, kind, bool(obj["metadata"].get("deletionTimestamp")))
        for rv, plural, _, kind, obj in kube.events
        if plural == DEPLOYMENTS and obj["metadata"]["name"] == name
    ]


@SQLITE
async def test_a_new_run_waits_until_the_operator_has_torn_the_old_one_down(
    api: httpx.AsyncClient, kube: KubeEmulator, platform: Platform, tmp_path: Path
) -> None:
    sim = OperatorSimulator(kube, cleanup_delay_s=1.5).start()  # tearing a job down takes 1.5 s
    try:
        cluster = await add_cluster(api, kube, tmp_path)
        platform.start_loops()
        app_id = await jar_app(api, cluster)
        await act(api, app_id, "start", {})  # its operation has ended, not only the job running
        name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
        assert kube.get(DEPLOYMENTS, NS, name)["metadata"]["finalizers"] == [  # type: ignore[index]
            "flinkdeployments.flink.apache.org/finalizer"
        ]
        await act(api, app_id, "cancel")
        await act(api, app_id, "start", {})  # deletes the old resource first: it lingers for 1.5 s
        await wait_state(api, app_id, "RUNNING")
        history = deletions(kube, name)
        marked = [rv for rv, _, deleting in history if deleting]
        gone = [rv for rv, kind, _ in history if kind == "DELETED"]
        created = [rv for rv, kind, _ in history if kind == "ADDED"]
        assert marked and gone and len(created) == 2, history
        assert marked[0] < gone[0] < created[1], history  # created again only once the old one was gone
    finally:
        await sim.stop()


async def test_the_api_server_keeps_a_deleted_resource_while_it_has_finalizers(kube: KubeEmulator) -> None:
    """The stand-in itself: a create of the name while the old object finalizes is a 409."""
    body: dict[str, Any] = {"metadata": {"name": "x", "finalizers": ["f"]}, "spec": {}}
    async with httpx.AsyncClient(base_url=kube.url) as http:
        base = f"/apis/flink.apache.org/v1beta1/namespaces/{NS}/flinkdeployments"
        assert (await http.post(base, json=body)).status_code == 201
        assert (await http.delete(f"{base}/x")).status_code == 200
        assert kube.get(DEPLOYMENTS, NS, "x")["metadata"]["deletionTimestamp"]  # type: ignore[index]
        assert (await http.post(base, json=body)).status_code == 409
        await kube.remove_finalizer(DEPLOYMENTS, NS, "x", "f")
        assert kube.get(DEPLOYMENTS, NS, "x") is None
        assert (await http.post(base, json=body)).status_code == 201


@SQLITE
async def test_a_resource_the_operator_refuses_is_failed_with_its_reason(
    api: httpx.AsyncClient, kube: KubeEmulator, platform: Platform, tmp_path: Path
) -> None:
    # A stock 1.15 operator fetches session jobs' jars only from hosts outside the cluster's private
    # networks (kubernetes.operator.user.artifacts.disallow-restricted-hosts, default true): an artifact
    # address on a Service IP is refused until that setting is turned off.
    sim = OperatorSimulator(kube, fetch=fetch_from(api)).start()
    try:
        cluster = await add_cluster(
            api, kube, tmp_path, kind="kubernetes-session", session_name="shared", artifact_url="https://10.96.0.15"
        )
        platform.start_loops()
        assert (await api.post(f"/api/v1/clusters/{cluster}/start")).status_code == 200
        app_id = await jar_app(api, cluster, "refused")
        assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
        app = await wait_state(api, app_id, "FAILED")
        job = kube.get(SESSION_JOBS, NS, app["status"]["job_id"])
        assert job is not None and job["status"]["lifecycleState"] == "FAILED"
        assert "jobStatus" not in job["status"]  # nothing was deployed
        assert sim.fetched == {}  # ... nor fetched
        events = (await api.get(f"/api/v1/apps/{app_id}/events")).json()
        failed = next(e for e in events if e["to_state"] == "FAILED")
        expected = "ValidationException: jarURI host '10.96.0.15' resolves to a restricted address"
        assert expected in failed["detail"], events
    finally:
        await sim.stop()


async def test_a_field_the_crd_does_not_know_is_refused_not_dropped(kube: KubeEmulator, tmp_path: Path) -> None:
    body: dict[str, Any] = {"metadata": {"name": "y"}, "spec": {"job": {"jarURI": "local:///a.jar"}}}
    await kube.put(DEPLOYMENTS, NS, body)
    api = await KubeApi.connect(str(kube.kubeconfig(tmp_path / "kubeconfig")))
    try:
        with pytest.raises(KubeRejected) as refused:
            await api.patch(DEPLOYMENTS, NS, "y", {"spec": {"job": {"upgradeModes": "savepoint"}}})
        assert refused.value.status == 400 and 'unknown field "spec.job.upgradeModes"' in str(refused.value)
        with pytest.raises(KubeRejected) as invalid:
            await api.patch(DEPLOYMENTS, NS, "y", {"spec": {"job": {"upgradeMode": "sometimes"}}})
        assert invalid.value.status == 422 and "spec.job.upgradeMode" in str(invalid.value)
    finally:
        await api.close()
    # Without fieldValidation=Strict (what most clients send) the API server drops the field silently.
    async with httpx.AsyncClient(base_url=kube.url) as http:
        path = f"/apis/flink.apache.org/v1beta1/namespaces/{NS}/flinkdeployments/y"
        patch = {"spec": {"job": {"upgradeModes": "savepoint"}}}
        headers = {"Content-Type": "application/merge-patch+json"}
        assert (await http.patch(path, json=patch, headers=headers)).status_code == 200
    assert "upgradeModes" not in kube.get(DEPLOYMENTS, NS, "y")["spec"]["job"]  # type: ignore[index]


@SQLITE
@pytest.mark.parametrize("where", ["operator without snapshot resources", "no FlinkStateSnapshot CRD"])
async def test_savepoints_without_snapshot_resources_use_the_nonce(
    api: httpx.AsyncClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(target_module, "SNAPSHOT_PICKUP_S", 1.0)
    kube = await KubeEmulator(namespaces=("default", NS), snapshot_crd=where.startswith("operator")).start()
    sim = OperatorSimulator(kube, snapshot_resources=False).start()
    try:
        cluster = await add_cluster(api, kube, tmp_path)
        platform.start_loops()
        app_id = await jar_app(api, cluster)
        await act(api, app_id, "start", {})
        name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
        for nonce in (1, 2):  # the second goes straight to the nonce: the first found no controller
            saved = await act(api, app_id, "savepoint")
            info = kube.get(DEPLOYMENTS, NS, name)["status"]["jobStatus"]["savepointInfo"]  # type: ignore[index]
            assert info["lastSavepoint"]["triggerNonce"] == nonce
            assert saved["result"]["path"] == info["lastSavepoint"]["location"]
        assert [k for k in kube.objects if k[0] == SNAPSHOTS] == []  # the unanswered request was withdrawn
        stopped = await act(api, app_id, "stop", {"savepoint": True})
        assert (
            stopped["result"]["savepoint"]
            == kube.get(DEPLOYMENTS, NS, name)["status"]["jobStatus"][  # type: ignore[index]
                "upgradeSavepointPath"
            ]
        )
    finally:
        await sim.stop()
        await kube.stop()


@SQLITE
async def test_a_savepoint_the_operator_abandons_fails_with_its_reason(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, platform: Platform, tmp_path: Path
) -> None:
    app_id, name = await running_app(api, kube, platform, tmp_path)
    operator.paused = True  # the job goes down between the request and the operator's look at it
    await kube.set_status(DEPLOYMENTS, NS, name, {"jobStatus": {"state": "RESTARTING"}})
    resp = await api.post(f"/api/v1/apps/{app_id}/savepoints", json={})
    assert resp.status_code == 202
    await asyncio.sleep(0.5)
    operator.paused = False
    op = await wait_operation(api, resp.json()["operation"]["id"])
    assert op["state"] == "failed" and "is ABANDONED: Job " + name + " is not running (RESTARTING)" in op["error"], op


@SQLITE
async def test_a_policy_restart_with_snapshot_resources_restores_the_savepoint(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, platform: Platform, tmp_path: Path
) -> None:
    budget = {"max_restarts": 3, "window_s": 600, "initial_backoff_s": 0.2}
    app_id, name = await running_app(api, kube, platform, tmp_path, auto_restart=budget)
    saved = (await act(api, app_id, "savepoint"))["result"]["path"]
    first_uid = kube.get(DEPLOYMENTS, NS, name)["metadata"]["uid"]  # type: ignore[index]
    await kube.set_status(DEPLOYMENTS, NS, name, {"jobStatus": {"state": "FAILED"}})

    def restarted(app: dict[str, Any]) -> bool:
        resource = kube.get(DEPLOYMENTS, NS, name)
        return app["status"]["state"] == "RUNNING" and resource is not None and resource["metadata"]["uid"] != first_uid

    await wait_app(api, app_id, restarted, timeout=30, what="the policy's restart")
    assert kube.get(DEPLOYMENTS, NS, name)["spec"]["job"]["initialSavepointPath"] == saved  # type: ignore[index]
    timeline = (await api.get(f"/api/v1/apps/{app_id}/events")).json()
    assert any(e["cause"] == "policy" and "auto-restart 1 of 3" in e["detail"] for e in timeline), timeline


@SQLITE
async def test_restore_latest_finds_the_operators_own_savepoints(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, platform: Platform, tmp_path: Path
) -> None:
    app_id, name = await running_app(api, kube, platform, tmp_path)
    await act(api, app_id, "savepoint")  # ours: recorded by streampilot
    await asyncio.sleep(1.1)  # the operator's own comes later (resultTimestamp has whole seconds)
    periodic = await operator.periodic_savepoint(DEPLOYMENTS, NS, name)  # never seen by streampilot
    await act(api, app_id, "cancel")
    started = await act(api, app_id, "start", {"restore": "latest"})
    assert kube.get(DEPLOYMENTS, NS, name)["spec"]["job"]["initialSavepointPath"] == periodic, started  # type: ignore[index]
