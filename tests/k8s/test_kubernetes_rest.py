"""Flink's REST API as the third source on Kubernetes: the operator stand-in runs each FlinkDeployment's
(and FlinkSessionJob's) job on the real shared Flink cluster, and the cluster's URL template points at
that cluster's REST API (through a fault-injecting proxy). The Kubernetes API itself is the emulator."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.domain.k8s import resource_name
from streampilot.flink.client import FlinkClient
from streampilot.flink.homes import inspect_home
from streampilot.flink.local import LocalCluster
from streampilot.services.platform import Platform
from tests.e2e.test_dependencies import PYFLINK_SHOUT, PYFLINK_WITH_FILES, shout_sql
from tests.faultproxy import FaultProxy
from tests.helpers import DATAGEN_SQL, act, events, wait_app, wait_state, written_rows
from tests.k8s.conftest import OPERATOR_CONFIG, STATE_DIR, add_cluster, fetch_from, jar_app, tiny_jar
from tests.k8s.operator_sim import OperatorSimulator
from tests.k8s_emulator import KubeEmulator

pytestmark = [pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
IMAGE_JAR = "local:///opt/flink/usrlib/job.jar"
SQL_RUNNER = "local:///opt/flink/usrlib/streampilot-sql-runner.jar"
PYTHON_JAR = "local:///opt/flink/opt/flink-python-2.3.0.jar"


@pytest.fixture
async def real_operator(
    api: httpx.AsyncClient, kube: KubeEmulator, flink_cluster: LocalCluster, jobs_jar: Path, tmp_path: Path
) -> AsyncIterator[OperatorSimulator]:
    """The operator stand-in running jobs on the real shared cluster: the image's jars are ours, and
    jars it (or the JobManager) fetches come from the platform under test."""
    client = FlinkClient(flink_cluster.layout.rest_url, timeout_s=10, submit_timeout_s=60)
    home = inspect_home(flink_cluster.layout.home.path)
    assert home.python_jar is not None
    jars = {IMAGE_JAR: jobs_jar, PYTHON_JAR: home.python_jar}
    sim = OperatorSimulator(
        kube,
        flink=client,
        jars=jars,
        mount_root=tmp_path / "mounts",
        operator_config=OPERATOR_CONFIG,
        fetch=fetch_from(api),
    ).start()
    yield sim
    await sim.stop()
    await client.close()


async def real_cluster(
    api: httpx.AsyncClient, kube: KubeEmulator, tmp_path: Path, flink_cluster: LocalCluster, **options: Any
) -> int:
    """A Kubernetes cluster whose jobs the stand-in runs on the real one: its REST API, our Python as the
    image's, state on the local disk."""
    defaults = {
        "rest_url_template": flink_cluster.layout.rest_url,
        "python_executable": sys.executable,
        "state_dir": f"file://{tmp_path}/state",
    }
    return await add_cluster(api, kube, tmp_path, **{**defaults, **options})


async def test_rest_api_refines_the_operator_status_and_verifies_settings(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    proxy: FaultProxy,
    platform: Platform,
    flink_cluster: LocalCluster,
    jobs_jar: Path,
    tmp_path: Path,
) -> None:
    cluster = await add_cluster(api, kube, tmp_path, rest_url_template=proxy.url, state_dir=f"file://{tmp_path}/state")
    platform.start_loops()
    app_id = await jar_app(
        api,
        cluster,
        jar=jobs_jar.read_bytes(),
        entry_class="example.TinyJob",
        parallelism=2,
        restart_strategy={"type": "fixed-delay", "attempts": 7, "delay_s": 3},
        checkpointing={"interval_s": 1},
        checkpoint_failure_policy={"failures": 3, "window_s": 60, "action": "alert"},
    )
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    app = await wait_state(api, app_id, "RUNNING")
    assert app["status"]["tasks_total"] == 2  # Flink's own task counts, not the operator's "RUNNING"
    name = app["status"]["job_id"]
    flink_job = real_operator.flink_jobs[("flinkdeployments", "flink", name)]

    # The settings reached Flink and were read back from it, through the URL template.
    app = await wait_app(api, app_id, lambda a: a["status"]["config_verified"] is not None, what="readback")
    assert app["status"]["config_verified"] is True, app["status"]
    readback = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()["readback"]
    assert "7" in str(readback["restart_strategy"]), readback  # the sentence Flink wrote names our 7 attempts
    app = await wait_app(
        api, app_id, lambda a: (a["status"]["last_checkpoint"] or {}).get("completed", 0) >= 1, what="checkpoints"
    )

    # Flink's REST API failing is Unknown for that source only: the operator's word keeps the app RUNNING,
    # and a hanging REST API never holds up the observation (it gets at most a tick).
    for mode in ("error500", "hang"):
        proxy.mode = mode
        await asyncio.sleep(platform.settings.tracking.lost_after_s + 1)
        app = (await api.get(f"/api/v1/apps/{app_id}")).json()
        assert app["status"]["state"] == "RUNNING" and app["status"]["unconfirmed_since"] is None, mode
        observed = datetime.fromisoformat(app["status"]["observed_at"])
        assert datetime.now(UTC) - observed.replace(tzinfo=observed.tzinfo or UTC) < timedelta(seconds=3), mode
    proxy.mode = "ok"

    # The job ends behind the operator's back: Flink's answer is fresher than the resource's status.
    real_operator.paused = True
    flink = FlinkClient(flink_cluster.layout.rest_url, timeout_s=10)
    await flink.cancel(flink_job)
    await flink.close()
    await wait_state(api, app_id, "CANCELED")
    detail = [e["detail"] for e in await events(api, app_id) if e["to_state"] == "CANCELED"][-1]
    assert f"Flink's REST API reports job {flink_job} CANCELED" in detail


async def test_checkpoint_policies_on_kubernetes_need_the_rest_api(
    api: httpx.AsyncClient, kube: KubeEmulator, tmp_path: Path
) -> None:
    cluster = await add_cluster(api, kube, tmp_path)
    upload = await api.post("/api/v1/jars", files={"file": ("job.jar", tiny_jar())})
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "no-rest",
            "kind": "jar",
            "cluster_id": cluster,
            "jar_id": upload.json()["id"],
            "checkpointing": {"interval_s": 10},
            "checkpoint_failure_policy": {"failures": 2, "window_s": 300, "action": "restart"},
        },
    )
    assert resp.status_code == 422, resp.text
    fields = {p["field"]: p["message"] for p in resp.json()["detail"]}
    assert "rest_url_template" in fields["checkpoint_failure_policy"]


async def test_rest_url_template_is_checked(api: httpx.AsyncClient, kube: KubeEmulator, tmp_path: Path) -> None:
    for template, words in [("ftp://{name}:8081", "http://"), ("http://{app}-rest:8081", "{app}")]:
        resp = await api.post(
            "/api/v1/clusters",
            json={
                "name": "k",
                "kind": "kubernetes-application",
                "options": {
                    "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")),
                    "namespace": "flink",
                    "state_dir": STATE_DIR,
                    "rest_url_template": template,
                },
            },
        )
        assert resp.status_code == 422, resp.text
        problem = resp.json()["detail"][0]
        assert problem["field"] == "options.rest_url_template" and words in problem["message"]


async def test_sql_app_runs_on_kubernetes_with_the_runner_jar_from_the_cli(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    flink_cluster: LocalCluster,
    platform: Platform,
    tmp_path: Path,
) -> None:
    # The jar a user bakes into the image: built by `streampilot sql-runner-jar`.
    runner = tmp_path / "image" / "streampilot-sql-runner.jar"
    runner.parent.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streampilot",
        "sql-runner-jar",
        str(runner),
        env={**os.environ, "STREAMPILOT_HOME": str(tmp_path / "cli-home")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, out.decode()
    assert b"SQL runner for Flink 2.3.0 written to" in out
    real_operator.jars[SQL_RUNNER] = runner

    cluster = await real_cluster(api, kube, tmp_path, flink_cluster)
    platform.start_loops()
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "sql-on-k8s",
            "kind": "sql",
            "cluster_id": cluster,
            "sql": DATAGEN_SQL,
            "checkpointing": {"interval_s": 2},
            "restart_strategy": {"type": "fixed-delay", "attempts": 4, "delay_s": 1},
        },
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    app = await wait_state(api, app_id, "RUNNING")
    job = kube.get("flinkdeployments", "flink", app["status"]["job_id"])["spec"]["job"]  # type: ignore[index]
    assert job["jarURI"] == SQL_RUNNER and job["entryClass"] == "io.streampilot.StreampilotSqlRunner"
    statements = [base64.b64decode(a).decode() for a in job["args"]]
    assert statements[-1].startswith("dml:INSERT INTO snk")
    app = await wait_app(api, app_id, lambda a: a["status"]["config_verified"] is not None, what="readback")
    assert app["status"]["config_verified"] is True, app["status"]
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"


async def test_pyflink_app_runs_on_kubernetes_with_its_script_in_a_config_map(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    flink_cluster: LocalCluster,
    platform: Platform,
    tmp_path: Path,
) -> None:
    script = (Path(__file__).parents[1] / "e2e" / "jobs" / "tiny_pyflink.py").read_text()
    # The image's Python (here: ours, which has apache-flink) runs the script.
    cluster = await real_cluster(api, kube, tmp_path, flink_cluster)
    platform.start_loops()
    resp = await api.post(
        "/api/v1/apps",
        json={"name": "py-on-k8s", "kind": "python", "cluster_id": cluster, "python": script, "parallelism": 1},
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    await act(api, app_id, "start", {})  # its operation has ended, not only the job running
    app = await wait_state(api, app_id, "RUNNING", timeout=120)
    name = app["status"]["job_id"]
    deployment = kube.get("flinkdeployments", "flink", name)
    assert deployment is not None
    job = deployment["spec"]["job"]
    assert job["jarURI"] == PYTHON_JAR and job["args"][:2] == ["-py", "/opt/streampilot/app/main.py"]
    assert deployment["spec"]["flinkConfiguration"]["python.executable"] == sys.executable
    config_map = kube.get("configmaps", "flink", f"{name}-script")
    assert config_map is not None and config_map["data"]["main.py"] == script
    owner = config_map["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "FlinkDeployment" and owner["uid"] == deployment["metadata"]["uid"]
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"
    await kube.remove("flinkdeployments", "flink", name)
    assert kube.get("configmaps", "flink", f"{name}-script") is None  # garbage-collected with its owner


async def test_pyflink_needs_application_mode(api: httpx.AsyncClient, kube: KubeEmulator, tmp_path: Path) -> None:
    cluster = await add_cluster(api, kube, tmp_path, kind="kubernetes-session", session_name="shared")
    resp = await api.post(
        "/api/v1/apps",
        json={"name": "py", "kind": "python", "cluster_id": cluster, "python": "print('hi')\n"},
    )
    assert resp.status_code == 422, resp.text
    problem = resp.json()["detail"][0]
    assert problem["field"] == "kind" and "kubernetes-application" in problem["message"]


@pytest.mark.parametrize("kind", ["kubernetes-session", "kubernetes-application"])
async def test_a_sql_app_with_a_udf_jar_runs_from_the_artifact_streampilot_serves(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    platform: Platform,
    flink_cluster: LocalCluster,
    udf_jar: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    """Session mode: the operator fetches the jar; application mode (Flink 1.19+): the JobManager does.
    Either way neither the SQL runner nor the UDF needs to be in the image."""
    session = {"session_name": "team"} if kind == "kubernetes-session" else {}
    cluster = await real_cluster(
        api, kube, tmp_path, flink_cluster, kind=kind, artifact_url="https://streampilot.flink.svc", **session
    )
    platform.start_loops()
    if session:
        assert (await api.post(f"/api/v1/clusters/{cluster}/start")).status_code == 200
    upload = await api.post("/api/v1/jars", files={"file": ("shout-udf.jar", udf_jar.read_bytes())})
    out = tmp_path / "out"
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "shout-on-k8s",
            "kind": "sql",
            "cluster_id": cluster,
            "runtime_mode": "batch",
            "dependency_jar_ids": [upload.json()["id"]],
            "sql": shout_sql(out, "CREATE FUNCTION shout AS 'io.streampilot.testudf.Shout';"),
        },
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "FINISHED", timeout=120)
    job = kube.get("flinksessionjobs" if session else "flinkdeployments", "flink", resource_name(app_id))
    assert job is not None
    uri = job["spec"]["job"]["jarURI"]
    with zipfile.ZipFile(io.BytesIO(real_operator.fetched[uri])) as fetched:  # the SQL runner, the UDF nested
        nested = [fetched.read(n) for n in fetched.namelist() if n.startswith("lib/") and n.endswith(".jar")]
    assert nested == [udf_jar.read_bytes()]
    rows = written_rows(out)
    assert len(rows) == 5 and all(r.endswith("!") and r[:-1] == r[:-1].upper() for r in rows), rows


PYFLINK_FILES_ONLY = PYFLINK_WITH_FILES.replace(
    "    import spgreet  # installed for the workers from python_requirements\n", ""
).replace("spgreet.greet(shout(s))", "'hi-' + shout(s)")


async def test_a_pyflink_app_brings_its_python_files_to_kubernetes(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    flink_cluster: LocalCluster,
    platform: Platform,
    tmp_path: Path,
) -> None:
    cluster = await real_cluster(api, kube, tmp_path, flink_cluster)
    platform.start_loops()
    out = tmp_path / "out"
    files = {"helpers/__init__.py": "", "helpers/text.py": "def shout(s):\n    return s.upper() + '!'\n"}
    body = {
        "name": "py-files-on-k8s",
        "kind": "python",
        "cluster_id": cluster,
        "python": PYFLINK_FILES_ONLY,
        "args": [out.as_uri()],
        "python_files": files,
        "parallelism": 1,
    }
    refused = await api.post("/api/v1/apps", json={**body, "python_wheel_dir": str(tmp_path)})
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "python_wheel_dir", refused.text
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "FINISHED", timeout=180)
    deployment = kube.get("flinkdeployments", "flink", resource_name(app_id))
    assert deployment is not None and deployment["spec"]["flinkConfiguration"]["python.files"] == "/opt/streampilot/app"
    volume = next(v for v in deployment["spec"]["podTemplate"]["spec"]["volumes"] if "configMap" in v)
    placed = sorted(i["path"] for i in volume["configMap"]["items"])
    assert placed == ["helpers/__init__.py", "helpers/text.py", "main.py"]
    rows = written_rows(out)
    assert len(rows) == 5 and all(r.startswith("hi-") and r.endswith("!") for r in rows), rows  # on the workers


async def test_a_pyflink_app_with_a_java_udf_jar_runs_in_application_mode(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    real_operator: OperatorSimulator,
    flink_cluster: LocalCluster,
    platform: Platform,
    udf_jar: Path,
    tmp_path: Path,
) -> None:
    """Its jarURI is the platform's flink-python jar with the UDF jar nested, fetched by the JobManager."""
    cluster = await real_cluster(api, kube, tmp_path, flink_cluster, artifact_url="https://streampilot.flink.svc")
    platform.start_loops()
    upload = await api.post("/api/v1/jars", files={"file": ("shout-udf.jar", udf_jar.read_bytes())})
    out = tmp_path / "out"
    body = {
        "name": "py-udf-on-k8s",
        "kind": "python",
        "cluster_id": cluster,
        "python": PYFLINK_SHOUT,
        "args": [out.as_uri()],
        "dependency_jar_ids": [upload.json()["id"]],
        "parallelism": 1,
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    await wait_state(api, app_id, "FINISHED", timeout=180)
    uri = kube.get("flinkdeployments", "flink", resource_name(app_id))["spec"]["job"]["jarURI"]  # type: ignore[index]
    assert uri.startswith("https://streampilot.flink.svc/artifacts/") and uri in real_operator.fetched
    rows = written_rows(out)
    assert len(rows) == 5 and all(r.endswith("!") for r in rows), rows
