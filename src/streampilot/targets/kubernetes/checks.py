"""What an app asks for that a Kubernetes cluster cannot give it, found before anything is submitted:
field errors in the words of the Flink operator's own refusals."""

from __future__ import annotations

from streampilot.domain.apps import IMAGE_JAR_PROPERTY, AppKind, AppSpec
from streampilot.domain.errors import FieldProblem
from streampilot.domain.k8s import (
    CONFIG_MAP_LIMIT,
    KIND_APPLICATION,
    STORAGE_FIX,
    K8sOptions,
    fetches_jars,
    forbidden_keys,
    storage_problem,
)
from streampilot.services.submissions import launch_config


def spec_problems(spec: AppSpec, kind: str, options: K8sOptions) -> list[FieldProblem]:
    """What an app asks for that its Kubernetes cluster cannot give it (field errors before submission)."""
    problems: list[FieldProblem] = []
    if spec.kind == AppKind.PYTHON and kind != KIND_APPLICATION:
        problems.append(
            FieldProblem(
                "kind",
                "PyFlink apps need a kubernetes-application cluster on Kubernetes "
                "(the script is mounted into the app's own pods); use one, or a jar or SQL app",
            )
        )
    if spec.python_wheel_dir:
        problems.append(
            FieldProblem(
                "python_wheel_dir",
                "a directory on streampilot's host does not reach Kubernetes pods: let pip use an index, or "
                "build the wheels into the image",
            )
        )
    carried = len((spec.python or "").encode()) + sum(len(c.encode()) for c in spec.python_files.values())
    if spec.kind == AppKind.PYTHON and carried > CONFIG_MAP_LIMIT - 64 * 1024:
        problems.append(
            FieldProblem(
                "python_files",
                f"the script and its files are {carried} bytes; a ConfigMap carries at most 1 MiB: build the "
                "larger modules into the image",
            )
        )
    if spec.dependency_jar_ids and kind == KIND_APPLICATION and not fetches_jars(options):
        problems.append(
            FieldProblem(
                "dependency_jar_ids",
                "uploaded jars cannot reach this app's pods (an application cluster fetches jars from "
                "streampilot only with options.artifact_url and Flink 1.19+): set those, build the jars into "
                "the image (lib/), or use a kubernetes-session cluster",
            )
        )
    named = spec.properties.get(IMAGE_JAR_PROPERTY)
    if kind != KIND_APPLICATION and named and not str(named).startswith(("https://", "http://")):
        problems.append(
            FieldProblem(
                f"properties.{IMAGE_JAR_PROPERTY}",
                f"{named!r}: the Flink operator fetches a session job's jar itself, from an https:// URL (a jar "
                "inside an image is not there); upload the jar (jar_id) instead, or give its https:// address",
            )
        )
    forbidden = forbidden_keys(spec.properties)
    if forbidden:
        problems.append(
            FieldProblem(
                "properties",
                f"{', '.join(forbidden)} is set by the Flink operator itself on Kubernetes (it refuses resources "
                "that set it); remove it",
            )
        )
    problem = storage_problem({**options.cluster_configuration(), **launch_config(spec, "app")}, options.upgrade_mode)
    if problem is not None:
        problems.append(
            FieldProblem("cluster_id", f"the Flink operator would refuse the job: {problem}; {STORAGE_FIX}")
        )
    if not options.rest_url_template:
        # Our policy loop reads checkpoints from Flink's REST API: without it these settings could not act.
        why = "needs Flink's REST API on Kubernetes: set the cluster's options.rest_url_template"
        if spec.checkpoint_failure_policy is not None:
            problems.append(FieldProblem("checkpoint_failure_policy", why))
        if spec.checkpoint_stall is not None:
            problems.append(FieldProblem("checkpoint_stall", why))
    return problems
