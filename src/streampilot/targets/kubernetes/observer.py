"""Kubernetes clusters as the observer sees them: their options, API connections and list+watch
caches, and the job listing merged from three sources (the operator's resources, the JobManager
Deployments and pods, and Flink's REST API through the cluster's URL template).

Only the resources' watch can say a job is Gone; every other source refines what a job is doing,
and an error of any source is Unknown for that source alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.domain.k8s import (
    DEPLOYMENTS,
    K8S_KINDS,
    KIND_APPLICATION,
    SESSION_JOBS,
    STORAGE_FIX,
    K8sOptions,
    forbidden_keys,
    storage_problem,
)
from streampilot.domain.k8s_status import (
    RestJob,
    flink_job_id,
    jobmanager_pods,
    merge_jobmanager,
    merge_rest,
    observed_job_state,
)
from streampilot.domain.states import FlinkJobState
from streampilot.flink.client import FlinkClient, FlinkError, JobSummary
from streampilot.store.orm import Cluster
from streampilot.targets.kubernetes.errors import KubeConfigError, KubeError
from streampilot.targets.kubernetes.errors import KubeUnavailable as KubeUnavailableError
from streampilot.targets.kubernetes.watch import ResourceCache

if TYPE_CHECKING:
    from streampilot.targets.kubernetes.client import KubeApi


async def connect(kubeconfig: str | None, context: str | None, timeout_s: float = 10.0) -> KubeApi:
    """A Kubernetes API connection; the client library is loaded on first use (it costs ~50 MB)."""
    from streampilot.targets.kubernetes.client import KubeApi

    return await KubeApi.connect(kubeconfig, context, timeout_s=timeout_s)


LABELS = {"managed-by": "streampilot"}


def is_kubernetes(cluster: Cluster) -> bool:
    return cluster.kind in K8S_KINDS


def options_of(cluster: Cluster) -> K8sOptions:
    return K8sOptions.model_validate(cluster.options)


def plural_of(cluster: Cluster) -> str:
    return DEPLOYMENTS if cluster.kind == KIND_APPLICATION else SESSION_JOBS


def parse_options(kind: str, raw: dict[str, Any]) -> K8sOptions:
    try:
        options = K8sOptions.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(
            [
                FieldProblem(".".join(["options", *(str(p) for p in e["loc"])]), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None
    if kind != KIND_APPLICATION and not options.session_name:
        raise SpecError.one("options.session_name", "a kubernetes-session cluster names its session FlinkDeployment")
    if kind != KIND_APPLICATION and not options.artifact_url:
        raise SpecError.one(
            "options.artifact_url",
            "the Flink operator fetches a session job's jar itself: give the address at which it reaches "
            "streampilot, e.g. https://streampilot.example.com (see the README's Kubernetes set-up)",
        )
    forbidden = forbidden_keys(options.flink_configuration)
    if forbidden:
        raise SpecError.one(
            "options.flink_configuration",
            f"{', '.join(forbidden)} is set by the Flink operator itself (it refuses resources that set it); remove it",
        )
    problem = storage_problem(options.cluster_configuration(), options.upgrade_mode)
    if problem is not None:
        raise SpecError.one(
            "options.state_dir",
            f"the Flink operator refuses jobs without durable state storage: {problem}; {STORAGE_FIX}, "
            "or use upgrade_mode: stateless",
        )
    return options


REST_CONCURRENCY = 32  # JobManagers asked at once (application mode: one per app)


async def _rest_answers(
    urls: set[str], client_at: Callable[[str], FlinkClient], timeout_s: float
) -> dict[str, dict[str, RestJob] | str]:
    """One ``/jobs/overview`` per JobManager (per app in application mode, one for a session).

    Each answer has ``timeout_s``: a slow ingress is Unknown for its app and never holds up the tick.
    """
    gate = asyncio.Semaphore(REST_CONCURRENCY)

    async def one(url: str) -> dict[str, RestJob] | str:
        async with gate:
            try:
                jobs = await asyncio.wait_for(client_at(url).jobs_overview(), timeout_s)
            except FlinkError as exc:
                return str(exc)
            except TimeoutError:
                return f"no answer from {url} within {timeout_s:.1f} s"
        return {j.job_id: RestJob(j.state, j.tasks_running, j.tasks_total) for j in jobs}

    ordered = sorted(urls)
    return dict(zip(ordered, await asyncio.gather(*(one(u) for u in ordered)), strict=True))


async def check_connection(options: K8sOptions) -> None:
    """Registration-time checks: the kubeconfig works and the namespace exists (field errors)."""
    try:
        api = await connect(options.kubeconfig, options.context, timeout_s=5)
    except KubeConfigError as exc:
        raise SpecError.one("options.kubeconfig", str(exc)) from None
    try:
        if not await api.namespace_exists(options.namespace):
            raise SpecError.one("options.namespace", f"namespace {options.namespace!r} does not exist")
    except KubeError as exc:
        raise SpecError.one("options.kubeconfig", f"the Kubernetes API did not answer: {exc}") from None
    finally:
        await api.close()


@dataclass
class KubernetesClusters:
    """Per-cluster API connections and watch caches, created on first use."""

    apis: dict[int, KubeApi] = field(default_factory=dict)
    caches: dict[int, ResourceCache] = field(default_factory=dict)
    deployment_caches: dict[int, ResourceCache] = field(default_factory=dict)
    pod_caches: dict[int, ResourceCache] = field(default_factory=dict)
    snapshot_resources: dict[int, bool] = field(default_factory=dict)  # cluster -> FlinkStateSnapshots in use
    closed: bool = False

    async def api(self, cluster: Cluster) -> KubeApi:
        if cluster.id not in self.apis:
            o = options_of(cluster)
            self.apis[cluster.id] = await connect(o.kubeconfig, o.context)
        return self.apis[cluster.id]

    def _watched(self, store: dict[int, ResourceCache], cluster: Cluster, plural: str, selector: str) -> ResourceCache:
        if self.closed:
            raise KubeUnavailableError("the platform is shutting down")
        if cluster.id not in store:
            o = options_of(cluster)
            # Streams end every 10 s: a hung API server shows up as Unknown well within lost_after.
            cache = ResourceCache(
                lambda: connect(o.kubeconfig, o.context),
                plural,
                o.namespace,
                label_selector=selector,
                watch_timeout_s=10,
            )
            cache.start()
            store[cluster.id] = cache
        return store[cluster.id]

    def cache(self, cluster: Cluster) -> ResourceCache:
        """The cluster's FlinkDeployments or FlinkSessionJobs made by streampilot."""
        return self._watched(self.caches, cluster, plural_of(cluster), "managed-by=streampilot")

    def deployments(self, cluster: Cluster) -> ResourceCache:
        """The operator's JobManager Deployments (application mode): existence and readiness."""
        return self._watched(self.deployment_caches, cluster, "deployments", "type=flink-native-kubernetes")

    def pods(self, cluster: Cluster) -> ResourceCache:
        """The JobManager pods (application mode): which pod runs, and how often it restarted."""
        return self._watched(self.pod_caches, cluster, "pods", "component=jobmanager,type=flink-native-kubernetes")

    def remember(self, cluster: Cluster, resource: dict[str, Any]) -> None:
        """Put a resource we just wrote into the cache at once, ahead of its watch event."""
        cache = self.caches.get(cluster.id)
        if cache is not None:
            cache.items[resource["metadata"]["name"]] = resource

    def resources(self, cluster: Cluster) -> dict[str, dict[str, Any]] | str:
        """The cluster's resources by name from the watch cache, or why they cannot be trusted now."""
        if self.closed:
            return "the platform is shutting down"
        return self.cache(cluster).snapshot()

    def rest_of(self, cluster: Cluster, name: str) -> tuple[str, str] | None:
        """Flink's REST URL and job id for the app's resource, when a URL template is set and the job known."""
        resources = self.resources(cluster)
        if isinstance(resources, str) or name not in resources:
            return None
        url, job_id = options_of(cluster).rest_url(name), flink_job_id(resources[name])
        return (url, job_id) if url and job_id else None

    async def listing(
        self, cluster: Cluster, client_at: Callable[[str], FlinkClient], rest_timeout_s: float = 3.0
    ) -> dict[str, JobSummary] | str:
        """What the three sources say, as the tracker's job listing (or why it is Unknown).

        The operator's resources decide existence (only their watch can say Gone); the JobManager
        Deployments and Flink's REST API refine what the job is doing. An error of either refinement
        is Unknown for that source alone.
        """
        snapshot = self.resources(cluster)
        if isinstance(snapshot, str):
            return snapshot
        deployments: dict[str, dict[str, Any]] | None = None
        pods: dict[str, dict[str, Any]] | str = "session mode: the JobManager belongs to the session"
        if cluster.kind == KIND_APPLICATION:
            found = self.deployments(cluster).snapshot()
            if isinstance(found, str):
                return f"JobManager deployments: {found}"
            deployments = found
            pods = self.pods(cluster).snapshot()  # stale pods say nothing: restart counts are not known
        options = options_of(cluster)
        urls = {name: options.rest_url(name) for name in snapshot}
        answers = await _rest_answers({u for u in urls.values() if u}, client_at, rest_timeout_s)
        out: dict[str, JobSummary] = {}
        for name, resource in snapshot.items():
            state, detail = observed_job_state(resource)
            state = state or FlinkJobState.INITIALIZING  # the resource exists: never "gone"
            if deployments is not None and state == FlinkJobState.RUNNING:
                state, detail = merge_jobmanager(state, detail, deployments.get(name))
            job_id = flink_job_id(resource)
            url = urls[name]
            rest: RestJob | str | None = None
            if url and job_id:
                answer = answers[url]
                rest = answer if isinstance(answer, str) else answer.get(job_id, RestJob(None))
            merged = merge_rest(state, detail, job_id, rest)
            out[name] = JobSummary(
                job_id=name,
                name=name,
                state=merged.state.value,
                tasks_running=merged.tasks_running,
                tasks_total=merged.tasks_total,
                start_time_ms=0,
                detail=merged.detail,
                pods=None if isinstance(pods, str) else jobmanager_pods(pods, name),
            )
        return out

    async def close(self) -> None:
        self.closed = True
        for cache in [*self.caches.values(), *self.deployment_caches.values(), *self.pod_caches.values()]:
            await cache.stop()
        self.deployment_caches.clear()
        self.pod_caches.clear()
        for api in self.apis.values():
            await api.close()
        self.caches.clear()
        self.apis.clear()
