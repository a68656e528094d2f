"""A stand-in for the Flink Kubernetes Operator in tests: it reacts to resource specs in the emulator
by writing statuses as the operator would (deploy, suspend with or without a savepoint, take a
savepoint for a new nonce). It writes directly, so API faults injected for clients do not stop it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from tests.k8s_emulator import KubeEmulator


class OperatorSimulator:
    def __init__(self, kube: KubeEmulator, deploy_delay_s: float = 0.3) -> None:
        self.kube = kube
        self.deploy_delay_s = deploy_delay_s
        self.paused = False
        self._task: asyncio.Task[None] | None = None
        self._busy: set[tuple[str, str, str]] = set()

    def start(self) -> OperatorSimulator:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
        if plural == "deployments":
            return  # the JobManager's Deployment: written by this stand-in, not reconciled
        spec_job = (obj.get("spec") or {}).get("job") or {}
        status = obj.get("status") or {}
        generation = int(obj["metadata"].get("generation", 1))
        job_status = status.get("jobStatus") or {}
        last = (job_status.get("savepointInfo") or {}).get("lastSavepoint") or {}
        nonce = spec_job.get("savepointTriggerNonce")
        if status.get("observedGeneration") == generation:
            if nonce and nonce != last.get("triggerNonce") and job_status.get("state") == "RUNNING":
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "jobStatus": {
                            "savepointInfo": {
                                "lastSavepoint": {
                                    "location": f"s3://savepoints/{name}/savepoint-{nonce}",
                                    "triggerNonce": nonce,
                                }
                            }
                        }
                    },
                )
            return
        self._busy.add(key)
        try:
            if spec_job.get("state", "running") == "running":
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "observedGeneration": generation,
                        "lifecycleState": "DEPLOYED",
                        "jobManagerDeploymentStatus": "DEPLOYING",
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
                    await self.kube.set_status(
                        plural,
                        ns,
                        name,
                        {
                            "lifecycleState": "STABLE",
                            "jobManagerDeploymentStatus": "READY",
                            "jobStatus": {"state": "RUNNING", "jobId": uuid.uuid4().hex},
                        },
                    )
            elif ("deployments", ns, name) in self.kube.objects:
                await self.kube.remove("deployments", ns, name)  # suspending tears the JobManager down first
                return
            elif spec_job.get("upgradeMode") == "savepoint":
                n = int(last.get("triggerNonce") or 0) + 1000
                await self.kube.set_status(
                    plural,
                    ns,
                    name,
                    {
                        "observedGeneration": generation,
                        "lifecycleState": "SUSPENDED",
                        "jobStatus": {
                            "state": "FINISHED",
                            "savepointInfo": {
                                "lastSavepoint": {
                                    "location": f"s3://savepoints/{name}/savepoint-stop-{n}",
                                    "triggerNonce": None,
                                }
                            },
                        },
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
