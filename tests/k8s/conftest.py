"""Shared parts of the Kubernetes tests: the Kubernetes API emulator (no real API server can run on
these machines), the operator stand-in, and helpers that register clusters and apps through the API."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.services.platform import Platform
from tests.k8s.operator_sim import OperatorSimulator
from tests.k8s_emulator import KubeEmulator

NS = "flink"
# A stock operator refuses savepoint and last-state upgrades without durable state storage.
STATE_DIR = "s3://flink-state/streampilot"


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    emulator = await KubeEmulator(namespaces=("default", NS)).start()
    yield emulator
    await emulator.stop()


# The operator's own settings as a platform team running streampilot inside the cluster sets them: the
# jars of session jobs come from streampilot over https, at an address on the cluster's network.
OPERATOR_CONFIG = {
    "kubernetes.operator.user.artifacts.allowed-schemes": "https",
    "kubernetes.operator.user.artifacts.disallow-restricted-hosts": "false",
}
ARTIFACT_URL = "https://streampilot.streampilot.svc:8080"


def fetch_from(api: httpx.AsyncClient) -> Callable[[str], Awaitable[bytes]]:
    """The operator's GET of an artifact URL, answered by the platform under test."""

    async def fetch(url: str) -> bytes:
        resp = await api.get(urlparse(url).path, headers={"Authorization": ""})  # the operator sends no token
        resp.raise_for_status()
        return resp.content

    return fetch


@pytest.fixture
async def operator(kube: KubeEmulator, api: httpx.AsyncClient) -> AsyncIterator[OperatorSimulator]:
    sim = OperatorSimulator(kube, operator_config=OPERATOR_CONFIG, fetch=fetch_from(api)).start()
    yield sim
    await sim.stop()


async def add_cluster(
    api: httpx.AsyncClient,
    kube: KubeEmulator,
    tmp_path: Path,
    kind: str = "kubernetes-application",
    name: str = "k8s",
    **options: Any,
) -> int:
    resp = await api.post(
        "/api/v1/clusters",
        json={
            "name": name,
            "kind": kind,
            "options": {
                "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")),
                "namespace": NS,
                "state_dir": STATE_DIR,
                **({"artifact_url": ARTIFACT_URL} if kind == "kubernetes-session" else {}),
                **options,
            },
        },
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


@pytest.fixture
async def k8s_cluster(
    api: httpx.AsyncClient, kube: KubeEmulator, platform: Platform, tmp_path: Path
) -> AsyncIterator[int]:
    cluster = await add_cluster(
        api, kube, tmp_path, image="registry.example.org/flink-jobs:1.0", jobmanager={"cpu": "500m", "memory": "1g"}
    )
    platform.start_loops()
    yield cluster
    await platform.stop_loops()


async def jar_app(
    api: httpx.AsyncClient,
    cluster: int,
    name: str = "on-k8s",
    *,
    jar: bytes | None = None,
    entry_class: str = "example.Job",
    **spec: Any,
) -> int:
    upload = await api.post("/api/v1/jars", files={"file": ("job.jar", jar or tiny_jar())})
    body = {
        "name": name,
        "kind": "jar",
        "cluster_id": cluster,
        "jar_id": upload.json()["id"],
        "entry_class": entry_class,
        "parallelism": 2,
        "checkpointing": {"interval_s": 30},
        "restart_strategy": {"type": "fixed-delay", "attempts": 5, "delay_s": 2},
    }
    resp = await api.post("/api/v1/apps", json={**body, **spec})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def jobmanager(name: str, ready: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"type": "flink-native-kubernetes", "app": name}},
        "spec": {"replicas": 1},
        "status": {"replicas": 1, "readyReplicas": ready},
    }


def tiny_jar() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: example.Job\n")
        zf.writestr("example/Job.class", b"\xca\xfe\xba\xbe")
    return buf.getvalue()
