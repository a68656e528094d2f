"""An emulator of the Kubernetes API for tests (no real API server can run on these machines).

It serves the parts streampilot uses, over real HTTP: namespaces, the Flink Kubernetes Operator's
custom resources (create, get, list, merge-patch, delete, watch with resourceVersion and 410 Gone
after compaction), label selectors, and fault injection (HTTP 500s, hanging answers, cut watch
streams). Tests drive it like the operator would: ``set_status`` writes a resource's status.

Like a real API server (Kubernetes docs: "Extend the Kubernetes API with CustomResourceDefinitions",
"Finalizers", "Field validation"):
- custom resources are checked against the operator's CRD schema (``crds``: a release under
  ../shared/reference/): a value against it is 422 Invalid; an unknown field is 400 BadRequest with
  ``fieldValidation=Strict`` and silently pruned without;
- a CRD that is not installed (``snapshot_crd=False``: FlinkStateSnapshot) answers 404 for its kind;
- a delete of an object with finalizers only sets ``metadata.deletionTimestamp``; the object goes when
  its controller removed the last finalizer; a create of its name meanwhile is 409 AlreadyExists.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from streampilot.flink.local import free_port
from tests.helpers import start_uvicorn, stop_uvicorn
from tests.k8s.crds import KINDS, prune, schema_problems


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message},
        status_code=code,
    )


class KubeEmulator:
    def __init__(
        self,
        namespaces: tuple[str, ...] = ("default", "flink"),
        tls: tuple[Path, Path] | None = None,
        token: str | None = None,
        crds: str | None = "release-1.15.0",
        snapshot_crd: bool = True,
        token_lifetime_s: float | None = None,
    ) -> None:
        # Short-lived tokens, as a managed cluster's authenticator issues them (EKS, GKE, AKS): handed
        # out by GET /test/issue-token (what an exec plugin fetches), refused with 401 once expired.
        self.token_lifetime_s = token_lifetime_s
        self.issued: dict[str, float] = {}  # token -> when it expires (monotonic)
        self.unauthorized = 0
        self.crds = crds
        self.snapshot_crd = snapshot_crd
        self.namespaces = set(namespaces)
        self.tls = tls  # (certificate, key): serve HTTPS, as a real API server does
        self.token = token  # when set, a request without "Bearer <token>" gets 401
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rv = 100
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.compacted_before = 0
        self.fault: str | None = None  # None | "500" | "hang"
        self.requests: list[str] = []
        self._changed = asyncio.Condition()
        self._cut = 0
        self.app = self._build()
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- test driver ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for this API server: a static token, or (with ``token_lifetime_s``) an exec plugin
        that fetches a short-lived one, as ``aws eks get-token`` or ``gke-gcloud-auth-plugin`` do."""
        user: dict[str, Any] = {"token": "emulator-token"}
        if self.token_lifetime_s is not None:
            plugin = Path(__file__).parent / "k8s" / "exec_plugin.py"
            user = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": sys.executable,
                    "args": [str(plugin), self.url],
                    "interactiveMode": "Never",
                }
            }
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "emulator",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": user}],
                    "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
                }
            )
        )
        return path

    async def start(self) -> KubeEmulator:
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=1,
                ssl_certfile=str(self.tls[0]) if self.tls else None,
                ssl_keyfile=str(self.tls[1]) if self.tls else None,
            )
        )
        self._task = await start_uvicorn(self._server)
        return self

    async def stop(self) -> None:
        self.fault = None
        if self._server is not None:
            self._server.should_exit = True
            self._cut += 1
            async with self._changed:
                self._changed.notify_all()
            if self._task is not None:
                await stop_uvicorn(self._server, self._task)

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, ns, name))

    async def _record(self, kind: str, plural: str, ns: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, plural, ns, kind, copy.deepcopy(obj)))
        async with self._changed:
            self._changed.notify_all()

    async def set_status(self, plural: str, ns: str, name: str, status: dict[str, Any]) -> None:
        obj = self.objects[(plural, ns, name)]
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        if self.crds is not None and plural in KINDS:  # a /status update: the schema applies to it too
            invalid, _ = schema_problems(self.crds, plural, obj)
            assert not invalid, f"the stand-in wrote a status the API server refuses: {invalid}"
            prune(self.crds, plural, obj)
        await self._record("MODIFIED", plural, ns, obj)

    async def put(self, plural: str, ns: str, obj: dict[str, Any]) -> None:
        """Create or replace an object as a controller would (no API call)."""
        obj["metadata"]["namespace"] = ns
        kind = "MODIFIED" if (plural, ns, obj["metadata"]["name"]) in self.objects else "ADDED"
        self.objects[(plural, ns, obj["metadata"]["name"])] = obj
        await self._record(kind, plural, ns, obj)

    async def remove(self, plural: str, ns: str, name: str) -> None:
        obj = self.objects.pop((plural, ns, name))
        await self._record("DELETED", plural, ns, obj)
        # Garbage collection: what the removed object owned goes with it.
        uid = obj["metadata"].get("uid")
        owned = [
            key
            for key, o in self.objects.items()
            if uid and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])
        ]
        for key in owned:
            await self.remove(*key)

    async def remove_finalizer(self, plural: str, ns: str, name: str, finalizer: str) -> None:
        """What a controller does when it has cleaned up: the object goes once none is left."""
        obj = self.objects.get((plural, ns, name))
        if obj is None:
            return
        left = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        obj["metadata"]["finalizers"] = left
        if not left and obj["metadata"].get("deletionTimestamp"):
            await self.remove(plural, ns, name)
        else:
            await self._record("MODIFIED", plural, ns, obj)

    async def add_finalizer(self, plural: str, ns: str, name: str, finalizer: str) -> None:
        obj = self.objects[(plural, ns, name)]
        if finalizer not in (obj["metadata"].get("finalizers") or []):
            obj["metadata"]["finalizers"] = [*(obj["metadata"].get("finalizers") or []), finalizer]
            await self._record("MODIFIED", plural, ns, obj)

    def _checked(self, plural: str, obj: dict[str, Any], request: Request) -> Response | None:
        """The CRD's schema on a custom resource (None: accepted, unknown fields pruned unless Strict)."""
        if self.crds is None or plural not in KINDS:
            return None
        # The operator's CRDs have the status subresource: the main resource's endpoints ignore status.
        obj.pop("status", None)
        invalid, unknown = schema_problems(self.crds, plural, obj)
        name = obj.get("metadata", {}).get("name")
        if invalid:
            return _status(
                422, "Invalid", f'{KINDS[plural]}.flink.apache.org "{name}" is invalid: {"; ".join(invalid)}'
            )
        if unknown and request.query_params.get("fieldValidation") == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            return _status(
                400,
                "BadRequest",
                f"{KINDS[plural]} in version v1beta1 cannot be handled: strict decoding error: {fields}",
            )
        if unknown:
            prune(self.crds, plural, obj)
        return None

    def _installed(self, plural: str) -> bool:
        return plural != "flinkstatesnapshots" or self.snapshot_crd

    def compact(self) -> None:
        """Forget history: a watch from an older resourceVersion now gets 410 Gone."""
        self.compacted_before = self.rv
        self.events.clear()

    async def cut_watches(self) -> None:
        self._cut += 1
        async with self._changed:
            self._changed.notify_all()

    # ---- the API -------------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def faults(request: Request, call_next: Any) -> Response:
            self.requests.append(f"{request.method} {request.url.path}?{request.url.query}")
            if request.url.path == "/test/issue-token":
                return await call_next(request)
            given = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            if self.token_lifetime_s is not None:
                if self.issued.get(given, 0.0) <= time.monotonic():
                    self.unauthorized += 1
                    return _status(401, "Unauthorized", "Unauthorized")
            elif self.token and given != self.token:
                self.unauthorized += 1
                return _status(401, "Unauthorized", "Unauthorized")
            if self.fault == "500":
                return _status(500, "InternalError", "injected fault")
            if self.fault == "hang":
                while self.fault == "hang":
                    await asyncio.sleep(0.05)
            response: Response = await call_next(request)
            return response

        @app.get("/test/issue-token")
        async def issue_token() -> Response:
            assert self.token_lifetime_s is not None
            token = f"t-{uuid.uuid4().hex}"
            self.issued[token] = time.monotonic() + self.token_lifetime_s
            return JSONResponse({"token": token, "expires_in_s": self.token_lifetime_s})

        @app.get("/api/v1/namespaces/{ns}")
        async def namespace(ns: str) -> Response:
            if ns not in self.namespaces:
                return _status(404, "NotFound", f'namespaces "{ns}" not found')
            return JSONResponse({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}})

        base = "/apis/{group}/{version}/namespaces/{ns}/{plural}"

        # The core group (pods, configmaps): the same handlers as the named groups below.
        @app.get("/api/v1/namespaces/{ns}/{plural}")
        async def list_or_watch_core(ns: str, plural: str, request: Request) -> Response:
            return await list_or_watch("", "v1", ns, plural, request)

        @app.post("/api/v1/namespaces/{ns}/{plural}")
        async def create_core(ns: str, plural: str, request: Request) -> Response:
            return await create("", "v1", ns, plural, request)

        @app.get("/api/v1/namespaces/{ns}/{plural}/{name}")
        async def read_core(ns: str, plural: str, name: str) -> Response:
            return await read("", "v1", ns, plural, name)

        @app.put("/api/v1/namespaces/{ns}/{plural}/{name}")
        async def replace_core(ns: str, plural: str, name: str, request: Request) -> Response:
            if (plural, ns, name) not in self.objects:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            obj = await request.json()
            obj["metadata"].update(namespace=ns, uid=self.objects[(plural, ns, name)]["metadata"].get("uid"))
            self.objects[(plural, ns, name)] = obj
            await self._record("MODIFIED", plural, ns, obj)
            return JSONResponse(obj)

        @app.delete("/api/v1/namespaces/{ns}/{plural}/{name}")
        async def delete_core(ns: str, plural: str, name: str) -> Response:
            return await delete("", "v1", ns, plural, name)

        @app.get(base)
        async def list_or_watch(group: str, version: str, ns: str, plural: str, request: Request) -> Response:
            if not self._installed(plural):
                return _status(404, "NotFound", "the server could not find the requested resource")
            q = request.query_params
            selector = q.get("labelSelector")
            if q.get("watch") in ("true", "1", "True"):
                return StreamingResponse(
                    self._watch(
                        ns, plural, q.get("resourceVersion") or "0", selector, float(q.get("timeoutSeconds") or 30)
                    ),
                    media_type="application/json",
                )
            items = [
                copy.deepcopy(o)
                for (p, n, _), o in sorted(self.objects.items())
                if p == plural and n == ns and _selected(o, selector)
            ]
            return JSONResponse(
                {
                    "apiVersion": "flink.apache.org/v1beta1",
                    "kind": "List",
                    "items": items,
                    "metadata": {"resourceVersion": str(self.rv)},
                }
            )

        @app.post(base)
        async def create(group: str, version: str, ns: str, plural: str, request: Request) -> Response:
            if ns not in self.namespaces:
                return _status(404, "NotFound", f'namespaces "{ns}" not found')
            if not self._installed(plural):
                return _status(404, "NotFound", "the server could not find the requested resource")
            obj = await request.json()
            name = obj["metadata"]["name"]
            if (plural, ns, name) in self.objects:  # also while it is being deleted (finalizers)
                return _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
            refused = self._checked(plural, obj, request)
            if refused is not None:
                return refused
            obj["metadata"].update(namespace=ns, generation=1, uid=f"uid-{self.rv}")
            self.objects[(plural, ns, name)] = obj
            await self._record("ADDED", plural, ns, obj)
            return JSONResponse(obj, status_code=201)

        @app.get(base + "/{name}")
        async def read(group: str, version: str, ns: str, plural: str, name: str) -> Response:
            obj = self.objects.get((plural, ns, name))
            if obj is None:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            return JSONResponse(obj)

        @app.patch(base + "/{name}")
        async def patch(group: str, version: str, ns: str, plural: str, name: str, request: Request) -> Response:
            obj = self.objects.get((plural, ns, name))
            if obj is None:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            patched = merge_patch(obj, await request.json())
            refused = self._checked(plural, patched, request)
            if refused is not None:
                return refused
            if "status" in obj:
                patched["status"] = obj["status"]
            if patched["metadata"].get("deletionTimestamp") and not patched["metadata"].get("finalizers"):
                self.objects[(plural, ns, name)] = patched
                await self.remove(plural, ns, name)  # the last finalizer removed: the delete completes
                return JSONResponse(patched)
            if patched.get("spec") != obj.get("spec"):
                patched["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
            self.objects[(plural, ns, name)] = patched
            await self._record("MODIFIED", plural, ns, patched)
            return JSONResponse(patched)

        @app.delete(base + "/{name}")
        async def delete(group: str, version: str, ns: str, plural: str, name: str) -> Response:
            obj = self.objects.get((plural, ns, name))
            if obj is None:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            if obj["metadata"].get("finalizers"):
                if not obj["metadata"].get("deletionTimestamp"):
                    obj["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    await self._record("MODIFIED", plural, ns, obj)
                return JSONResponse(obj)  # accepted: gone once its controller has cleaned up
            await self.remove(plural, ns, name)
            return JSONResponse({"kind": "Status", "status": "Success"})

        return app

    async def _watch(self, ns: str, plural: str, rv: str, selector: str | None, timeout: float) -> AsyncIterator[bytes]:
        since = int(rv or 0)
        if since and since < self.compacted_before:
            yield (
                json.dumps(
                    {
                        "type": "ERROR",
                        "object": {
                            "kind": "Status",
                            "code": 410,
                            "reason": "Expired",
                            "message": "too old resource version",
                        },
                    }
                )
                + "\n"
            ).encode()
            return
        cut = self._cut
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and self._cut == cut:
            for event_rv, p, n, kind, obj in list(self.events):
                if event_rv > since and p == plural and n == ns and _selected(obj, selector):
                    since = event_rv
                    yield (json.dumps({"type": kind, "object": obj}) + "\n").encode()
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=0.5)
                except TimeoutError:
                    pass


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True
