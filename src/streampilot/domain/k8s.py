"""Kubernetes targets as values: validated options and the Flink Kubernetes Operator resources built from
an application's launch configuration (what their status says: k8s_status.py)."""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

GROUP, VERSION = "flink.apache.org", "v1beta1"
DEPLOYMENTS, SESSION_JOBS = "flinkdeployments", "flinksessionjobs"
SNAPSHOTS = "flinkstatesnapshots"  # operator 1.10+: savepoints and checkpoints as resources of their own
KIND_APPLICATION, KIND_SESSION = "kubernetes-application", "kubernetes-session"
K8S_KINDS = (KIND_APPLICATION, KIND_SESSION)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# registry/path:tag@digest, as container runtimes accept them
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|K|M|G|T|m|g|mb|gb)?$")


def _label(v: str) -> str:
    if not _DNS_LABEL.match(v):
        raise ValueError(f"{v!r} is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)")
    return v


def _image(v: str) -> str:
    if not _IMAGE.match(v):
        raise ValueError(f"{v!r} is not a valid container image reference (e.g. flink:2.3.0-java17)")
    return v


def _cpu(v: str) -> str:
    if not _CPU.match(str(v)):
        raise ValueError(f"{v!r} is not a CPU quantity (e.g. 1, 0.5 or 500m)")
    return str(v)


def _memory(v: str) -> str:
    if not _MEMORY.match(str(v)):
        raise ValueError(f"{v!r} is not a memory quantity (e.g. 1024m, 2g or 2Gi)")
    return str(v)


TEMPLATE_FIELDS = ("name", "namespace")


def _rest_template(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError(
            f"{v!r} is not an http:// or https:// URL template (e.g. http://{{name}}-rest.{{namespace}}:8081)"
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a valid URL template: {exc}") from None
    unknown = [f for f in fields if f not in TEMPLATE_FIELDS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}} in the URL template; use {{name}} (the FlinkDeployment) "
            "and {namespace}"
        )
    return v


def _artifact_url(v: str) -> str:
    parsed = urlparse(v)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise ValueError(f"{v!r} is not an http(s) base URL like https://streampilot.example.com")
    return v.rstrip("/")


Name = Annotated[str, AfterValidator(_label)]
Image = Annotated[str, AfterValidator(_image)]
Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]


# spec.flinkVersion as the API server accepts it: the enum of the operator's CRDs (helm chart crds/, the
# same list in 1.13.0 and 1.15.0: v1_13 ... v2_2; the operator's FlinkVersion.java has v2_3 from 1.15.0
# but the CRD it ships does not, so the API server refuses v2_3), less those the operator itself refuses
# (DefaultValidator.validateFlinkVersion: FlinkVersion.isSupported, v1_15 and newer).
FLINK_VERSIONS = ("v1_15", "v1_16", "v1_17", "v1_18", "v1_19", "v1_20", "v2_0", "v2_1", "v2_2")
PLATFORM_FLINK = "2.3"  # the Flink that streampilot's SQL runner and default images are built for
_VERSION = re.compile(r"^v?(\d+)[._](\d+)(?:[._]\d+)?$")
# the official images: flink:2.3.0-java17, apache/flink:2.3.0, docker.io/library/flink:2.3
_OFFICIAL_IMAGE = re.compile(r"^(?:(?:docker\.io/)?(?:library/|apache/))?flink:(\d+\.\d+)")


def _parse_version(v: str) -> tuple[int, int] | None:
    m = _VERSION.match(v.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


_KNOWN = [(v, (int(v[1]), int(v.split("_")[1]))) for v in FLINK_VERSIONS]


def operator_flink_version(version: str) -> str:
    """spec.flinkVersion for a Flink version ("2.3", "2.3.0" or "v2_2"): its own value when the CRD has
    it, else the newest of the same major below it (a 2.3 image runs as v2_2: the operator treats 2.x
    alike); ValueError when the operator cannot run it."""
    parsed = _parse_version(version)
    if parsed is None:
        raise ValueError(f"{version!r} is not a Flink version (e.g. 2.3 or v2_2)")
    major, minor = parsed
    fitting = [v for v, (ma, mi) in _KNOWN if ma == major and mi <= minor]
    if not fitting:
        raise ValueError(
            f"Flink {major}.{minor} cannot run on the Flink Kubernetes Operator (its CRD accepts "
            f"{', '.join(FLINK_VERSIONS)}); use an image of Flink 1.15 or newer"
        )
    return fitting[-1]


def _flink_version(v: str | None) -> str | None:
    if v is not None:
        operator_flink_version(v)
    return v


def _state_dir(v: str | None) -> str | None:
    if v is not None and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", v):
        raise ValueError(f"{v!r} is not a storage URI (e.g. s3://bucket/flink, gs://bucket/flink, abfss://...)")
    return v.rstrip("/") if v else v


# Flink 2.x's names, and the deprecated ones Flink still reads (CheckpointingOptions' fallback keys).
CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")
SAVEPOINT_DIR_KEYS = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")


def storage_problem(config: dict[str, str], upgrade_mode: str, savepoint: bool = False) -> str | None:
    """Why the operator would refuse a job with this effective Flink configuration (its validator:
    DefaultValidator.validateJobSpec), or None. ``savepoint``: a savepoint is asked for (the nonce, or a
    suspend with upgrade mode savepoint), which needs the savepoint directory in any upgrade mode."""

    def has(keys: tuple[str, ...]) -> bool:
        return any(config.get(k, "").strip() for k in keys)

    if upgrade_mode != "stateless" and not has(CHECKPOINT_DIR_KEYS):
        return f"upgrade mode {upgrade_mode} needs a checkpoint directory ({CHECKPOINT_DIR_KEYS[0]})"
    if (upgrade_mode == "savepoint" or savepoint) and not has(SAVEPOINT_DIR_KEYS):
        what = "a savepoint" if savepoint else f"upgrade mode {upgrade_mode}"
        return f"{what} needs a savepoint directory ({SAVEPOINT_DIR_KEYS[0]})"
    return None


# Keys the operator sets itself and refuses in a resource (DefaultValidator.FORBIDDEN_CONF_KEYS).
OPERATOR_KEYS = ("kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id")


def forbidden_keys(config: Mapping[str, object]) -> list[str]:
    return [k for k in OPERATOR_KEYS if k in config]


STORAGE_FIX = (
    "set the cluster's options.state_dir (e.g. s3://bucket/flink), or both directories in options.flink_configuration"
)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: Cpu = "1"
    memory: Memory = "1024m"


class K8sOptions(BaseModel):
    """A Kubernetes cluster's settings (the ``options`` of a kubernetes-* cluster)."""

    model_config = ConfigDict(extra="forbid")
    kubeconfig: str | None = Field(default=None, description="Path of a kubeconfig file; none: in-cluster")
    context: str | None = None
    namespace: Name = "default"
    service_account: Name = "flink"
    image: Image = "flink:2.3.0-java17"
    flink_version: Annotated[str | None, AfterValidator(_flink_version)] = Field(
        default=None,
        description="The image's Flink version (2.3) or the operator's value (v2_2); default: read from an "
        "official flink:X.Y image's tag, else Flink " + PLATFORM_FLINK,
    )
    state_dir: Annotated[str | None, AfterValidator(_state_dir)] = Field(
        default=None,
        description="Durable storage for checkpoints and savepoints (e.g. s3://bucket/flink): "
        "execution.checkpointing.dir is <state_dir>/checkpoints and execution.checkpointing.savepoint-dir "
        "<state_dir>/savepoints unless flink_configuration or the app sets them",
    )
    jobmanager: Resources = Field(default_factory=Resources)
    taskmanager: Resources = Field(default_factory=Resources)
    pod_template: dict[str, Any] | None = None
    upgrade_mode: Literal["stateless", "savepoint", "last-state"] = "savepoint"
    session_name: Name | None = Field(default=None, description="kubernetes-session: its FlinkDeployment")
    flink_configuration: dict[str, str] = Field(
        default_factory=dict,
        description="Flink configuration of every app's cluster (application mode) or of the session "
        "cluster (session mode); an app's own settings win",
    )
    jar_uri: str = Field(
        default="local:///opt/flink/usrlib/job.jar", description="Where the application's jar is inside the image"
    )
    sql_runner_uri: str = Field(
        default="local:///opt/flink/usrlib/streampilot-sql-runner.jar",
        description="Where streampilot's SQL runner jar is inside the image (`streampilot sql-runner-jar`)",
    )
    python_jar_uri: str = Field(
        default="local:///opt/flink/opt/flink-python-2.3.0.jar",
        description="Flink's flink-python jar inside the image (PyFlink apps, application mode)",
    )
    python_executable: str = Field(default="python3", description="The image's Python with apache-flink installed")
    artifact_url: Annotated[str, AfterValidator(_artifact_url)] | None = Field(
        default=None,
        description="Where the Flink operator (session jobs) and Flink's JobManager (application mode, Flink "
        "1.19+) reach streampilot to fetch jobs' jars, e.g. https://streampilot.example.com; required for "
        "kubernetes-session (its scheme must be in the operator's kubernetes.operator.user.artifacts."
        "allowed-schemes)",
    )
    rest_url_template: Annotated[str, AfterValidator(_rest_template)] | None = Field(
        default=None,
        description="Flink's REST API of a FlinkDeployment, e.g. http://{name}-rest.{namespace}:8081 or an "
        "ingress; {name} is the app's FlinkDeployment (application mode) or the session's (session mode)",
    )

    @property
    def flink(self) -> str:
        """The Flink version the pods run: the option, the official image's tag, or the platform's."""
        if self.flink_version is not None:
            return self.flink_version
        m = _OFFICIAL_IMAGE.match(self.image)
        return m.group(1) if m else PLATFORM_FLINK

    @property
    def operator_flink_version(self) -> str:
        return operator_flink_version(self.flink)

    def cluster_configuration(self) -> dict[str, str]:
        """The Flink configuration every job of the cluster gets: state storage, then flink_configuration."""
        config: dict[str, str] = {}
        if self.state_dir:
            config[CHECKPOINT_DIR_KEYS[0]] = f"{self.state_dir}/checkpoints"
            config[SAVEPOINT_DIR_KEYS[0]] = f"{self.state_dir}/savepoints"
        config.update(self.flink_configuration)
        return config

    def rest_url(self, resource: str) -> str | None:
        """Where Flink's REST API answers for the job of ``resource`` (None: not configured)."""
        if not self.rest_url_template:
            return None
        name = self.session_name if self.session_name else resource
        return self.rest_url_template.format(name=name, namespace=self.namespace).rstrip("/")


def resource_name(app_id: int) -> str:
    return f"sp-app-{app_id}"


def same_flink(a: str, b: str) -> bool:
    """Whether two Flink versions ("2.3.0", "2.3") are the same minor release."""
    return _parse_version(a) is not None and _parse_version(a) == _parse_version(b)


def fetches_jars(o: K8sOptions) -> bool:
    """Whether an application cluster's JobManager fetches its job's jar from streampilot: Flink fetches a
    remote jarURI itself from 1.19 on (ArtifactFetchManager in application mode), if there is a URL."""
    parsed = _parse_version(o.flink)
    return bool(o.artifact_url) and parsed is not None and parsed >= (1, 19)


def cores(cpu: str) -> float:
    """The operator takes CPU as a number of cores: '500m' -> 0.5."""
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _common_spec(o: K8sOptions, config: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": o.image,
        "flinkVersion": o.operator_flink_version,
        "serviceAccount": o.service_account,
        "flinkConfiguration": dict(config),
        "jobManager": {"resource": {"cpu": cores(o.jobmanager.cpu), "memory": o.jobmanager.memory}},
        "taskManager": {"resource": {"cpu": cores(o.taskmanager.cpu), "memory": o.taskmanager.memory}},
    }
    if o.pod_template:
        spec["podTemplate"] = o.pod_template
    return spec


def job_section(
    *,
    jar_uri: str,
    entry_class: str | None,
    args: list[str],
    parallelism: int,
    state: str,
    upgrade_mode: str,
    restore: str | None,
    allow_non_restored: bool,
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "jarURI": jar_uri,
        "args": list(args),
        "parallelism": parallelism,
        "state": state,
        "upgradeMode": upgrade_mode,
    }
    if entry_class:
        job["entryClass"] = entry_class
    if restore:
        job["initialSavepointPath"] = restore
        job["allowNonRestoredState"] = allow_non_restored
    return job


def application_deployment(
    name: str, o: K8sOptions, config: dict[str, str], job: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """A FlinkDeployment that is its own application cluster."""
    spec = _common_spec(o, {**o.cluster_configuration(), **config})
    spec["job"] = job
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": o.namespace, "labels": labels},
        "spec": spec,
    }


def session_deployment(o: K8sOptions, labels: dict[str, str]) -> dict[str, Any]:
    """A job-less FlinkDeployment: the session cluster that FlinkSessionJobs run on."""
    assert o.session_name is not None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlinkDeployment",
        "metadata": {"name": o.session_name, "namespace": o.namespace, "labels": labels},
        "spec": _common_spec(o, o.cluster_configuration()),
    }


def session_job(
    name: str, o: K8sOptions, config: dict[str, str], job: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """A FlinkSessionJob on the cluster's session FlinkDeployment."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlinkSessionJob",
        "metadata": {"name": name, "namespace": o.namespace, "labels": labels},
        "spec": {"deploymentName": o.session_name, "flinkConfiguration": dict(config), "job": job},
    }


def savepoint_snapshot(
    name: str, namespace: str, job_kind: str, job_name: str, labels: dict[str, str]
) -> dict[str, Any]:
    """A FlinkStateSnapshot asking the operator for a savepoint of a job (into the job's configured
    savepoint directory; kept when the resource is deleted; no retries: a failure is reported)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlinkStateSnapshot",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "savepoint": {"alreadyExists": False, "disposeOnDelete": False},
            "jobReference": {"kind": job_kind, "name": job_name},
            "backoffLimit": 0,
        },
    }


MAIN_CONTAINER = "flink-main-container"  # the operator merges pod templates into this container by name
SCRIPT_DIR = "/opt/streampilot/app"
SCRIPT_VOLUME = "streampilot-app"


CONFIG_MAP_LIMIT = 1024 * 1024  # the API server refuses a ConfigMap whose data is over 1 MiB


def script_config_map(
    name: str,
    namespace: str,
    script: str,
    labels: dict[str, str],
    files: dict[str, str] | None = None,
    requirements: list[str] | None = None,
) -> dict[str, Any]:
    """The ConfigMap that carries a PyFlink app's script into its pods, with the modules it imports
    (``python_files``: a key each, placed at their relative paths by ``script_items``) and its
    requirements list."""
    data = {"main.py": script}
    for i, rel in enumerate(sorted(files or {})):
        data[f"file-{i}"] = (files or {})[rel]
    if requirements:
        data["requirements.txt"] = "".join(f"{r.strip()}\n" for r in requirements)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-script", "namespace": namespace, "labels": labels},
        "data": data,
    }


def script_items(files: dict[str, str] | None, requirements: list[str] | None) -> list[dict[str, str]]:
    """Where each key of the script's ConfigMap appears under SCRIPT_DIR (keys cannot hold a '/')."""
    items = [{"key": "main.py", "path": "main.py"}]
    items += [{"key": f"file-{i}", "path": rel} for i, rel in enumerate(sorted(files or {}))]
    if requirements:
        items.append({"key": "requirements.txt", "path": "requirements.txt"})
    return items


def with_script_volume(
    pod_template: dict[str, Any] | None, config_map: str, items: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The user's pod template plus the script's ConfigMap, mounted at SCRIPT_DIR in the main container."""
    template: dict[str, Any] = copy.deepcopy(pod_template) if pod_template else {}
    template.setdefault("apiVersion", "v1")
    template.setdefault("kind", "Pod")
    spec = template.setdefault("spec", {})
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") != SCRIPT_VOLUME]
    source: dict[str, Any] = {"name": config_map}
    if items:
        source["items"] = items
    spec["volumes"] = [*volumes, {"name": SCRIPT_VOLUME, "configMap": source}]
    containers = spec.setdefault("containers", [])
    main = next((c for c in containers if c.get("name") == MAIN_CONTAINER), None)
    if main is None:
        main = {"name": MAIN_CONTAINER}
        containers.append(main)
    mounts = [m for m in main.get("volumeMounts") or [] if m.get("name") != SCRIPT_VOLUME]
    main["volumeMounts"] = [*mounts, {"name": SCRIPT_VOLUME, "mountPath": SCRIPT_DIR, "readOnly": True}]
    return template
