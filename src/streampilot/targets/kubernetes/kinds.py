"""The two kinds of Kubernetes target: an application cluster per app, or jobs on a session cluster
whose own FlinkDeployment streampilot can start and stop like a local cluster."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import DEPLOYMENTS, session_deployment
from streampilot.services.errors import Conflict, Unavailable
from streampilot.targets.kubernetes.errors import KubeError, KubeNotFound, KubeRejected
from streampilot.targets.kubernetes.observer import LABELS, options_of
from streampilot.targets.kubernetes.target import KubernetesTarget, delete_and_wait

if TYPE_CHECKING:
    from streampilot.targets.kubernetes.client import KubeApi


class KubernetesApplicationTarget(KubernetesTarget):
    """``kubernetes-application``: a FlinkDeployment per app, its own JobManager."""


class KubernetesSessionTarget(KubernetesTarget):
    """``kubernetes-session``: a FlinkSessionJob per app on the cluster's session FlinkDeployment, which
    is started and stopped like a local cluster. A session that already exists is used as it is; only
    one streampilot created is ever deleted.
    """

    async def describe(self) -> dict[str, Any]:
        out = await super().describe()
        if out.get("reachable"):
            out["session"] = await self.state()
        return out

    async def start_cluster(self, timeout_s: float) -> str:
        return await self._start_session(timeout_s)

    async def stop_cluster(self) -> None:
        await self._stop_session()

    async def _get(self, api: KubeApi) -> dict[str, Any] | None:
        o = options_of(self.cluster)
        assert o.session_name is not None
        try:
            return await api.get(DEPLOYMENTS, o.namespace, o.session_name)
        except KubeNotFound:
            return None
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None

    async def _start_session(self, timeout_s: float) -> str:
        """Create the session deployment unless it exists; wait until its JobManager is ready."""
        o = options_of(self.cluster)
        api = await self.clusters.api(self.cluster)
        how = "exists"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        current = await self._get(api)
        while current is not None and (current.get("metadata") or {}).get("deletionTimestamp"):
            if loop.time() >= deadline:  # stopped a moment ago: the operator still tears it down
                raise Unavailable(f"session {o.session_name} is still being deleted; start it again once it is gone")
            await asyncio.sleep(0.3)
            current = await self._get(api)
        if current is None:
            labels = {**LABELS, "streampilot-cluster": str(self.cluster.id)}
            try:
                await api.create(DEPLOYMENTS, o.namespace, session_deployment(o, labels))
            except KubeRejected as exc:
                raise SpecError.one("options", f"Kubernetes refused the session deployment: {exc}") from None
            except KubeError as exc:
                raise Unavailable(f"Kubernetes API did not answer: {exc}") from None
            how = "created"
        while loop.time() < deadline:
            current = await self._get(api)
            if current is not None and (current.get("status") or {}).get("jobManagerDeploymentStatus") == "READY":
                return how
            await asyncio.sleep(0.3)
        raise Unavailable(f"session {o.session_name} not ready after {timeout_s:.0f} s; see its FlinkDeployment")

    async def _stop_session(self) -> None:
        o = options_of(self.cluster)
        api = await self.clusters.api(self.cluster)
        current = await self._get(api)
        if current is None:
            return
        labels = (current.get("metadata") or {}).get("labels") or {}
        if labels.get("streampilot-cluster") != str(self.cluster.id):
            raise Conflict(
                f"session {o.session_name} was not created by streampilot for this cluster; "
                f"delete it where it was made (e.g. kubectl delete flinkdeployment {o.session_name})"
            )
        try:
            await delete_and_wait(
                api, DEPLOYMENTS, o.namespace, str(o.session_name), self.ctx.settings.flink.local_ready_timeout_s
            )
        except KubeError as exc:
            raise Unavailable(f"Kubernetes API did not answer: {exc}") from None

    async def state(self) -> str:
        """The session's JobManager as the operator reports it (or why it is not known)."""
        api = await self.clusters.api(self.cluster)
        try:
            current = await self._get(api)
        except Unavailable as exc:
            return f"unknown ({exc})"
        if current is None:
            return "absent"
        return str((current.get("status") or {}).get("jobManagerDeploymentStatus") or "DEPLOYING")
