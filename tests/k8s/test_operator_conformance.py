"""Every resource streampilot can send to Kubernetes, held against the operator's real CRD schemas
(../shared/reference/, both releases) and against the operator's own validator rules: application and
session mode; SQL, jar and PyFlink apps; each upgrade mode; with and without a restore; the patches
for a savepoint and a stop; the session cluster itself. No Kubernetes needed: resources are values."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest

from streampilot.domain.apps import IMAGE_JAR_PROPERTY, AppKind, AppSpec, Checkpointing
from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import (
    DEPLOYMENTS,
    KIND_APPLICATION,
    KIND_SESSION,
    SESSION_JOBS,
    SNAPSHOTS,
    K8sOptions,
    savepoint_snapshot,
    session_deployment,
)
from streampilot.services.context import Context
from streampilot.services.submissions import launch_config
from streampilot.store.orm import Cluster
from streampilot.targets.kubernetes.checks import spec_problems
from streampilot.targets.kubernetes.observer import parse_options
from streampilot.targets.kubernetes.target import KubernetesTarget
from tests.k8s.conftest import OPERATOR_CONFIG
from tests.k8s.crds import OPERATOR_RELEASES, schema_problems
from tests.k8s.operator_rules import deployment_refusal, session_job_refusal
from tests.k8s_emulator import merge_patch

SCRIPT = "from pyflink.table import TableEnvironment, EnvironmentSettings\nprint('hello')\n"
SQL = (
    "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen');\n"
    "CREATE TABLE snk (id BIGINT) WITH ('connector' = 'blackhole');\n"
    "INSERT INTO snk SELECT id FROM src;\n"
)
SPECS = {
    "sql": AppSpec(kind=AppKind.SQL, sql=SQL, checkpointing=Checkpointing(interval_s=10)),
    "jar": AppSpec(kind=AppKind.JAR, jar_id=1, entry_class="example.Job", args=["--in", "x"], parallelism=3),
    "jar-in-image": AppSpec(
        kind=AppKind.JAR, entry_class="example.Job", properties={IMAGE_JAR_PROPERTY: "local:///opt/flink/usrlib/a.jar"}
    ),
    "python": AppSpec(kind=AppKind.PYTHON, python=SCRIPT),
}
MODES = ("stateless", "savepoint", "last-state")
BASE_OPTIONS = {
    "namespace": "flink",
    "state_dir": "s3://flink-state/team-a",
    "session_name": "team-session",
    "rest_url_template": "http://{name}-rest.{namespace}:8081",
    "artifact_url": "https://streampilot.example.com",
}
# What session_jar_uri hands the operator: a signed artifact URL of the platform.
FETCHED = "https://streampilot.example.com/artifacts/" + "a" * 64 + "/" + "b" * 32 + "/job.jar"


def target(kind: str, **options: Any) -> KubernetesTarget:
    parsed = parse_options(kind, {**BASE_OPTIONS, **options})
    cluster = Cluster(id=1, name="k", kind=kind, rest_url=None, options=parsed.model_dump(mode="json"))
    return KubernetesTarget(cast(Context, None), cluster)  # desired() needs no connection


def resources(kind: str, app: str, mode: str, restore: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The app's resource as created, and after each patch streampilot sends to it (savepoint nonce,
    stop with and without savepoint, a start that re-arms it)."""
    t = target(kind, upgrade_mode=mode)
    spec = SPECS[app]
    fetched = FETCHED if kind == KIND_SESSION else None
    body, _ = t.desired(7, spec, launch_config(spec, "app"), restore, restore is not None, fetched)
    plural = DEPLOYMENTS if kind == KIND_APPLICATION else SESSION_JOBS
    out = [(plural, body)]
    for job_patch in (
        {"savepointTriggerNonce": 3},
        {"state": "suspended", "upgradeMode": "savepoint"},
        {"state": "suspended", "upgradeMode": "stateless"},
    ):
        out.append((plural, merge_patch(body, {"spec": {"job": job_patch}})))
    return out


CASES = [
    (kind, app, mode, restore)
    for kind, app, mode, restore in itertools.product(
        (KIND_APPLICATION, KIND_SESSION), SPECS, MODES, (None, "s3://flink-state/team-a/savepoints/savepoint-1")
    )
    # Refused up front on session clusters: a script mounted into the app's own pods, a jar inside an image.
    if not (app in ("python", "jar-in-image") and kind == KIND_SESSION)
]


@pytest.mark.parametrize("release", OPERATOR_RELEASES)
@pytest.mark.parametrize(("kind", "app", "mode", "restore"), CASES)
def test_every_resource_fits_the_crd_schema_and_the_operator_validator(
    release: str, kind: str, app: str, mode: str, restore: str | None
) -> None:
    session = session_deployment(target(KIND_SESSION, upgrade_mode=mode).options, {"streampilot": "yes"})
    for plural, obj in resources(kind, app, mode, restore):
        invalid, unknown = schema_problems(release, plural, obj)
        assert invalid == [] and unknown == [], (plural, obj["spec"])
        if plural == DEPLOYMENTS:
            assert deployment_refusal(obj) is None, obj["spec"]
        else:
            assert session_job_refusal(obj, session, OPERATOR_CONFIG, release) is None, obj["spec"]
    invalid, unknown = schema_problems(release, DEPLOYMENTS, session)
    assert invalid == [] and unknown == [] and deployment_refusal(session) is None, session


@pytest.mark.parametrize("release", OPERATOR_RELEASES)
@pytest.mark.parametrize("kind", ["FlinkDeployment", "FlinkSessionJob"])
def test_the_savepoint_request_fits_the_flinkstatesnapshot_schema(release: str, kind: str) -> None:
    body = savepoint_snapshot("sp-app-7-savepoint-1", "flink", kind, "sp-app-7", {"managed-by": "streampilot"})
    assert schema_problems(release, SNAPSHOTS, body) == ([], [])


def test_the_rules_catch_what_a_stock_operator_refuses() -> None:
    """The stand-in's rules are not vacuous: each refuses what the operator refuses."""
    good = target(KIND_APPLICATION, upgrade_mode="savepoint")
    body, _ = good.desired(1, SPECS["jar"], launch_config(SPECS["jar"], "app"), None, False)
    assert deployment_refusal(body) is None
    without_dirs = merge_patch(body, {"spec": {"flinkConfiguration": {"execution.checkpointing.dir": None}}})
    assert "Checkpoint directory[execution.checkpointing.dir] must be defined" in str(deployment_refusal(without_dirs))
    without_savepoints = merge_patch(
        body, {"spec": {"flinkConfiguration": {"execution.checkpointing.savepoint-dir": None}}}
    )
    assert "could not be upgraded with savepoint" in str(deployment_refusal(without_savepoints))
    assert "not supported" in str(deployment_refusal(merge_patch(body, {"spec": {"flinkVersion": "v1_14"}})))
    invalid, _ = schema_problems("release-1.15.0", DEPLOYMENTS, merge_patch(body, {"spec": {"flinkVersion": "v2_3"}}))
    assert any("flinkVersion" in p and "v2_3" in p for p in invalid), invalid  # the shipped CRD has no v2_3
    _, unknown = schema_problems("release-1.13.0", DEPLOYMENTS, merge_patch(body, {"spec": {"job": {"nonce": 1}}}))
    assert unknown == ["spec.job.nonce"]
    job, _ = target(KIND_SESSION).desired(1, SPECS["jar"], {}, None, False)
    assert "jarURI scheme 'local' is not in the allowlist" in str(session_job_refusal(job, None))
    on_session = spec_problems(SPECS["jar-in-image"], KIND_SESSION, target(KIND_SESSION).options)
    assert [p.field for p in on_session] == ["properties.kubernetes.jar-uri"]
    assert [p.field for p in spec_problems(SPECS["python"], KIND_SESSION, target(KIND_SESSION).options)] == ["kind"]


def test_flink_version_follows_the_image_and_the_operators_enum() -> None:
    def version(**options: Any) -> str:
        return K8sOptions.model_validate(options).operator_flink_version

    assert version() == "v2_2"  # flink:2.3.0-java17: the CRDs (up to 1.15.0) know 2.x up to v2_2
    assert version(image="flink:1.20.1-scala_2.12-java17") == "v1_20"
    assert version(image="docker.io/library/flink:2.1") == "v2_1"
    assert version(image="registry.example.org/jobs:1.0") == "v2_2"  # not Flink's tag: the platform's Flink
    assert version(image="registry.example.org/jobs:1.0", flink_version="1.19") == "v1_19"
    assert version(flink_version="v2_0") == "v2_0"
    for bad in ("v9_9", "1.14", "banana"):
        with pytest.raises(SpecError) as refused:
            parse_options(KIND_APPLICATION, {**BASE_OPTIONS, "flink_version": bad})
        assert refused.value.problems[0].field == "options.flink_version", bad


def test_cluster_configuration_reaches_every_job_and_apps_win() -> None:
    t = target(
        KIND_APPLICATION,
        flink_configuration={"state.backend.type": "rocksdb", "execution.checkpointing.dir": "s3://other/chk"},
    )
    spec = AppSpec(kind=AppKind.JAR, jar_id=1, entry_class="e.J", properties={"state.backend.type": "hashmap"})
    body, _ = t.desired(1, spec, launch_config(spec, "app"), None, False)
    config = body["spec"]["flinkConfiguration"]
    assert config["execution.checkpointing.dir"] == "s3://other/chk"  # flink_configuration over state_dir
    assert config["execution.checkpointing.savepoint-dir"] == "s3://flink-state/team-a/savepoints"
    assert config["state.backend.type"] == "hashmap"  # the app's own setting wins
