"""The Flink Kubernetes Operator's CRDs (../shared/reference/, unchanged from its helm chart) as the
Kubernetes API server applies them: the ``openAPIV3Schema`` of each custom resource.

What the API server does with a custom resource (Kubernetes docs, "Extend the Kubernetes API with
CustomResourceDefinitions": validation, pruning, field validation):
- a value against the schema (type, enum) is refused: 422 Invalid;
- a field the schema does not know (outside ``x-kubernetes-preserve-unknown-fields``) is pruned, i.e.
  silently dropped, unless the request asks ``fieldValidation=Strict``: then it is a 400 BadRequest;
- ``x-kubernetes-int-or-string`` takes an integer or a string.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_RELEASES = ("release-1.13.0", "release-1.15.0")
KINDS = {"flinkdeployments": "FlinkDeployment", "flinksessionjobs": "FlinkSessionJob"}
KINDS["flinkstatesnapshots"] = "FlinkStateSnapshot"


def reference_dir() -> Path:
    """Where the reference data is: STREAMPILOT_REFERENCE_DIR, or shared/reference beside the checkout."""
    found = Path(os.environ.get("STREAMPILOT_REFERENCE_DIR") or ROOT.parent / "shared" / "reference")
    operator = found / "flink-kubernetes-operator"
    if not operator.is_dir():
        raise AssertionError(
            f"the operator's CRDs are not at {operator}: CI has shared/ beside the checkout; elsewhere set "
            "STREAMPILOT_REFERENCE_DIR to a copy of shared/reference"
        )
    return operator


@cache
def openapi_schema(release: str, plural: str) -> dict[str, Any]:
    path = reference_dir() / release / f"{plural}.flink.apache.org-v1.yml"
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """An openAPIV3Schema node as a JSON schema in which an unknown field is an error (Strict)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out["properties"] = {k: _json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _json_schema(value)
        elif not key.startswith("x-kubernetes-"):
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        out["type"] = [out["type"], "null"] if isinstance(out.get("type"), str) else out.get("type")
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False  # what the schema does not name is unknown
    return out


@cache
def validator(release: str, plural: str) -> Draft7Validator:
    schema = _json_schema(openapi_schema(release, plural))
    # apiVersion, kind and metadata are the API server's own (ObjectMeta), not the CRD's.
    schema.setdefault("properties", {}).update(apiVersion={"type": "string"}, kind={"type": "string"})
    schema["properties"]["metadata"] = {"type": "object"}
    return Draft7Validator(schema)


def schema_problems(release: str, plural: str, obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What the API server would refuse (422), and the unknown fields it would prune or refuse (Strict)."""
    invalid, unknown = [], []
    for error in validator(release, plural).iter_errors(obj):
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties") or {})
            extra = sorted(k for k in error.instance if k not in known) if isinstance(error.instance, dict) else []
            unknown += [f"{where}.{k}" if where != "(root)" else k for k in extra]
        else:
            invalid.append(f"{where}: {error.message}")
    return invalid, unknown


def prune(release: str, plural: str, obj: dict[str, Any]) -> None:
    """Drop the unknown fields, as the API server does without ``fieldValidation=Strict``."""
    for path in schema_problems(release, plural, obj)[1]:
        *parents, leaf = path.split(".")
        node: Any = obj
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node.pop(leaf, None)
