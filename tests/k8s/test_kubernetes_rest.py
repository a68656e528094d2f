"""Flink's REST API as the third source on Kubernetes: the operator stand-in runs each FlinkDeployment's
job on the real shared Flink cluster, and the cluster's URL template points at that cluster's REST API
(through a fault-injecting proxy). The Kubernetes API itself is the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from streampilot.flink.client import FlinkClient
from streampilot.flink.local import LocalCluster
from streampilot.services.platform import Platform
from tests.faultproxy import FaultProxy
from tests.helpers import events, wait_app, wait_state
from tests.k8s.conftest import add_cluster, jar_app, tiny_jar
from tests.k8s.operator_sim import OperatorSimulator
from tests.k8s_emulator import KubeEmulator

pytestmark = [pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
IMAGE_JAR = "local:///opt/flink/usrlib/job.jar"


@pytest.fixture
async def real_operator(
    kube: KubeEmulator, flink_cluster: LocalCluster, jobs_jar: Path
) -> AsyncIterator[OperatorSimulator]:
    client = FlinkClient(flink_cluster.layout.rest_url, timeout_s=10, submit_timeout_s=60)
    sim = OperatorSimulator(kube, flink=client, jars={IMAGE_JAR: jobs_jar}).start()
    yield sim
    await sim.stop()
    await client.close()


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
    cluster = await add_cluster(api, kube, tmp_path, rest_url_template=proxy.url)
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
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
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

    # Flink's REST API failing is Unknown for that source only: the operator's word keeps the app RUNNING.
    proxy.mode = "error500"
    await asyncio.sleep(platform.settings.tracking.lost_after_s + 1)
    app = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert app["status"]["state"] == "RUNNING" and app["status"]["unconfirmed_since"] is None
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
                    "rest_url_template": template,
                },
            },
        )
        assert resp.status_code == 422, resp.text
        problem = resp.json()["detail"][0]
        assert problem["field"] == "options.rest_url_template" and words in problem["message"]
