"""Credentials for the Kubernetes API that stay valid for as long as the platform runs.

Managed clusters hand out short-lived tokens: an exec plugin's (EKS ~15 min, GKE, AKS) says when
its token expires; a projected service-account token is rotated on disk (kubelet, ~1 h); a static
kubeconfig can be edited. The client library reads all of them once. Here, before every request:
- a token with a known expiry is fetched again shortly before it expires (a quarter of its lifetime
  or 60 s before, whichever is sooner), by running the exec plugin again;
- a token read from a file (in-cluster, kubeconfig ``token``/``tokenFile``) is read again every
  minute, so a rotated one is used within a minute;
- after a 401 the connection is dropped and a new one opened with credentials fetched anew whatever
  the expiry said (KubeApi._reconnect: a client certificate needs a new TLS session too).
Fetches never overlap (one lock per connection) and never block the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader
from kubernetes_asyncio.config.kube_config import KubeConfigLoader

REREAD_S = 60.0  # tokens from files (no expiry known) are read again this often
MAX_SKEW_S = 60.0


class Credentials:
    """Where one connection's credentials come from, and when they are due again."""

    def __init__(self, kubeconfig: Path | None, context: str | None, service_account: Path | None) -> None:
        self.kubeconfig, self.context, self.service_account = kubeconfig, context, service_account
        self._due = 0.0  # monotonic time at which to fetch again (0: now)
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def load(self, configuration: Configuration) -> None:
        """Fetch credentials into ``configuration`` (host, CA, token or client certificate)."""
        if self.kubeconfig is not None:
            path = self.kubeconfig
            raw = await asyncio.to_thread(lambda: yaml.safe_load(path.read_text()))
            loader = KubeConfigLoader(config_dict=raw, config_base_path=str(path.parent), active_context=self.context)
            await loader.load_and_set(configuration)  # runs the exec plugin, if the user has one
            expiry: dt.datetime | None = getattr(loader, "exec_plugin_expiry", None)
            has_exec = "exec" in (loader._user or {})  # the loader keeps the chosen user there
        else:
            assert self.service_account is not None
            account = self.service_account
            in_cluster = InClusterConfigLoader(
                token_filename=str(account / "token"), cert_filename=str(account / "ca.crt"), try_refresh_token=False
            )
            await asyncio.to_thread(in_cluster.load_and_set, configuration)  # reads the token file
            expiry, has_exec = None, False
        self.fetches += 1
        self._due = self._next_due(expiry, has_exec)

    @staticmethod
    def _next_due(expiry: dt.datetime | None, has_exec: bool) -> float:
        now = time.monotonic()
        if expiry is not None:
            left = (expiry - dt.datetime.now(dt.UTC)).total_seconds()
            return now + max(0.0, left - min(MAX_SKEW_S, left / 4))
        if has_exec:
            return float("inf")  # no expiry said: it is valid until the API server answers 401
        return now + REREAD_S

    async def hook(self, configuration: Configuration, *_: Any) -> None:
        """The client library's ``refresh_api_key_hook``: runs before each request."""
        if time.monotonic() < self._due:
            return
        async with self._lock:
            if time.monotonic() < self._due:
                return  # fetched by a request that held the lock before us
            await self.load(configuration)
