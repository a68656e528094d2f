"""The platform's shared parts, built once at start-up and handed to every service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from streampilot.domain.throttle import LoginThrottle
from streampilot.flink.client import FlinkClient
from streampilot.flink.homes import HomeInfo
from streampilot.flink.launch import JarUploads, RunnerBuilder
from streampilot.services.artifacts import ArtifactStore
from streampilot.services.metrics import PlatformMetrics
from streampilot.services.secrets import SecretBox
from streampilot.settings import Settings
from streampilot.store.orm import Cluster
from streampilot.targets.kubernetes.observer import KubernetesClusters
from streampilot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from streampilot.services.leases import LeaseKeeper


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    runners: RunnerBuilder
    uploads: JarUploads = field(default_factory=JarUploads)
    k8s: KubernetesClusters = field(default_factory=KubernetesClusters)
    homes: dict[str, HomeInfo] = field(default_factory=dict)  # inspected Flink homes by path
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # Extra kinds of Target by cluster kind (tests register the fake one); see services/targets.py.
    target_factories: dict[str, Any] = field(default_factory=dict)
    # Clusters this process brings up (local, Kubernetes session): STARTING, RUNNING, FAILED or STOPPED.
    cluster_phases: dict[int, str] = field(default_factory=dict)
    # What the supervisor knows of each local cluster it watches (services/supervisor.Supervision).
    supervisions: dict[int, Any] = field(default_factory=dict)
    # Whether a Flink REST API's JobManager has flink-python on its class path, by REST URL.
    python_in_lib: dict[str, bool] = field(default_factory=dict)
    # One PyFlink submission at a time per JobManager (see StandaloneTarget.submit), by REST URL.
    python_submits: dict[str, asyncio.Lock] = field(default_factory=dict)
    logins: LoginThrottle = field(default_factory=LoginThrottle)  # wrong tokens per client
    metrics: PlatformMetrics = field(default_factory=PlatformMetrics)  # /metrics (services/metrics.py)
    # The clusters this instance watches when several share the database (services/leases.py); None:
    # every cluster (a platform without its loops, e.g. in a test that drives the tracker itself).
    leases: LeaseKeeper | None = None
    _secret_box: SecretBox | None = None
    _clients: dict[int, FlinkClient] = field(default_factory=dict)
    _url_clients: dict[str, FlinkClient] = field(default_factory=dict)  # Flink REST APIs on Kubernetes
    _client_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def leases_ready(self) -> None:
        if self.leases is not None:
            await self.leases.ensure_started()

    def watches(self, cluster_id: int) -> bool:
        """Whether this instance tracks the cluster, applies its policies and delivers its apps' alerts."""
        return self.leases is None or self.leases.holds(cluster_id)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def artifacts(self) -> ArtifactStore:
        """Jars the Kubernetes operator fetches for session jobs (services/artifacts.py)."""
        return ArtifactStore(self.home / "artifacts", self.home / "artifact.key")

    @property
    def secrets(self) -> SecretBox:
        """Encrypts and decrypts stored secrets with the home's key (services/secrets.py)."""
        if self._secret_box is None:
            self._secret_box = SecretBox(self.home / "secret.key")
        return self._secret_box

    def client(self, cluster: Cluster) -> FlinkClient:
        """One pooled REST client per cluster; replaced if the cluster's address changed."""
        existing = self._clients.get(cluster.id)
        if existing is not None and existing.base_url == (cluster.rest_url or "").rstrip("/"):
            return existing
        if existing is not None:
            self._close_later(existing)
        client = FlinkClient(
            cluster.rest_url or "http://127.0.0.1:1",
            timeout_s=self.settings.flink.request_timeout_s,
            submit_timeout_s=self.settings.flink.submit_timeout_s,
        )
        self._clients[cluster.id] = client
        return client

    def client_at(self, url: str) -> FlinkClient:
        """A pooled REST client for a JobManager found through a Kubernetes cluster's URL template."""
        client = self._url_clients.get(url)
        if client is None:
            client = FlinkClient(
                url,
                timeout_s=self.settings.flink.request_timeout_s,
                submit_timeout_s=self.settings.flink.submit_timeout_s,
            )
            self._url_clients[url] = client
        return client

    def forget_client(self, cluster_id: int) -> None:
        client = self._clients.pop(cluster_id, None)
        if client is not None:
            self._close_later(client)

    def _close_later(self, client: FlinkClient) -> None:
        """Close a client no longer used (its connections), without making the caller wait."""
        try:
            task = asyncio.get_running_loop().create_task(client.close())
        except RuntimeError:
            return  # no loop: nothing was opened in one
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        await cancel_and_wait(list(self.background))
        for client in [*self._clients.values(), *self._url_clients.values()]:
            await client.close()
        self._clients.clear()
        self._url_clients.clear()
        await self.k8s.close()
        await self.engine.dispose()
