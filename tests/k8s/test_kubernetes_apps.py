"""Applications on Kubernetes (application mode) against the Kubernetes API emulator, driven by an
operator stand-in. No real API server can run here: this is the emulator, said plainly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.domain.k8s import DEPLOYMENTS, SNAPSHOTS
from streampilot.services.platform import Platform
from tests.helpers import act, console_login, events, wait_app, wait_state
from tests.k8s.conftest import ARTIFACT_URL, NS, STATE_DIR, add_cluster, jar_app, jobmanager, tiny_jar
from tests.k8s.operator_sim import OperatorSimulator, jobmanager_pod
from tests.k8s_emulator import KubeEmulator

pytestmark = [pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


async def test_bad_kubernetes_settings_are_field_errors(
    api: httpx.AsyncClient, kube: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig = str(kube.kubeconfig(tmp_path / "kubeconfig"))

    async def problem(options: dict[str, Any]) -> str:
        resp = await api.post(
            "/api/v1/clusters", json={"name": "k", "kind": "kubernetes-application", "options": options}
        )
        assert resp.status_code == 422, resp.text
        return str(resp.json()["detail"][0]["field"])

    state = {"state_dir": STATE_DIR}
    assert await problem({"kubeconfig": str(tmp_path / "missing"), **state}) == "options.kubeconfig"
    assert await problem({"kubeconfig": kubeconfig, "namespace": "nowhere", **state}) == "options.namespace"
    assert await problem({"kubeconfig": kubeconfig, "image": "Not An Image!", **state}) == "options.image"
    memory = {"kubeconfig": kubeconfig, "taskmanager": {"memory": "lots"}, **state}
    assert await problem(memory) == "options.taskmanager.memory"
    # What a stock operator would refuse is refused here, before anything is stored or created:
    # no state storage for the default upgrade mode (savepoint) ...
    assert await problem({"kubeconfig": kubeconfig}) == "options.state_dir"
    assert await problem({"kubeconfig": kubeconfig, "state_dir": "/not/a/uri"}) == "options.state_dir"
    only_checkpoints = {"execution.checkpointing.dir": "s3://b/chk"}
    assert await problem({"kubeconfig": kubeconfig, "flink_configuration": only_checkpoints}) == "options.state_dir"
    # ... and a flinkVersion outside the operator's enum (or one it no longer supports).
    assert await problem({"kubeconfig": kubeconfig, "flink_version": "v9_9", **state}) == "options.flink_version"
    assert await problem({"kubeconfig": kubeconfig, "flink_version": "1.14", **state}) == "options.flink_version"
    assert (await api.get("/api/v1/clusters")).json() == []


async def test_deploy_run_savepoint_stop_restore_cancel(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int
) -> None:
    app_id = await jar_app(api, k8s_cluster)
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    app = await wait_state(api, app_id, "RUNNING")
    name = app["status"]["job_id"]
    resource = kube.get(DEPLOYMENTS, NS, name)
    assert resource is not None
    spec = resource["spec"]
    assert spec["image"] == "registry.example.org/flink-jobs:1.0"
    assert spec["jobManager"]["resource"] == {"cpu": 0.5, "memory": "1g"}
    assert spec["job"]["entryClass"] == "example.Job" and spec["job"]["parallelism"] == 2
    assert spec["flinkConfiguration"]["restart-strategy.type"] == "fixed-delay"
    assert spec["flinkConfiguration"]["execution.checkpointing.interval"] == "30000 ms"

    # The operator keeps snapshots as FlinkStateSnapshot resources (its default where the CRD exists):
    # a savepoint is one of those, and the job's status records none.
    saved = await act(api, app_id, "savepoint")
    snapshots = [o for (p, _, _), o in kube.objects.items() if p == SNAPSHOTS]
    assert [(o["spec"]["jobReference"], o["status"]["state"]) for o in snapshots] == [
        ({"kind": "FlinkDeployment", "name": name}, "COMPLETED")
    ]
    assert saved["result"]["path"] == snapshots[0]["status"]["path"]
    assert saved["result"]["path"].startswith(f"{STATE_DIR}/savepoints/")
    assert "savepointInfo" not in kube.get(DEPLOYMENTS, NS, name)["status"]["jobStatus"]  # type: ignore[index]

    stopped = await act(api, app_id, "stop", {"savepoint": True})
    assert stopped["result"]["state"] == "FINISHED"
    stop_savepoint = (await api.get(f"/api/v1/apps/{app_id}/savepoints")).json()[0]["path"]
    assert "savepoint-stop" in stop_savepoint
    assert kube.get(DEPLOYMENTS, NS, name)["status"]["jobStatus"]["upgradeSavepointPath"] == stop_savepoint  # type: ignore[index]

    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "latest"})).status_code == 202
    await wait_state(api, app_id, "RUNNING")
    assert kube.get(DEPLOYMENTS, NS, name)["spec"]["job"]["initialSavepointPath"] == stop_savepoint  # type: ignore[index]

    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"
    changes = [(e["from_state"], e["to_state"]) for e in await events(api, app_id) if e["from_state"] != e["to_state"]]
    assert ("STOPPING", "FINISHED") in changes and changes[-1] == ("STOPPING", "CANCELED")


async def test_api_server_trouble_while_the_jobmanager_restarts_never_shows_failed(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int, platform: Platform
) -> None:
    app_id = await jar_app(api, k8s_cluster)
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    lost_after = platform.settings.tracking.lost_after_s
    pods = await wait_app(api, app_id, lambda a: bool(a["status"]["jobmanager_pods"]), what="JobManager pods")
    assert pods["status"]["jobmanager_pods"] == {f"{name}-jm-1": 0}

    kube.fault = "500"  # the API server answers 500s ...
    await kube.cut_watches()
    await wait_app(
        api,
        app_id,
        lambda a: a["status"]["unconfirmed_since"] is not None,
        timeout=lost_after,
        what="unconfirmed during API trouble",
    )
    operator.paused = True  # ... while the JobManager pod restarts: its Deployment has no ready pod
    await kube.put("deployments", NS, jobmanager(name, ready=0))
    await kube.put("pods", NS, jobmanager_pod(name, f"{name}-jm-1", restarts=1, ready=False))
    kube.fault = "hang"  # ... and then times out
    await asyncio.sleep(lost_after / 4)
    kube.fault = None
    app = await wait_app(
        api, app_id, lambda a: a["status"]["unconfirmed_since"] is None, timeout=lost_after, what="confirmed again"
    )
    assert app["status"]["state"] == "RESTARTING"  # the JobManager is not ready yet: not FAILED, not RUNNING
    await kube.put("deployments", NS, jobmanager(name, ready=1))
    operator.paused = False
    await wait_state(api, app_id, "RUNNING")
    timeline = await events(api, app_id)
    states = [e["to_state"] for e in timeline]
    assert "FAILED" not in states and "LOST" not in states
    changes = [(e["from_state"], e["to_state"]) for e in timeline if e["from_state"] != e["to_state"]]
    assert changes[-2:] == [("RUNNING", "RESTARTING"), ("RESTARTING", "RUNNING")]
    assert "JobManager not ready (0/1 pods ready)" in next(
        e["detail"] for e in timeline if e["to_state"] == "RESTARTING"
    )
    assert f"JobManager pod {name}-jm-1 restarted (1 restarts in all)" in [e["detail"] for e in timeline]
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["jobmanager_pods"] == {f"{name}-jm-1": 1}
    # The console's page of a Kubernetes app: its pods, and why there are no live Flink figures.
    cookie, _ = await console_login(api)
    page = await api.get(f"/apps/{app_id}", headers=cookie)
    assert page.status_code == 200, page.text
    assert f"{name}-jm-1</span> (1 restart)" in page.text
    assert "set the cluster&#39;s options.rest_url_template" in page.text


async def test_failed_then_running_again_and_deleted_resource(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int
) -> None:
    app_id = await jar_app(api, k8s_cluster)
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    operator.paused = True
    await kube.set_status(DEPLOYMENTS, NS, name, {"jobStatus": {"state": "FAILED"}})
    await wait_state(api, app_id, "FAILED")
    await kube.set_status(DEPLOYMENTS, NS, name, {"jobStatus": {"state": "RUNNING"}})  # HA recovery
    await wait_state(api, app_id, "RUNNING")

    await kube.remove("deployments", NS, name)  # the JobManager's Deployment vanishes: restarting, not gone
    await wait_state(api, app_id, "RESTARTING")
    await kube.put("deployments", NS, jobmanager(name, ready=1))
    await wait_state(api, app_id, "RUNNING")

    await kube.remove(DEPLOYMENTS, NS, name)  # the FlinkDeployment itself positively deleted
    app = await wait_state(api, app_id, "LOST")
    detail = [e["detail"] for e in await events(api, app_id) if e["to_state"] == "LOST"][-1]
    assert "no longer has the job" in detail
    assert app["status"]["unconfirmed_since"] is None


async def test_session_cluster_runs_apps_as_session_jobs(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, platform: Platform, tmp_path: Path
) -> None:
    kubeconfig = str(kube.kubeconfig(tmp_path / "kubeconfig"))
    missing = await api.post(
        "/api/v1/clusters",
        json={
            "name": "s",
            "kind": "kubernetes-session",
            "options": {"kubeconfig": kubeconfig, "namespace": NS, "state_dir": STATE_DIR},
        },
    )
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "options.session_name"
    options = {
        "kubeconfig": kubeconfig,
        "namespace": NS,
        "session_name": "shared-session",
        "upgrade_mode": "stateless",  # no state storage needed then
    }
    no_artifacts = await api.post(
        "/api/v1/clusters", json={"name": "session", "kind": "kubernetes-session", "options": options}
    )
    assert no_artifacts.status_code == 422 and no_artifacts.json()["detail"][0]["field"] == "options.artifact_url"
    resp = await api.post(
        "/api/v1/clusters",
        json={"name": "session", "kind": "kubernetes-session", "options": {**options, "artifact_url": ARTIFACT_URL}},
    )
    assert resp.status_code == 201, resp.text
    platform.start_loops()
    jar = tiny_jar()
    app_id = await jar_app(api, resp.json()["id"], "session-app", jar=jar)
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    job = kube.get("flinksessionjobs", NS, name)
    assert job is not None and job["spec"]["deploymentName"] == "shared-session"
    assert kube.get(DEPLOYMENTS, NS, name) is None  # no cluster of its own
    # The operator fetched the uploaded jar itself, from the signed URL in the session job.
    uri = job["spec"]["job"]["jarURI"]
    assert uri.startswith(f"{ARTIFACT_URL}/artifacts/") and operator.fetched[uri] == jar
    digest, signature, _ = urlparse(uri).path.split("/")[2:]
    forged = f"/artifacts/{digest}/{'0' * len(signature)}/job.jar"
    assert (await api.get(forged, headers={"Authorization": ""})).status_code == 404  # a URL opens one file only
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"


async def test_session_cluster_started_and_stopped_by_the_platform(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, platform: Platform, tmp_path: Path
) -> None:
    cluster = await add_cluster(
        api,
        kube,
        tmp_path,
        kind="kubernetes-session",
        session_name="team-session",
        flink_configuration={"taskmanager.numberOfTaskSlots": "4"},
    )
    platform.start_loops()
    started = await api.post(f"/api/v1/clusters/{cluster}/start")
    assert started.status_code == 200, started.text
    assert started.json()["runtime"]["session"] == "READY"
    session = kube.get(DEPLOYMENTS, NS, "team-session")
    assert session is not None and "job" not in session["spec"]
    assert session["spec"]["flinkConfiguration"] == {
        "taskmanager.numberOfTaskSlots": "4",
        "execution.checkpointing.dir": f"{STATE_DIR}/checkpoints",
        "execution.checkpointing.savepoint-dir": f"{STATE_DIR}/savepoints",
    }

    app_id = await jar_app(api, cluster, "on-the-session")
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    await wait_state(api, app_id, "RUNNING")
    refused = await api.post(f"/api/v1/clusters/{cluster}/stop")
    assert refused.status_code == 409 and "still runs 1 application" in refused.text
    assert kube.get(DEPLOYMENTS, NS, "team-session") is not None
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"
    assert (await api.post(f"/api/v1/clusters/{cluster}/stop")).status_code == 200
    assert kube.get(DEPLOYMENTS, NS, "team-session") is None


async def test_a_session_made_elsewhere_is_used_but_never_deleted(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, tmp_path: Path
) -> None:
    await kube.put(
        DEPLOYMENTS,
        NS,
        {"metadata": {"name": "platform-team"}, "spec": {}, "status": {"jobManagerDeploymentStatus": "READY"}},
    )
    cluster = await add_cluster(api, kube, tmp_path, kind="kubernetes-session", session_name="platform-team")
    assert (await api.post(f"/api/v1/clusters/{cluster}/start")).status_code == 200
    refused = await api.post(f"/api/v1/clusters/{cluster}/stop")
    assert refused.status_code == 409 and "kubectl delete flinkdeployment platform-team" in refused.text
    assert kube.get(DEPLOYMENTS, NS, "platform-team") is not None


async def test_upgrade_applies_a_new_version_through_the_operator(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int
) -> None:
    app_id = await jar_app(api, k8s_cluster, args=["--rate", "10"], properties={"pipeline.max-parallelism": "64"})
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    same = await api.post(f"/api/v1/apps/{app_id}/upgrade", json={})
    assert same.status_code == 409 and "already runs version 1" in same.text

    edited = await api.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 3, "args": [], "properties": {}})
    assert edited.status_code == 200, edited.text
    upgraded = await act(api, app_id, "upgrade", {})
    assert upgraded["result"]["version"] == 2
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["running_version"] == 2
    app = await wait_state(api, app_id, "RUNNING")
    assert app["status"]["job_id"] == name  # the same resource, upgraded in place
    spec = kube.get(DEPLOYMENTS, NS, name)["spec"]  # type: ignore[index]
    assert spec["job"]["parallelism"] == 3 and spec["job"]["upgradeMode"] == "savepoint"
    assert spec["job"]["args"] == [] and "pipeline.max-parallelism" not in spec["flinkConfiguration"]
    savepoints = (await api.get(f"/api/v1/apps/{app_id}/savepoints")).json()
    assert savepoints[0]["trigger"] == "upgrade" and "savepoint-upgrade" in savepoints[0]["path"]
    timeline = await events(api, app_id)
    changes = [(e["from_state"], e["to_state"]) for e in timeline if e["from_state"] != e["to_state"]]
    assert changes[-2:] == [("RUNNING", "RESTARTING"), ("RESTARTING", "RUNNING")]
    assert "FINISHED" not in [e["to_state"] for e in timeline]  # the suspend for the upgrade is not an end
    assert any("upgrade from version 1 to 2 requested" in e["detail"] for e in timeline)
    assert any("savepoint-upgrade" in s["text"] for s in upgraded["steps"])


async def test_a_jar_app_may_run_a_jar_from_the_image_without_uploading_it(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int
) -> None:
    missing = await api.post("/api/v1/apps", json={"name": "no-jar", "kind": "jar", "cluster_id": k8s_cluster})
    assert missing.status_code == 422 and "kubernetes.jar-uri" in missing.json()["detail"][0]["message"]
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "image-jar",
            "kind": "jar",
            "cluster_id": k8s_cluster,
            "entry_class": "com.example.Orders",
            "properties": {"kubernetes.jar-uri": "local:///opt/flink/usrlib/orders-3.1.jar"},
        },
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    spec = kube.get(DEPLOYMENTS, NS, name)["spec"]  # type: ignore[index]
    assert spec["job"]["jarURI"] == "local:///opt/flink/usrlib/orders-3.1.jar"
    assert "kubernetes.jar-uri" not in spec["flinkConfiguration"]  # ours, not Flink's


async def test_a_pyflink_apps_files_and_requirements_ride_in_its_config_map(
    api: httpx.AsyncClient, kube: KubeEmulator, operator: OperatorSimulator, k8s_cluster: int
) -> None:
    body = {
        "name": "py-reqs",
        "kind": "python",
        "cluster_id": k8s_cluster,
        "python": "import helpers.text\n",
        "python_files": {"helpers/__init__.py": "", "helpers/text.py": "X = 1\n"},
        "python_requirements": ["requests==2.32.3", "  pyyaml>=6 "],
    }
    huge = await api.post("/api/v1/apps", json={**body, "python_files": {"big.py": "#" * (1024 * 1024)}})
    assert huge.status_code == 422 and huge.json()["detail"][0]["field"] == "python_files", huge.text
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    await act(api, app_id, "start", {})
    name = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    config_map = kube.get("configmaps", NS, f"{name}-script")
    assert config_map is not None
    assert config_map["data"]["requirements.txt"] == "requests==2.32.3\npyyaml>=6\n"
    spec = kube.get(DEPLOYMENTS, NS, name)["spec"]  # type: ignore[index]
    assert spec["flinkConfiguration"]["python.requirements"] == "/opt/streampilot/app/requirements.txt"
    items = {
        i["path"]: config_map["data"][i["key"]]
        for i in spec["podTemplate"]["spec"]["volumes"][-1]["configMap"]["items"]
    }
    assert items == {
        "main.py": "import helpers.text\n",
        "helpers/__init__.py": "",
        "helpers/text.py": "X = 1\n",
        "requirements.txt": "requests==2.32.3\npyyaml>=6\n",
    }
