"""The Flink Kubernetes Operator's own validation of what it is asked to run, for the stand-in and the
conformance tests. Written from the operator's DefaultValidator (flink-kubernetes-operator/src/main/
java/org/apache/flink/kubernetes/operator/validation/DefaultValidator.java, release-1.13.0 and
release-1.15.0) and its config options (KubernetesOperatorConfigOptions); each rule names the check
it follows. The first failing rule is the answer, as in the operator (``firstPresent``); the operator
writes it to ``status.error`` and does not deploy the resource.

The operator's own default configuration (its ConfigMap) is taken as empty: every directory a job
needs comes from the resource itself.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlparse

# DefaultValidator.DEPLOYMENT_NAME_PATTERN
_NAME = re.compile(r"^[a-z]([-a-z\d]{0,43}[a-z\d])?$")
# DefaultValidator.FORBIDDEN_CONF_KEYS
_FORBIDDEN = ("kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id")
# FlinkVersion.isSupported: v1_15 and newer (and the Java enum goes up to v2_4 in 1.15.0).
_SUPPORTED = re.compile(r"^v(1_(1[5-9]|20)|2_[0-4])$")
# CheckpointingOptions.CHECKPOINTS_DIRECTORY / SAVEPOINT_DIRECTORY with their deprecated fallback keys.
_CHECKPOINT_DIR = ("execution.checkpointing.dir", "state.checkpoints.dir")
_SAVEPOINT_DIR = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")
# KubernetesOperatorConfigOptions.JAR_URI_ALLOWED_SCHEMES (1.15.0; default "https") and
# JAR_URI_DISALLOW_RESTRICTED_HOSTS (1.15.0; default true).
ALLOWED_SCHEMES_KEY = "kubernetes.operator.user.artifacts.allowed-schemes"
RESTRICTED_HOSTS_KEY = "kubernetes.operator.user.artifacts.disallow-restricted-hosts"


def _restricted(host: str) -> str | None:
    """DefaultValidator.validateJarURI: a host resolving to a loopback, link-local, site-local, wildcard
    or multicast address is refused (Java's InetAddress.isSiteLocalAddress: 10/8, 172.16/12, 192.168/16)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return f"jarURI host '{host}' cannot be resolved"
    for raw in addresses:
        ip = ipaddress.ip_address(raw)
        if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_multicast:
            return f"jarURI host '{host}' resolves to a restricted address"
    return None


def _set(config: dict[str, str], keys: tuple[str, ...]) -> bool:
    return any(str(config.get(k) or "").strip() for k in keys)


def _flat(config: Any) -> dict[str, str]:
    """flinkConfiguration may be nested YAML since 1.11 (FlinkConfiguration.asFlatMap)."""
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(node)

    walk("", config or {})
    return out


def _job_spec(job: dict[str, Any] | None, config: dict[str, str]) -> str | None:
    """DefaultValidator.validateJobSpec."""
    if not job:
        return None
    mode = job.get("upgradeMode", "stateless")
    if mode != "stateless" and not _set(config, _CHECKPOINT_DIR):
        return f"Checkpoint directory[{_CHECKPOINT_DIR[0]}] must be defined for last-state and savepoint upgrade modes"
    if not _set(config, _SAVEPOINT_DIR):
        if mode == "savepoint":
            return f"Job could not be upgraded with savepoint while config key[{_SAVEPOINT_DIR[0]}] is not set"
        if job.get("savepointTriggerNonce") is not None:
            return (
                "Savepoint could not be manually triggered for the running job while config "
                f"key[{_SAVEPOINT_DIR[0]}] is not set"
            )
    if int(job.get("parallelism") or 0) < 1:
        return "Job parallelism must be larger than 0"
    return None


def _config(config: dict[str, str]) -> str | None:
    """DefaultValidator.validateFlinkDeploymentConfig (the keys it forbids)."""
    for key in _FORBIDDEN:
        if key in config:
            return f"Forbidden Flink config key: {key}"
    return None


def deployment_refusal(deployment: dict[str, Any]) -> str | None:
    """DefaultValidator.validateDeployment."""
    spec = deployment.get("spec") or {}
    name = deployment["metadata"]["name"]
    config = _flat(spec.get("flinkConfiguration"))
    if not _NAME.match(name):
        return f"The FlinkDeployment name: {name} is invalid"
    version = spec.get("flinkVersion")
    if version is None:
        return "Flink Version must be defined."
    if not _SUPPORTED.match(str(version)):
        return f"Flink version {version} is not supported by this operator version"
    for problem in (
        _config(config),
        _job_spec(spec.get("job"), config),
        None
        if ((spec.get("jobManager") or {}).get("resource") or {}).get("memory")
        else "JobManager resource memory must be defined using `spec.jobManager.resource.memory`",
        None
        if ((spec.get("taskManager") or {}).get("resource") or {}).get("memory")
        else "TaskManager resource memory must be defined using `spec.taskManager.resource.memory`",
        None if spec.get("serviceAccount") else "spec.serviceAccount must be defined.",
    ):
        if problem is not None:
            return problem
    return None


def session_job_refusal(
    session_job: dict[str, Any],
    session: dict[str, Any] | None,
    operator_config: dict[str, str] | None = None,
    release: str = "release-1.15.0",
) -> str | None:
    """DefaultValidator.validateSessionJob (with its session FlinkDeployment when that exists)."""
    spec = session_job.get("spec") or {}
    deployment = str(spec.get("deploymentName") or "")
    if not _NAME.match(deployment):
        return f"The FlinkDeployment name: {deployment} is invalid"
    job = spec.get("job")
    if not job:
        return "The job spec should not be empty"
    if release >= "release-1.15.0":  # validateSessionJobJarURI: new in 1.15.0
        allowed = (operator_config or {}).get(ALLOWED_SCHEMES_KEY, "https")
        schemes = {s.strip().lower() for s in allowed.split(",") if s.strip()}
        scheme = urlparse(str(job.get("jarURI") or "")).scheme.lower()
        if not scheme:
            return "jarURI must include a scheme"
        if scheme not in schemes:
            return (
                f"jarURI scheme '{scheme}' is not in the allowlist {sorted(schemes)}. "
                f"Configure '{ALLOWED_SCHEMES_KEY}' to extend the allowlist."
            )
        restricted = (operator_config or {}).get(RESTRICTED_HOSTS_KEY, "true").lower() == "true"
        if scheme in ("http", "https") and restricted:
            host = urlparse(str(job.get("jarURI"))).hostname
            if not host:
                return "jarURI must include a host for http/https schemes"
            problem = _restricted(host)
            if problem is not None:
                return problem
    if session is None:
        return None
    session_spec = session.get("spec") or {}
    if session_spec.get("job") is not None:
        return "Can not submit session job to application cluster"
    config = {**_flat(session_spec.get("flinkConfiguration")), **_flat(spec.get("flinkConfiguration"))}
    return _job_spec(job, config)
