"""Kubernetes targets: applications as Flink Kubernetes Operator resources.

``kubernetes-application``: each app is a FlinkDeployment (its own application cluster);
``kubernetes-session``: each app is a FlinkSessionJob on the cluster's session FlinkDeployment.
Lifecycle operations change the resource's spec (state, upgrade mode, savepoint nonce) and wait for
the operator's status. The merged observation lives in observer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streampilot.domain.apps import IMAGE_JAR_PROPERTY, AppKind, AppSpec
from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import (
    GROUP,
    KIND_APPLICATION,
    SCRIPT_DIR,
    SNAPSHOTS,
    STORAGE_FIX,
    VERSION,
    K8sOptions,
    application_deployment,
    fetches_jars,
    job_section,
    resource_name,
    same_flink,
    savepoint_snapshot,
    script_config_map,
    script_items,
    session_job,
    storage_problem,
    with_script_volume,
)
from streampilot.domain.k8s_status import kept_savepoints, operator_error, suspend_savepoint
from streampilot.domain.sqlscript import parse_script
from streampilot.flink.client import FlinkClient
from streampilot.flink.launch import PYTHON_DRIVER, RUNNER_CLASS, encode_statements
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, Unavailable
from streampilot.services.homes import home_info
from streampilot.services.jars import JarService, dependency_jars
from streampilot.services.submissions import launch_config
from streampilot.store.orm import Cluster
from streampilot.targets.kubernetes.checks import spec_problems
from streampilot.targets.kubernetes.errors import KubeError, KubeNotFound, KubeRejected
from streampilot.targets.kubernetes.observer import LABELS, KubernetesClusters, options_of, plural_of
from streampilot.targets.port import Launch, LaunchRequest, Listing, Triggered

if TYPE_CHECKING:
    from streampilot.targets.kubernetes.client import KubeApi

log = logging.getLogger("streampilot.kubernetes")
SNAPSHOT_PICKUP_S = 20.0  # the operator's snapshot controller reconciles a new FlinkStateSnapshot at once


@dataclass
class KubernetesTarget:
    """What both modes share; the operator's resource name is the job's identity."""

    ctx: Context
    cluster: Cluster

    @property
    def clusters(self) -> KubernetesClusters:
        return self.ctx.k8s

    @property
    def options(self) -> K8sOptions:
        return options_of(self.cluster)

    @property
    def upgrades_in_place(self) -> bool:
        return True

    async def validate(self, app_name: str, spec: AppSpec) -> None:
        """No JobManager to ask before the job starts: Flink checks the program when the job starts."""

    async def prepare(self, request: LaunchRequest) -> Launch:
        self.check(request.spec)
        return Launch(request, resource_name(request.app_id), launch_config(request.spec, request.app_name))

    async def submit(self, launch: Launch) -> None:
        r = launch.request
        await self.start(r.app_id, r.spec, launch.config, r.restore_path, r.allow_non_restored_state)

    async def cancel(self, job_id: str) -> None:
        await self.stop(job_id, False, self.ctx.settings.flink.savepoint_timeout_s)

    async def stop_with_savepoint(self, job_id: str, *, drain: bool, timeout_s: float, triggered: Triggered) -> str:
        path = await self.stop(job_id, True, timeout_s)
        if path is None:
            raise Conflict(f"the Flink operator suspended {job_id} without reporting a savepoint")
        return path

    async def savepoint(self, job_id: str, *, timeout_s: float, triggered: Triggered) -> str:
        return await self._savepoint(job_id, timeout_s)

    async def savepoint_outcome(self, job_id: str, trigger: str, timeout_s: float) -> str | None:
        return None  # the operator's nonce is not resumed after a platform restart: the operation fails

    async def observe_all(self) -> Listing:
        # Flink's REST API only refines what the operator says: it gets at most one tick.
        settings = self.ctx.settings
        budget = min(settings.flink.request_timeout_s, max(1.0, settings.tracking.tick_s))
        found = await self.clusters.listing(self.cluster, self.ctx.client_at, budget)
        return Listing.failed(found) if isinstance(found, str) else Listing(found)

    async def kept_savepoints(self, job_id: str) -> list[tuple[str, float]]:
        """The operator's completed savepoints of the app's resource (FlinkStateSnapshots referring to
        it: periodic, upgrade and manual ones, ours included)."""
        api = await self.clusters.api(self.cluster)
        if not await self._snapshot_resources(api):
            return []
        try:
            items, _ = await api.list(SNAPSHOTS, self.options.namespace, None)
        except KubeNotFound:
            return []
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
        return kept_savepoints(items, job_id)

    def flink_api(self, job_id: str) -> tuple[FlinkClient, str] | None:
        found = self.clusters.rest_of(self.cluster, job_id)
        return None if found is None else (self.ctx.client_at(found[0]), found[1])

    async def describe(self) -> dict[str, Any]:
        cache = self.clusters.cache(self.cluster)
        await cache.wait_synced(2)
        snapshot = cache.snapshot()
        if isinstance(snapshot, str):
            return {"reachable": False, "error": snapshot}
        return {"reachable": True, "resources": len(snapshot)}

    async def start_cluster(self, timeout_s: float) -> str:
        raise Conflict(
            f"cluster {self.cluster.name!r} is {self.cluster.kind}: each app brings its own Flink cluster; "
            "only local and kubernetes-session clusters are started and stopped by the platform"
        )

    async def stop_cluster(self) -> None:
        await self.start_cluster(0)

    def check(self, spec: AppSpec) -> None:
        problems = spec_problems(spec, self.cluster.kind, self.options)
        if problems:
            raise SpecError(problems)

    def desired(
        self,
        app_id: int,
        spec: AppSpec,
        config: dict[str, str],
        restore: str | None,
        allow_non_restored_state: bool,
        fetched_jar: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The app's resource for ``spec``, and the ConfigMap carrying its script (PyFlink).

        ``fetched_jar``: the job's jar as the operator (session) or Flink (application) fetches it
        (``fetched_jar_uri``)."""
        o = self.options
        name = resource_name(app_id)
        flink_config = {k: v for k, v in config.items() if k != IMAGE_JAR_PROPERTY}
        entry_class: str | None
        script_map: dict[str, Any] | None = None
        if spec.kind == AppKind.PYTHON:
            # Flink's PythonDriver runs the script, which a ConfigMap mounts into the app's pods.
            assert spec.python is not None
            jar_uri, entry_class = o.python_jar_uri, PYTHON_DRIVER
            args = ["-py", f"{SCRIPT_DIR}/main.py", *spec.args]
            for key in ("python.executable", "python.client.executable"):  # the image's Python, not ours
                flink_config[key] = str(spec.properties.get(key, o.python_executable))
            if spec.python_files:  # the modules next to the script, on the client's and the workers' path
                flink_config["python.files"] = SCRIPT_DIR
            if spec.python_requirements:  # installed by pip on the TaskManagers (they need an index)
                flink_config["python.requirements"] = f"{SCRIPT_DIR}/requirements.txt"
            script_map = script_config_map(
                name,
                o.namespace,
                spec.python,
                {**LABELS, "streampilot-app": str(app_id)},
                spec.python_files,
                spec.python_requirements,
            )
        elif spec.kind == AppKind.SQL:
            # streampilot's SQL runner, baked into the image, gets the classified statements as arguments.
            assert spec.sql is not None
            jar_uri, entry_class, args = o.sql_runner_uri, RUNNER_CLASS, encode_statements(parse_script(spec.sql))
        else:
            jar_uri = str(spec.properties.get(IMAGE_JAR_PROPERTY, o.jar_uri))
            entry_class, args = spec.entry_class, spec.args
        if fetched_jar is not None:
            jar_uri = fetched_jar
        job = job_section(
            jar_uri=jar_uri,
            entry_class=entry_class,
            args=args,
            parallelism=spec.parallelism,
            state="running",
            upgrade_mode=o.upgrade_mode,
            restore=restore,
            allow_non_restored=allow_non_restored_state,
        )
        labels = {**LABELS, "streampilot-app": str(app_id)}
        body = (
            application_deployment(name, o, flink_config, job, labels)
            if self.cluster.kind == KIND_APPLICATION
            else session_job(name, o, flink_config, job, labels)
        )
        if script_map is not None:
            items = script_items(spec.python_files, spec.python_requirements)
            body["spec"]["podTemplate"] = with_script_volume(o.pod_template, script_map["metadata"]["name"], items)
        return body, script_map

    async def start(
        self, app_id: int, spec: AppSpec, config: dict[str, str], restore: str | None, allow_non_restored_state: bool
    ) -> str:
        """Create (or re-arm) the app's resource with the job running; returns the resource name."""
        self.check(spec)
        o = self.options
        name = resource_name(app_id)
        body, script_map = self.desired(
            app_id, spec, config, restore, allow_non_restored_state, await self.fetched_jar_uri(spec)
        )
        api = await self.clusters.api(self.cluster)
        plural = plural_of(self.cluster)
        try:
            # A new run is a new resource: the old one's status (e.g. FINISHED) must not describe it.
            await delete_and_wait(api, plural, o.namespace, name, self.ctx.settings.flink.start_wait_s)
            created = await api.create(plural, o.namespace, body)
        except KubeRejected as exc:
            if exc.status == 409:
                raise Conflict(f"resource {name} still exists on Kubernetes (being deleted); try again") from None
            raise SpecError.one("cluster_id", f"Kubernetes refused the resource: {exc}") from None
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
        if script_map is not None:
            await self._attach_script(api, created, script_map)
        self.clusters.remember(self.cluster, created)
        return name

    async def fetched_jar_uri(self, spec: AppSpec) -> str | None:
        """Where the job's jar is fetched from instead of read from the image, or None (the image has it).

        Session jobs: always (the operator fetches their jar itself). Application mode: when the cluster
        has an ``artifact_url`` and runs Flink 1.19 or newer, whose JobManager fetches a remote jarURI
        itself (KubernetesApplicationClusterEntrypoint -> ArtifactFetchManager); then uploaded jars and
        dependency jars need no custom image. The jar is the uploaded one or the SQL runner, with the
        app's dependency jars nested in it, published as a signed artifact (services/artifacts.py); an
        app's ``kubernetes.jar-uri`` property wins (session mode: an http(s) URI)."""
        o = self.options
        named = spec.properties.get(IMAGE_JAR_PROPERTY)
        if spec.kind == AppKind.JAR and named:
            return None if self.cluster.kind == KIND_APPLICATION else str(named)
        if self.cluster.kind == KIND_APPLICATION and not fetches_jars(o):
            return None
        if spec.kind == AppKind.PYTHON:
            if not spec.dependency_jar_ids:
                return None  # Flink's own flink-python jar in the image
            # The platform's flink-python jar with the app's jars nested: the image runs the same Flink.
            home = await home_info(self.ctx, None)
            if home.python_jar is None or not same_flink(home.version, o.flink):
                raise Conflict(
                    f"PyFlink apps with dependency jars need the image's Flink ({o.flink}) to be streampilot's "
                    f"({home.version}); build the jars into the image instead"
                )
            jar = home.python_jar
        elif spec.kind == AppKind.SQL:
            jar = await self.ctx.runners.sql_runner(await home_info(self.ctx, None))
        else:
            assert spec.jar_id is not None
            jar = Path((await JarService(self.ctx).get(spec.jar_id)).path)
        if spec.dependency_jar_ids:
            deps = [(j.sha256, Path(j.path)) for j in await dependency_jars(self.ctx, spec.dependency_jar_ids)]
            jar = await self.ctx.runners.bundle(jar, deps)
        assert o.artifact_url is not None  # required for session clusters (parse_options)
        return self.ctx.artifacts.url(o.artifact_url, await self.ctx.artifacts.publish(jar))

    async def _attach_script(
        self, api: KubeApi, owner: dict[str, Any], script_map: dict[str, Any], undo_on_failure: bool = True
    ) -> None:
        """Write the script's ConfigMap, owned by the FlinkDeployment (deleted with it); its pods wait for it.

        If it cannot be written, the deployment goes too: a job whose script never arrives is not started.
        """
        meta = owner["metadata"]
        script_map["metadata"]["ownerReferences"] = [
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FlinkDeployment", "name": meta["name"], "uid": meta["uid"]}
        ]
        try:
            await api.apply_config_map(self.options.namespace, script_map)
        except KubeError as exc:
            if undo_on_failure:
                try:
                    await api.delete(plural_of(self.cluster), self.options.namespace, meta["name"])
                except KubeError:
                    pass  # the next start deletes it before creating its own
            if isinstance(exc, KubeRejected):
                raise SpecError.one("python", f"Kubernetes refused the script's ConfigMap: {exc}") from None
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None

    async def upgrade(self, app_id: int, spec: AppSpec, config: dict[str, str], timeout_s: float) -> str | None:
        """Apply another version to the running resource: the operator upgrades the job with the cluster's
        upgrade mode (savepoint: it takes one first; last-state: from the latest checkpoint; stateless).

        Waits until the operator runs the new spec; returns the savepoint it took for the upgrade, if any.
        """
        self.check(spec)
        name = resource_name(app_id)
        current = await self._current(name)
        before = suspend_savepoint(current)
        body, script_map = self.desired(app_id, spec, config, None, False, await self.fetched_jar_uri(spec))
        api = await self.clusters.api(self.cluster)
        if script_map is not None:
            await self._attach_script(api, current, script_map, undo_on_failure=False)
        # A merge patch: what the new version no longer has must be removed explicitly (null).
        patch = {"spec": _removals(current.get("spec") or {}, body["spec"])}
        for nonce in ("savepointTriggerNonce", "restartNonce"):  # counters the operator compares: kept
            patch["spec"]["job"].pop(nonce, None)
        try:
            patched = await api.patch(plural_of(self.cluster), self.options.namespace, name, patch)
        except KubeRejected as exc:
            raise SpecError.one("version", f"Kubernetes refused the new version: {exc}") from None
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
        generation = int(patched["metadata"].get("generation") or 0)

        def upgraded(r: dict[str, Any]) -> bool:
            status = r.get("status") or {}
            return (
                int(status.get("observedGeneration") or 0) >= generation
                and status.get("lifecycleState") in ("DEPLOYED", "STABLE")
                and ((status.get("jobStatus") or {}).get("state") == "RUNNING")
            )

        resource = await self._await(name, upgraded, timeout_s)
        after = suspend_savepoint(resource)
        return after if after != before else None

    async def _patch_job(self, name: str, job: dict[str, Any]) -> dict[str, Any]:
        api = await self.clusters.api(self.cluster)
        try:
            return await api.patch(plural_of(self.cluster), self.options.namespace, name, {"spec": {"job": job}})
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None

    async def _await(self, name: str, done: Any, timeout_s: float) -> dict[str, Any]:
        api = await self.clusters.api(self.cluster)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                resource = await api.get(plural_of(self.cluster), self.options.namespace, name)
                if done(resource):
                    return resource
            except KubeError:
                pass
            await asyncio.sleep(0.2)
        raise Conflict(f"the Flink operator did not finish in {timeout_s:.0f} s; see the resource {name}")

    def _can_savepoint(self, resource: dict[str, Any], upgrade_mode: str) -> None:
        """The operator refuses a savepoint without a savepoint directory (the resource would carry the
        error and never take it): refused here, with what to set."""
        spec = resource.get("spec") or {}
        config = {**self.options.cluster_configuration(), **(spec.get("flinkConfiguration") or {})}
        problem = storage_problem(config, upgrade_mode, savepoint=True)
        if problem is not None:
            raise Conflict(f"the Flink operator would refuse it: {problem}; {STORAGE_FIX}")

    async def stop(self, name: str, savepoint: bool, timeout_s: float) -> str | None:
        """Suspend the job (savepoint upgrade mode takes a savepoint); returns the savepoint, if any.

        The suspend's savepoint is ``upgradeSavepointPath`` once the operator reports the resource
        SUSPENDED (it records no savepointInfo when it keeps snapshots as FlinkStateSnapshots)."""
        current = await self._current(name)
        if savepoint:
            self._can_savepoint(current, "savepoint")  # suspended with upgrade mode savepoint
        before = suspend_savepoint(current)
        patched = await self._patch_job(
            name, {"state": "suspended", "upgradeMode": "savepoint" if savepoint else "stateless"}
        )
        if not savepoint:
            return None
        generation = int(patched["metadata"].get("generation") or 0)

        def suspended(r: dict[str, Any]) -> bool:
            status = r.get("status") or {}
            return (
                int(status.get("observedGeneration") or 0) >= generation
                and status.get("lifecycleState") == "SUSPENDED"
                and suspend_savepoint(r) not in (None, before)
            )

        return suspend_savepoint(await self._await(name, suspended, timeout_s))

    async def _savepoint(self, name: str, timeout_s: float) -> str:
        current = await self._current(name)
        self._can_savepoint(current, self.options.upgrade_mode)
        api = await self.clusters.api(self.cluster)
        if await self._snapshot_resources(api):
            path = await self._snapshot_savepoint(api, name, timeout_s)
            if path is not None:
                return path
        return await self._nonce_savepoint(name, current, timeout_s)

    async def _snapshot_resources(self, api: KubeApi) -> bool:
        """Whether the operator keeps snapshots as FlinkStateSnapshot resources: the CRD is installed
        (detected once per cluster; a controller that never picks one up turns it off again)."""
        known = self.clusters.snapshot_resources.get(self.cluster.id)
        if known is None:
            try:
                await api.list(SNAPSHOTS, self.options.namespace, "managed-by=streampilot")
                known = True
            except KubeNotFound:
                known = False  # no such kind on this API server: an operator older than 1.10
            except KubeError as exc:
                raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
            self.clusters.snapshot_resources[self.cluster.id] = known
        return known

    async def _snapshot_savepoint(self, api: KubeApi, name: str, timeout_s: float) -> str | None:
        """A savepoint through a FlinkStateSnapshot of our own; None if no controller picked it up (an
        operator with kubernetes.operator.snapshot.resource.enabled: false leaves it untouched)."""
        namespace = self.options.namespace
        snapshot = f"{name}-savepoint-{int(time.time() * 1000)}"
        kind = "FlinkDeployment" if self.cluster.kind == KIND_APPLICATION else "FlinkSessionJob"
        body = savepoint_snapshot(snapshot, namespace, kind, name, {**LABELS, "streampilot-job": name})
        try:
            await api.create(SNAPSHOTS, namespace, body)
        except KubeRejected as exc:
            raise Conflict(f"Kubernetes refused the FlinkStateSnapshot: {exc}") from None
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() < started + timeout_s:
            try:
                status = (await api.get(SNAPSHOTS, namespace, snapshot)).get("status") or {}
            except KubeError:
                status = {}  # unknown for now: asked again
            state = status.get("state")
            if state == "COMPLETED" and status.get("path"):
                return str(status["path"])
            if state in ("FAILED", "ABANDONED"):
                why = operator_error(status.get("error") or "no reason given")
                raise Conflict(f"the Flink operator's savepoint {snapshot} is {state}: {why}")
            if state is None and loop.time() - started > SNAPSHOT_PICKUP_S:
                log.warning(
                    "no operator picked up FlinkStateSnapshot %s in %.0f s: savepoints of cluster %r use the "
                    "savepoint nonce from now on",
                    snapshot,
                    SNAPSHOT_PICKUP_S,
                    self.cluster.name,
                )
                self.clusters.snapshot_resources[self.cluster.id] = False
                with contextlib.suppress(KubeError):
                    await api.delete(SNAPSHOTS, namespace, snapshot)
                return None
            await asyncio.sleep(0.2)
        raise Conflict(
            f"the Flink operator did not finish savepoint {snapshot} in {timeout_s:.0f} s; see that resource"
        )

    async def _nonce_savepoint(self, name: str, current: dict[str, Any], timeout_s: float) -> str:
        """A savepoint through the resource's savepointTriggerNonce (operators without snapshot resources
        record it in savepointInfo)."""
        nonce = int(((current.get("spec") or {}).get("job") or {}).get("savepointTriggerNonce") or 0) + 1
        await self._patch_job(name, {"savepointTriggerNonce": nonce})

        def taken(r: dict[str, Any]) -> bool:
            info = ((r.get("status") or {}).get("jobStatus") or {}).get("savepointInfo") or {}
            last = info.get("lastSavepoint") or {}
            return bool(last.get("location")) and int(last.get("triggerNonce") or 0) == nonce

        resource = await self._await(name, taken, timeout_s)
        info = ((resource.get("status") or {}).get("jobStatus") or {}).get("savepointInfo") or {}
        return str(info["lastSavepoint"]["location"])

    async def _current(self, name: str) -> dict[str, Any]:
        api = await self.clusters.api(self.cluster)
        try:
            return await api.get(plural_of(self.cluster), self.options.namespace, name)
        except KubeNotFound:
            raise Conflict(f"resource {name} no longer exists on Kubernetes") from None
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None


async def delete_and_wait(api: KubeApi, plural: str, namespace: str, name: str, timeout_s: float) -> None:
    """Delete a resource and wait until it is gone: the operator's finalizer keeps it (with a
    deletionTimestamp) until its job is torn down, and a create of the same name before that is a
    409 AlreadyExists on a real API server."""
    try:
        await api.delete(plural, namespace, name)
    except KubeNotFound:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        try:
            await api.get(plural, namespace, name)
        except KubeNotFound:
            return
        await asyncio.sleep(0.2)
    raise Conflict(
        f"{plural}/{name} is still being deleted after {timeout_s:.0f} s (the Flink operator has not removed its "
        f"finalizer); see its events: kubectl describe {plural} {name} -n {namespace}"
    )


def _removals(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """``wanted`` as a merge patch over ``current``: keys it drops become null (removed), recursively."""
    out: dict[str, Any] = dict(wanted)
    for key, value in current.items():
        if key not in wanted:
            out[key] = None
        elif isinstance(value, dict) and isinstance(wanted[key], dict):
            out[key] = _removals(value, wanted[key])
    return out
