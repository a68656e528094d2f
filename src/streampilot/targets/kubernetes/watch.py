"""A list+watch cache of one kind of resource in one namespace.

It lists, then watches from the list's resourceVersion; a stream that ends is resumed from the last
version seen (nothing lost); a 410 Gone relists; errors back off and retry. While it is not in step
with the API server (not yet listed, or a broken watch not yet resumed) it is *stale*, and the
observer must read that as Unknown, never as absence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streampilot.targets.kubernetes.errors import KubeError, KubeGone
from streampilot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from streampilot.targets.kubernetes.client import KubeApi

log = logging.getLogger("streampilot.k8s")


@dataclass
class ResourceCache:
    connect: Callable[[], Awaitable[KubeApi]]
    plural: str
    namespace: str
    label_selector: str | None = "managed-by=streampilot"
    watch_timeout_s: int = 60
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_version: str | None = None
    in_step: bool = False
    last_error: str | None = None
    relists: int = 0
    reconnects: int = 0
    _task: asyncio.Task[None] | None = None
    _synced: asyncio.Event = field(default_factory=asyncio.Event)
    _api: KubeApi | None = None
    _stopping: bool = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watch:{self.namespace}/{self.plural}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # A library call may swallow one cancellation; the flag also ends the loop at its next turn.
            await cancel_and_wait([self._task], limit_s=5)
            self._task = None
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def wait_synced(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def snapshot(self) -> dict[str, dict[str, Any]] | str:
        """The cached objects by name, or why they cannot be trusted right now."""
        if not self.in_step:
            return self.last_error or "the watch on the Kubernetes API is not in step yet"
        return dict(self.items)

    async def _relist(self, api: KubeApi) -> None:
        items, rv = await api.list(self.plural, self.namespace, self.label_selector)
        self.items = {i["metadata"]["name"]: i for i in items}
        self.resource_version = rv
        self.relists += 1

    async def _run(self) -> None:
        delay = self.backoff_s
        need_list = True
        while not self._stopping:
            try:
                if self._api is None:
                    self._api = await self.connect()
                if need_list:
                    # Only a fresh list brings the cache back in step after trouble: a watch resumed
                    # after an error could replay a backlog while we already trusted stale objects.
                    await self._relist(self._api)
                    need_list = False
                    self.in_step, self.last_error = True, None
                    self._synced.set()
                    delay = self.backoff_s
                started = time.monotonic()
                async for kind, obj in self._api.watch(
                    self.plural, self.namespace, self.resource_version or "", self.label_selector, self.watch_timeout_s
                ):
                    self._apply(kind, obj)
                # A stream that ended cleanly is resumed from the last version seen: nothing is lost.
                if time.monotonic() - started < 0.05:
                    await asyncio.sleep(delay)  # a server ending streams at once must not spin us
            except asyncio.CancelledError:
                raise
            except KubeGone as exc:
                log.info("%s: %s; listing again", self.plural, exc)
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            except KubeError as exc:
                self.in_step, self.last_error = False, str(exc)
                self.reconnects += 1
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            except Exception as exc:  # the cache must survive anything and say it is stale
                self.in_step, self.last_error = False, f"{type(exc).__name__}: {exc}"
                need_list = True
                log.exception("watch of %s failed", self.plural)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("resourceVersion"):
            self.resource_version = str(meta["resourceVersion"])
        if kind == "BOOKMARK":
            return
        name = meta.get("name")
        if not name:
            return
        if kind == "DELETED":
            self.items.pop(name, None)
        else:
            self.items[name] = obj
