"""The list+watch cache against the Kubernetes API emulator: cut streams and 410 Gone lose nothing;
API errors make the cache stale (Unknown), never empty."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from streampilot.domain.k8s import DEPLOYMENTS
from streampilot.targets.kubernetes.client import KubeApi, KubeConfigError, KubeRejected
from streampilot.targets.kubernetes.watch import ResourceCache
from tests.k8s_emulator import KubeEmulator


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    emulator = await KubeEmulator().start()
    yield emulator
    await emulator.stop()


def resource(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "labels": {"managed-by": "streampilot"}},
        "spec": {"job": {"state": "running"}},
    }


async def until(cond: Any, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_cut_streams_and_410_lose_no_change(kube: KubeEmulator, tmp_path: Path) -> None:
    config = str(kube.kubeconfig(tmp_path / "kubeconfig"))
    api = await KubeApi.connect(config)
    await api.create(DEPLOYMENTS, "flink", resource("a"))
    cache = ResourceCache(lambda: KubeApi.connect(config), DEPLOYMENTS, "flink", backoff_s=0.05, watch_timeout_s=5)
    cache.start()
    try:
        assert await cache.wait_synced(10)
        assert set(cache.items) == {"a"}

        # A stream cut in the middle: the cache resumes from the last version it saw.
        await kube.cut_watches()
        await kube.set_status(DEPLOYMENTS, "flink", "a", {"jobStatus": {"state": "RUNNING"}})
        await api.create(DEPLOYMENTS, "flink", resource("b"))
        await until(lambda: "b" in cache.items and cache.items["a"].get("status"))
        assert cache.relists == 1

        # History compacted while the watch is down: 410 Gone, relist, and the deletion in the gap is seen.
        kube.fault = "500"
        await kube.cut_watches()
        await until(lambda: not cache.in_step)
        assert isinstance(cache.snapshot(), str)  # stale: Unknown, not "no resources"
        await kube.remove(DEPLOYMENTS, "flink", "a")
        kube.compact()
        kube.fault = None
        await until(lambda: cache.in_step and "a" not in cache.items)
        assert cache.relists == 2 and set(cache.items) == {"b"}
    finally:
        await cache.stop()
        await api.close()


async def test_connection_settings_are_checked(kube: KubeEmulator, tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="does not exist"):
        await KubeApi.connect(str(tmp_path / "missing"))
    broken = tmp_path / "broken"
    broken.write_text("this: [is not a kubeconfig")
    with pytest.raises(KubeConfigError):
        await KubeApi.connect(str(broken))
    api = await KubeApi.connect(str(kube.kubeconfig(tmp_path / "ok")))
    assert await api.namespace_exists("flink") and not await api.namespace_exists("nope")
    await api.close()


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A pod's view of its service account: token and CA files, and the API server's address in env."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    key, cert = tmp_path / "key.pem", account / "ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (account / "token").write_text("pod-token")
    monkeypatch.setenv("STREAMPILOT_K8S_SERVICE_ACCOUNT_DIR", str(account))
    return cert, key


async def test_in_cluster_service_account_connects_over_tls_with_its_token(
    service_account: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="no in-cluster service account usable"):
        await KubeApi.connect(None)  # not in a pod: a clear error, not a crash

    kube = await KubeEmulator(namespaces=("flink",), tls=service_account, token="pod-token").start()
    try:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
        api = await KubeApi.connect(None)
        try:
            assert await api.namespace_exists("flink")  # HTTPS checked against the pod's CA, token sent
            assert not await api.namespace_exists("nowhere")
        finally:
            await api.close()
        (service_account[0].parent / "token").write_text("rotated-elsewhere")
        api = await KubeApi.connect(None)
        try:
            with pytest.raises(KubeRejected, match="401"):
                await api.namespace_exists("flink")  # a wrong token is refused, never read as "absent"
        finally:
            await api.close()
    finally:
        await kube.stop()


async def test_a_rotated_service_account_token_is_read_again(
    service_account: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = await KubeEmulator(namespaces=("flink",), tls=service_account, token="pod-token").start()
    try:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
        api = await KubeApi.connect(None)
        try:
            assert await api.namespace_exists("flink")
            # The kubelet rotates the projected token: the API server takes only the new one.
            kube.token = "pod-token-2"
            (service_account[0].parent / "token").write_text("pod-token-2")
            assert await api.namespace_exists("flink")  # same connection: read again after the 401
            assert kube.unauthorized == 1 and api.reconnects == 1  # a new connection, the new token
        finally:
            await api.close()
    finally:
        await kube.stop()
