"""A stand-in for the Flink Kubernetes Operator in tests: it reacts to resource specs in the emulator
by writing statuses as the operator would (deploy, suspend with or without a savepoint, take a
savepoint for a new nonce). It writes directly, so API faults injected for clients do not stop it.

Given a real Flink cluster and the jars its images would hold, it runs each deployed job there for
real (as the JobManager of the FlinkDeployment would), so Flink's REST API can be the third source.

Where a comment below names an operator class or option (DefaultValidator, AbstractJobReconciler,
FlinkStateSnapshotUtils, ArtifactManager, KubernetesOperatorConfigOptions, ...), it is the one in
apache/flink-kubernetes-operator at release-1.15.0 (flink-kubernetes-operator/src/main/java/org/apache/
flink/kubernetes/operator/...), read for this stand-in; ``release`` selects the 1.13.0 validator rules."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from streampilot.flink.client import FlinkClient, FlinkError, JarRun
from streampilot.tasks import cancel_and_wait
from tests.k8s.operator_rules import deployment_refusal, session_job_refusal
from tests.k8s_emulator import KubeEmulator

VALIDATION_EXCEPTION = "org.apache.flink.kubernetes.operator.exception.ValidationException"


def jobmanager_pod(deployment: str, pod: str, restarts: int = 0, ready: bool = True) -> dict[str, Any]:
    """A JobManager pod as the operator's Deployment creates it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "labels": {"type": "flink-native-kubernetes", "app": deployment, "component": "jobmanager"},
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "flink-main-container", "ready": ready, "restartCount": restarts}],
        },
    }


class OperatorSimulator:
    def __init__(
        self,
        kube: KubeEmulator,
        deploy_delay_s: float = 0.3,
        flink: FlinkClient | None = None,
        jars: dict[str, Path] | None = None,
        mount_root: Path | None = None,
        release: str = "release-1.15.0",
        cleanup_delay_s: float = 0.3,
        snapshot_resources: bool = True,
        operator_config: dict[str, str] | None = None,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
    ) -> None:
        self.operator_config = operator_config or {}  # the operator's own configuration (its ConfigMap)
        # How the operator downloads a session job's jar (ArtifactManager -> HttpArtifactFetcher: a GET).
        self.fetch = fetch
        self.fetched: dict[str, bytes] = {}
        # kubernetes.operator.snapshot.resource.enabled (default true); it takes effect only where the
        # FlinkStateSnapshot CRD is installed (FlinkOperator.registerSnapshotController, and
        # FlinkStateSnapshotUtils.isSnapshotResourceEnabled falls back to the status fields without it).
        self.snapshot_resources = snapshot_resources and kube.snapshot_crd
        self._manual_nonces: dict[tuple[str, str, str], int] = {}
        self._snapshot_counter = 0
        self.kube = kube
        self.release = release  # whose validator rules apply (operator_rules.py)
        self.cleanup_delay_s = cleanup_delay_s  # how long tearing a job down takes before the finalizer goes
        self.deploy_delay_s = deploy_delay_s
        self.flink = flink
        self.jars = jars or {}
        self.mount_root = mount_root or Path("/nonexistent")  # where mounted ConfigMaps are written
        self.flink_jobs: dict[tuple[str, str, str], str] = {}  # resource -> job running on the real cluster
        self._uploaded: dict[str, str] = {}
        self._reconciled: dict[tuple[str, str, str], tuple[str | None, dict[str, Any]]] = {}  # (uid, spec)
        self.paused = False
        self._task: asyncio.Task[None] | None = None
        self._busy: set[tuple[str, str, str]] = set()

    def start(self) -> OperatorSimulator:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
        for key in list(self.flink_jobs):
            await self._cancel_real(key)

    async def _mounted(self, ns: str, pod_template: dict[str, Any] | None) -> dict[str, str]:
        """What a pod sees of its mounted ConfigMaps, as the kubelet mounts them (it waits for each
        ConfigMap to exist; ``items`` place keys at paths): written to local directories the real
        JobManager can read. Returns each mount path and the local directory standing for it."""
        spec = (pod_template or {}).get("spec") or {}
        mounts = [m for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []]
        found: dict[str, str] = {}
        for volume in spec.get("volumes") or []:
            mount = next((m for m in mounts if m["name"] == volume["name"]), None)
            if mount is None or "configMap" not in volume:
                continue
            key = ("configmaps", ns, volume["configMap"]["name"])
            for _ in range(100):
                if key in self.kube.objects:
                    break
                await asyncio.sleep(0.1)
            data = self.kube.objects[key]["data"]
            items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            local = self.mount_root / key[2] / mount["mountPath"].removeprefix("/")
            for item in items:
                target = local / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(data[item["key"]])
            found[mount["mountPath"]] = str(local)
        return found

    async def _run_real(self, key: tuple[str, str, str], job: dict[str, Any], config: dict[str, str]) -> str:
        """Run the resource's job on the real Flink cluster; returns its job id."""
        assert self.flink is not None
        pod_template = (self.kube.objects[key].get("spec") or {}).get("podTemplate")
        mounted = await self._mounted(key[1], pod_template)

        def local(value: str) -> str:  # a path inside the pod, as the real JobManager finds it here
            for path, directory in mounted.items():
                if value == path or value.startswith(path + "/"):
                    return directory + value[len(path) :]
            return value

        job = {**job, "args": [local(str(a)) for a in job.get("args") or []]}
        config = {k: local(str(v)) for k, v in (config or {}).items()}
        uri = job["jarURI"]
        if uri not in self._uploaded:
            jar = self.jars.get(uri)
            if jar is None and uri in self.fetched:  # a session job's jar, as the operator downloaded it
                jar = self.mount_root / f"fetched-{len(self._uploaded)}.jar"
                jar.parent.mkdir(parents=True, exist_ok=True)
                jar.write_bytes(self.fetched[uri])
            assert jar is not None, f"the image has no {uri}"
            self._uploaded[uri] = await self.flink.upload_jar(jar, "image-job.jar")
        job_id = uuid.uuid4().hex
        run = JarRun(
            entry_class=job.get("entryClass"),
            args=list(job.get("args") or []),
            parallelism=job.get("parallelism"),
            configuration=config,
            job_id=job_id,
            savepoint_path=job.get("initialSavepointPath"),
        )
        await self.flink.run_jar(self._uploaded[uri], run)
        self.flink_jobs[key] = job_id
        return job_id

    async def _cancel_real(self, key: tuple[str, str, str]) -> None:
        job_id = self.flink_jobs.pop(key, None)
        if job_id is not None and self.flink is not None:
            with contextlib.suppress(FlinkError):
                await self.flink.cancel(job_id)

    async def _fetch_jar(self, uri: str) -> str | None:
        """Download a session job's jar as the operator does (http/https: a GET; anything else through
        Flink's file systems, which know no ``local`` scheme); None when it arrived."""
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in ("http", "https"):
            return f"Could not find a file system implementation for scheme '{scheme}' ({uri})"
        if self.fetch is None:
            return f"no network to fetch {uri}"
        try:
            self.fetched[uri] = await self.fetch(uri)
        except Exception as exc:
            return f"Server returned an error for URL: {uri}: {exc}"
        return None

    def _savepoint_dir(self, obj: dict[str, Any]) -> str:
        """The job's execution.checkpointing.savepoint-dir (a session job's from its session as well)."""
        spec = obj.get("spec") or {}
        config = dict(spec.get("flinkConfiguration") or {})
        session = self.kube.get("flinkdeployments", obj["metadata"]["namespace"], str(spec.get("deploymentName")))
        if session is not None:
            config = {**((session.get("spec") or {}).get("flinkConfiguration") or {}), **config}
        return str(config.get("execution.checkpointing.savepoint-dir") or "s3://savepoints").rstrip("/")

    async def _record_savepoint(
        self, plural: str, obj: dict[str, Any], location: str, trigger: str, nonce: int | None
    ) -> None:
        """Where the operator records a savepoint it took: as a FlinkStateSnapshot (the job's status
        untouched) with snapshot resources, else in savepointInfo; an UPGRADE one (suspend, upgrade) also
        in jobStatus.upgradeSavepointPath (AbstractJobReconciler.setUpgradeSavepointPath)."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        job_status: dict[str, Any] = {}
        if trigger == "UPGRADE":
            job_status["upgradeSavepointPath"] = location
        if self.snapshot_resources:
            self._snapshot_counter += 1
            snapshot = f"{name}-savepoint-{trigger.lower()}-{int(time.time() * 1000)}{self._snapshot_counter}"
            kind = "FlinkDeployment" if plural == "flinkdeployments" else "FlinkSessionJob"
            await self.kube.put(
                "flinkstatesnapshots",
                ns,
                {
                    "apiVersion": "flink.apache.org/v1beta1",
                    "kind": "FlinkStateSnapshot",
                    "metadata": {"name": snapshot, "labels": {"snapshot.trigger-type": trigger}},
                    "spec": {
                        "savepoint": {"path": location, "alreadyExists": trigger == "UPGRADE"},
                        "jobReference": {"kind": kind, "name": name},
                    },
                    "status": {
                        "state": "COMPLETED",
                        "path": location,
                        "resultTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    },
                },
            )
        else:
            job_status["savepointInfo"] = {"lastSavepoint": {"location": location, "triggerNonce": nonce}}
        if job_status:
            await self.kube.set_status(plural, ns, name, {"jobStatus": job_status})

    async def periodic_savepoint(self, plural: str, ns: str, name: str) -> str:
        """What kubernetes.operator.periodic.savepoint.interval does when it comes due (a PERIODIC
        snapshot, recorded like any other the operator takes); returns its path."""
        obj = self.kube.objects[(plural, ns, name)]
        self._snapshot_counter += 1
        location = f"{self._savepoint_dir(obj)}/{name}/savepoint-periodic-{self._snapshot_counter}"
        await self._record_savepoint(plural, obj, location, "PERIODIC", None)
        return location

    async def _reconcile_snapshot(self, key: tuple[str, str, str], obj: dict[str, Any]) -> None:
        """FlinkStateSnapshotController: a new savepoint request is validated (DefaultValidator.
        validateStateSnapshot), abandoned if its job does not run (FlinkStateSnapshotUtils.
        abandonSnapshotIfJobNotRunning), else triggered and completed."""
        _, ns, name = key
        if not self.snapshot_resources or (obj.get("status") or {}).get("state"):
            return
        spec = obj.get("spec") or {}
        reference = spec.get("jobReference") or {}
        plural = "flinkdeployments" if reference.get("kind") == "FlinkDeployment" else "flinksessionjobs"
        target = self.kube.get(plural, ns, str(reference.get("name")))
        if target is None:
            error = f"Target for snapshot {ns}/{reference.get('name')} was not found"
            await self.kube.set_status("flinkstatesnapshots", ns, name, {"state": "FAILED", "error": error})
            return
        job_state = (((target.get("status") or {}).get("jobStatus") or {}).get("state")) or ""
        if job_state != "RUNNING":
            error = f"Job {reference.get('name')} is not running ({job_state or 'no job'})"
            await self.kube.set_status("flinkstatesnapshots", ns, name, {"state": "ABANDONED", "error": error})
            return
        await self.kube.set_status("flinkstatesnapshots", ns, name, {"state": "IN_PROGRESS", "triggerId": "t-1"})
        await asyncio.sleep(0.1)
        path = (spec.get("savepoint") or {}).get(
            "path"
        ) or f"{self._savepoint_dir(target)}/{target['metadata']['name']}"
        location = f"{path}/savepoint-{name}"
        await self.kube.set_status("flinkstatesnapshots", ns, name, {"state": "COMPLETED", "path": location})

    async def _tear_down(self, ns: str, name: str) -> None:
        """The JobManager's Deployment and pods go."""
        if ("deployments", ns, name) in self.kube.objects:
            await self.kube.remove("deployments", ns, name)
        for pod in [k for k in self.kube.objects if k[0] == "pods" and k[2].startswith(f"{name}-jm-")]:
            await self.kube.remove(*pod)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.paused:
                continue
            for key, obj in list(self.kube.objects.items()):
                if key not in self._busy:
                    await self._reconcile(key, obj)

    async def _reconcile(self, key: tuple[str, str, str], obj: dict[str, Any]) -> None:
        plural, ns, name = key
        if plural in ("deployments", "pods", "configmaps"):
            return  # the JobManager's Deployment and pods: written by this stand-in, not reconciled
        if plural == "flinkstatesnapshots":
            await self._reconcile_snapshot(key, obj)
            return
        # JOSDK registers the controller's finalizer (<plural>.<group>/finalizer) before the first reconcile
        # and removes it once cleanup is done: until then a delete only marks the object.
        finalizer = f"{plural}.flink.apache.org/finalizer"
        if obj["metadata"].get("deletionTimestamp"):
            self._busy.add(key)
            try:
                await self._cancel_real(key)
                await self._tear_down(ns, name)
                await asyncio.sleep(self.cleanup_delay_s)
                self._reconciled.pop(key, None)
                await self.kube.remove_finalizer(plural, ns, name, finalizer)
            finally:
                self._busy.discard(key)
            return
        if finalizer not in (obj["metadata"].get("finalizers") or []):
            await self.kube.add_finalizer(plural, ns, name, finalizer)
        spec_job = (obj.get("spec") or {}).get("job") or {}
        status = obj.get("status") or {}
        generation = int(obj["metadata"].get("generation", 1))
        # The controller validates every spec first (FlinkDeploymentController / FlinkSessionJobController
        # -> DefaultValidator); a refused spec gets status.error and is not deployed
        # (ReconciliationUtils.applyValidationErrorAndResetSpec), FAILED before a first deployment.
        if status.get("observedGeneration") != generation:
            if plural == "flinkdeployments":
                refusal = deployment_refusal(obj)
            else:
                session = self.kube.get("flinkdeployments", ns, str((obj.get("spec") or {}).get("deploymentName")))
                refusal = session_job_refusal(obj, session, self.operator_config, release=self.release)
            if refusal is not None:
                error = json.dumps({"type": VALIDATION_EXCEPTION, "message": refusal, "throwableList": []})
                if status.get("error") != error:
                    never_deployed = key not in self._reconciled
                    update: dict[str, Any] = {"error": error}
                    if never_deployed:
                        update["lifecycleState"] = "FAILED"
                    await self.kube.set_status(plural, ns, name, update)
                return
        if plural == "flinkdeployments" and "job" not in (obj.get("spec") or {}):
            if status.get("observedGeneration") != generation:  # a session cluster: JobManager only
                await self.kube.set_status(
                    plural, ns, name, {"observedGeneration": generation, "jobManagerDeploymentStatus": "DEPLOYING"}
                )
                await asyncio.sleep(self.deploy_delay_s)
                await self.kube.set_status(
                    plural, ns, name, {"lifecycleState": "STABLE", "jobManagerDeploymentStatus": "READY"}
                )
            return
        job_status = status.get("jobStatus") or {}
        last = (job_status.get("savepointInfo") or {}).get("lastSavepoint") or {}
        nonce = spec_job.get("savepointTriggerNonce")
        if status.get("observedGeneration") == generation:
            # A new savepointTriggerNonce on a running job: a MANUAL savepoint (AbstractJobReconciler.
            # triggerSnapshotIfNeeded): a FlinkStateSnapshot where snapshot resources are on, else the
            # legacy savepointInfo with the nonce.
            done = self._manual_nonces.get(key) if self.snapshot_resources else last.get("triggerNonce")
            if nonce and nonce != done and job_status.get("state") == "RUNNING":
                self._manual_nonces[key] = nonce
                location = f"{self._savepoint_dir(obj)}/{name}/savepoint-{nonce}"
                await self._record_savepoint(plural, obj, location, "MANUAL", nonce)
            return
        # Only a change beyond the nonces is a new spec to deploy; a nonce alone is just observed.
        core = copy.deepcopy(obj.get("spec") or {})
        for nonce_key in ("savepointTriggerNonce", "restartNonce"):
            core.get("job", {}).pop(nonce_key, None)
        uid = obj["metadata"].get("uid")
        previous = self._reconciled.get(key)
        if previous is not None and previous == (uid, core):
            await self.kube.set_status(plural, ns, name, {"observedGeneration": generation})
            return
        self._reconciled[key] = (uid, core)
        running_before = (
            previous is not None
            and previous[0] == uid
            and job_status.get("state") == "RUNNING"
            and status.get("lifecycleState") == "STABLE"
        )
        self._busy.add(key)
        try:
            if spec_job.get("state", "running") == "running" and running_before:
                # An upgrade: the operator suspends the job with the spec's upgrade mode, then redeploys.
                upgrade: dict[str, Any] = {"observedGeneration": generation, "lifecycleState": "UPGRADING"}
                if spec_job.get("upgradeMode") == "savepoint":
                    upgrade["jobStatus"] = {"state": "FINISHED"}
                await self.kube.set_status(plural, ns, name, upgrade)
                if spec_job.get("upgradeMode") == "savepoint":
                    location = f"{self._savepoint_dir(obj)}/{name}/savepoint-upgrade-{generation}"
                    await self._record_savepoint(plural, obj, location, "UPGRADE", None)
                await self._cancel_real(key)
                await asyncio.sleep(self.deploy_delay_s)
            if spec_job.get("state", "running") == "running" and plural == "flinksessionjobs":
                # The operator fetches the jar before it submits the job (SessionJobReconciler ->
                # ArtifactManager.fetch); a failed fetch is the reconcile's error, tried again later.
                problem = await self._fetch_jar(str(spec_job.get("jarURI") or ""))
                if problem is not None:
                    self._reconciled.pop(key, None)
                    error = json.dumps({"type": "java.io.IOException", "message": problem, "throwableList": []})
                    await self.kube.set_status(plural, ns, name, {"error": error})
                    return
            uri = str(spec_job.get("jarURI") or "")
            remote = "://" in uri and not uri.startswith("local://")
            if spec_job.get("state", "running") == "running" and plural == "flinkdeployments" and remote:
                # Flink's JobManager (1.19+) fetches a remote jarURI before it runs the job
                # (KubernetesApplicationClusterEntrypoint -> ArtifactFetchManager); plain http only
                # with user.artifacts.raw-http-enabled. A failed fetch fails the JobManager.
                config = (obj.get("spec") or {}).get("flinkConfiguration") or {}
                raw_http = str(config.get("user.artifacts.raw-http-enabled", "false")).lower() == "true"
                problem = (
                    "raw HTTP endpoints are not enabled (user.artifacts.raw-http-enabled)"
                    if uri.startswith("http://") and not raw_http
                    else await self._fetch_jar(uri)
                )
                if problem is not None:
                    await self.kube.set_status(
                        plural,
                        ns,
                        name,
                        {
                            "observedGeneration": generation,
                            "lifecycleState": "DEPLOYED",
                            "jobManagerDeploymentStatus": "ERROR",
                            "jobStatus": {"state": "FAILED"},
                            "error": json.dumps({"type": "org.apache.flink.util.FlinkRuntimeException",
                                                 "message": f"Could not fetch the job's artifacts: {problem}",
                                                 "throwableList": []}),
                        },
                    )  # fmt: skip
                    return
            if spec_job.get("state", "running") == "running":
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "observedGeneration": generation,
                        "lifecycleState": "DEPLOYED",
                        "jobManagerDeploymentStatus": "DEPLOYING",
                        "jobStatus": {"state": "RECONCILING"},  # submitted, not yet observed
                    },
                )
                await asyncio.sleep(self.deploy_delay_s)
                if key in self.kube.objects:
                    if plural == "flinkdeployments":
                        await self.kube.put(
                            "deployments",
                            ns,
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "metadata": {
                                    "name": name,
                                    "labels": {
                                        "type": "flink-native-kubernetes",
                                        "app": name,
                                        "component": "jobmanager",
                                    },
                                },
                                "spec": {"replicas": 1},
                                "status": {"replicas": 1, "readyReplicas": 1},
                            },
                        )
                        await self.kube.put("pods", ns, jobmanager_pod(name, f"{name}-jm-{generation}"))
                    job_id = uuid.uuid4().hex
                    if self.flink is not None:
                        await self._cancel_real(key)
                        job_id = await self._run_real(key, spec_job, (obj.get("spec") or {}).get("flinkConfiguration"))
                    await self.kube.set_status(
                        plural,
                        ns,
                        name,
                        {
                            "lifecycleState": "STABLE",
                            "jobManagerDeploymentStatus": "READY",
                            "jobStatus": {"state": "RUNNING", "jobId": job_id},
                            "error": None,
                        },
                    )
                return
            await self._cancel_real(key)  # suspended: the job stops
            if ("deployments", ns, name) in self.kube.objects:
                self._reconciled.pop(key, None)  # not done: the next pass writes the suspended status
                await self._tear_down(ns, name)  # suspending tears the JobManager down first
                return
            if spec_job.get("upgradeMode") == "savepoint":
                location = f"{self._savepoint_dir(obj)}/{name}/savepoint-stop-{generation}"
                await self._record_savepoint(plural, obj, location, "UPGRADE", None)
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "observedGeneration": generation,
                        "lifecycleState": "SUSPENDED",
                        "jobStatus": {"state": "FINISHED"},
                    },
                )
            else:
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "observedGeneration": generation,
                        "lifecycleState": "SUSPENDED",
                        "jobStatus": {"state": "CANCELED"},
                    },
                )
        finally:
            self._busy.discard(key)
