"""The Kubernetes API behind a small typed port, on kubernetes_asyncio.

Errors say what they mean for the observer: ``KubeUnavailable`` (no usable answer: refused, timeout,
5xx, 429) is never evidence; ``KubeNotFound`` (HTTP 404 for the object) is positive absence;
``KubeGone`` (410) means a watch must relist.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from streampilot.domain.k8s import GROUP, VERSION
from streampilot.targets.kubernetes.credentials import Credentials
from streampilot.targets.kubernetes.errors import (
    KubeConfigError,
    KubeError,
    KubeGone,
    KubeNotFound,
    KubeRejected,
    KubeUnavailable,
)

__all__ = [
    "KubeApi",
    "KubeConfigError",
    "KubeError",
    "KubeGone",
    "KubeNotFound",
    "KubeRejected",
    "KubeUnavailable",
    "service_account_dir",
]


def service_account_dir() -> Path:
    """Where a pod's service account token and CA live (STREAMPILOT_K8S_SERVICE_ACCOUNT_DIR overrides)."""
    return Path(os.environ.get("STREAMPILOT_K8S_SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"))


def _translate(exc: BaseException, what: str) -> KubeError:
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = exc.reason or ""
        try:
            reason = json.loads(exc.body or "{}").get("message") or reason
        except (ValueError, AttributeError):
            pass
        if status == 404:
            return KubeNotFound(f"{what}: not found")
        if status == 410:
            return KubeGone(f"{what}: resource version too old (410 Gone)")
        if status >= 500 or status == 429 or status == 0:
            return KubeUnavailable(f"{what}: HTTP {status} {reason}")
        return KubeRejected(f"{what}: HTTP {status} {reason}", status)
    return KubeUnavailable(f"{what}: {type(exc).__name__}: {exc}")


TRANSIENT = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError, OSError)


class KubeApi:
    """One API server connection; every call has a timeout.

    Creates and patches ask ``fieldValidation=Strict``: a field the operator's CRD does not know is
    refused (400) instead of silently pruned, so a setting never vanishes on its way to Flink.
    """

    def __init__(self, api: client.ApiClient, timeout_s: float = 10.0, credentials: Credentials | None = None) -> None:
        self._timeout = timeout_s
        self.credentials = credentials
        self._use(api)
        self._stale = False  # a 401 was answered: reconnect before the next request
        self._reconnecting = asyncio.Lock()
        self._retired: list[client.ApiClient] = []  # replaced connections, closed with this one
        self.reconnects = 0

    def _use(self, api: client.ApiClient) -> None:
        self._api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    async def _reconnect(self) -> None:
        """After a 401: drop the connection and open a new one with freshly fetched credentials (a new
        token, or a new client certificate from an exec plugin, which needs a new TLS session)."""
        async with self._reconnecting:
            if not self._stale or self.credentials is None:
                return
            configuration = client.Configuration()
            await self.credentials.load(configuration)
            configuration.refresh_api_key_hook = self.credentials.hook
            self._retired.append(self._api)  # requests under way on it finish there
            self._use(client.ApiClient(configuration))
            self._stale = False
            self.reconnects += 1

    @classmethod
    async def connect(cls, kubeconfig: str | None, context: str | None = None, timeout_s: float = 10.0) -> KubeApi:
        configuration = client.Configuration()
        try:
            if kubeconfig:
                path = await asyncio.to_thread(lambda: Path(kubeconfig).expanduser())
                if not await asyncio.to_thread(path.is_file):
                    raise KubeConfigError(f"kubeconfig {kubeconfig} does not exist")
                credentials = Credentials(path, context, None)
            else:
                credentials = Credentials(None, None, service_account_dir())
            try:
                await credentials.load(configuration)
            except ConfigException as exc:
                if kubeconfig:
                    raise
                raise KubeConfigError(
                    f"no kubeconfig given and no in-cluster service account usable ({exc}); "
                    "set options.kubeconfig, or run streampilot in a pod with a service account"
                ) from None
        except ConfigException as exc:
            raise KubeConfigError(f"cannot use the Kubernetes connection settings: {exc}") from None
        except (ValueError, KeyError, TypeError, OSError, yaml.YAMLError) as exc:
            raise KubeConfigError(f"kubeconfig {kubeconfig} is not a valid kubeconfig: {exc}") from None
        configuration.refresh_api_key_hook = credentials.hook
        return cls(client.ApiClient(configuration), timeout_s, credentials)

    async def close(self) -> None:
        for api in [*self._retired, self._api]:
            await api.close()

    def _failed(self, exc: BaseException, what: str) -> KubeError:
        """The error, translated; a 401 means the credentials are no longer good: reconnect next time."""
        if isinstance(exc, ApiException) and exc.status == 401 and self.credentials is not None:
            self._stale = True
        if isinstance(exc, ConfigException):  # fetching fresh credentials failed (e.g. the exec plugin)
            return KubeUnavailable(f"{what}: could not refresh the Kubernetes credentials: {exc}")
        return _translate(exc, what)

    async def _call(self, what: str, request: Callable[[], Awaitable[Any]]) -> Any:
        """One request; after a 401 (an expired or revoked token) once more with fresh credentials."""
        for attempt in (1, 2):
            try:
                if self._stale:
                    await self._reconnect()
                return await request()
            except (ApiException, ConfigException, *TRANSIENT) as exc:
                error = self._failed(exc, what)
                if attempt == 1 and isinstance(exc, ApiException) and exc.status == 401 and self.credentials:
                    continue
                raise error from None
        raise AssertionError("unreachable")

    async def namespace_exists(self, namespace: str) -> bool:
        try:
            await self._call(
                f"namespace {namespace}", lambda: self.core.read_namespace(namespace, _request_timeout=self._timeout)
            )
        except KubeNotFound:
            return False
        return True

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"{plural}/{name}",
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _request_timeout=self._timeout
            ),
        )
        return result

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"create {plural}",
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, field_validation="Strict", _request_timeout=self._timeout
            ),
        )
        return result

    async def patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"patch {plural}/{name}",
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                patch,
                field_validation="Strict",
                _request_timeout=self._timeout,
            ),
        )
        return result

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        await self._call(
            f"delete {plural}/{name}",
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _request_timeout=self._timeout
            ),
        )

    def _builtin(self, plural: str) -> Any:
        """The list function of a built-in kind we watch (raw JSON), or None for the operator's resources."""
        return {"deployments": self.apps.list_namespaced_deployment, "pods": self.core.list_namespaced_pod}.get(plural)

    async def apply_config_map(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the ConfigMap, or replace it if it exists."""
        name = body["metadata"]["name"]
        raw: Any = body  # the library serialises plain dicts as they are
        try:
            await self._call(
                f"create configmap {name}",
                lambda: self.core.create_namespaced_config_map(namespace, raw, _request_timeout=self._timeout),
            )
        except KubeRejected as exc:
            if exc.status != 409:
                raise
            await self._call(
                f"replace configmap {name}",
                lambda: self.core.replace_namespaced_config_map(name, namespace, raw, _request_timeout=self._timeout),
            )

    async def list(self, plural: str, namespace: str, label_selector: str | None) -> tuple[list[dict[str, Any]], str]:
        builtin = self._builtin(plural)
        if builtin is not None:
            # Raw JSON, not the typed model: only a few fields are read, none are validated here.
            what = f"list {plural}"

            async def raw_list() -> dict[str, Any]:
                resp = await builtin(
                    namespace,
                    label_selector=label_selector or "",
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
                try:
                    async with resp:
                        if not 200 <= resp.status <= 299:  # as ApiException: a 401 is retried by _call
                            raise ApiException(status=resp.status, reason=(await resp.text())[:300])
                        found: dict[str, Any] = json.loads(await resp.read())
                        return found
                except ValueError as exc:
                    raise KubeUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None

            raw = await self._call(what, raw_list)
            return list(raw.get("items") or []), str((raw.get("metadata") or {}).get("resourceVersion", ""))
        data = await self._call(
            f"list {plural}",
            lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, label_selector=label_selector or "", _request_timeout=self._timeout
            ),
        )
        return list(data.get("items", [])), str(data.get("metadata", {}).get("resourceVersion", ""))

    async def watch(
        self, plural: str, namespace: str, resource_version: str, label_selector: str | None, timeout_s: int
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Events after ``resource_version`` until the server ends the stream (after ``timeout_s``)."""
        what = f"watch {plural}"
        options: dict[str, Any] = {
            "label_selector": label_selector or "",
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_s,
            "_preload_content": False,
            "_request_timeout": timeout_s + self._timeout,
        }
        resp: Any
        try:
            if self._stale:
                await self._reconnect()
            builtin = self._builtin(plural)
            if builtin is not None:
                resp = await builtin(namespace, **options)
            else:
                resp = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **options)
        except (ApiException, ConfigException, *TRANSIENT) as exc:
            raise self._failed(exc, what) from None
        if not 200 <= resp.status <= 299:  # an unread (streamed) answer is not checked by the library
            try:
                body = await resp.text()
            except TRANSIENT:
                body = ""
            finally:
                resp.release()
            raise self._failed(ApiException(status=resp.status, reason=body[:300]), what)
        try:
            async with resp:
                while True:
                    try:
                        line = await asyncio.wait_for(resp.content.readline(), timeout_s + self._timeout)
                    except TRANSIENT as exc:
                        raise _translate(exc, what) from None
                    if not line:
                        return
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        code = int(obj.get("code", 0))
                        if code == 410:
                            raise KubeGone(f"{what}: resource version {resource_version} expired (410 Gone)")
                        raise KubeUnavailable(f"{what}: error event {obj.get('message') or code}")
                    yield str(event.get("type")), obj
        except ValueError as exc:
            raise KubeUnavailable(f"{what}: unreadable event: {exc}") from None
