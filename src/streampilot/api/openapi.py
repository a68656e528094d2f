"""The OpenAPI document as the API really answers: field errors as ``{"detail": [{"field", "message",
"line", "column"}]}`` (not FastAPI's default validation schema), and every error status a route can
give documented on it: 400 (an unreadable body), 401 (no or a wrong token), 404, 409, 413 (a body over
the limit), 422, 429 (throttled), 502 (Flink or Kubernetes did not answer), 403 (role) and 503 (database lost)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

FIELD_PROBLEM = {
    "type": "object",
    "properties": {
        "field": {"type": "string"},
        "message": {"type": "string"},
        "line": {"type": ["integer", "null"]},
        "column": {"type": ["integer", "null"]},
    },
    "required": ["field", "message"],
}
FIELD_PROBLEMS = {
    "type": "object",
    "properties": {"detail": {"type": "array", "items": {"$ref": "#/components/schemas/FieldProblem"}}},
    "required": ["detail"],
}
# A sentence, or (from the shared request checks, e.g. 404 for an id out of range) field problems.
PROBLEM = {
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/FieldProblem"}}]
        }
    },
    "required": ["detail"],
}
# Text never holds NUL characters (the API refuses them: PostgreSQL cannot store them), and free-form
# JSON (an alert channel's config, an app's properties) is JSON without them: the document says so.
NO_NUL = "^[^\u0000]*$"
JSON_VALUE = {
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ]
}


def _without_nul(node: Any) -> None:
    """Say in every schema below ``node`` that strings and free-form JSON hold no NUL character."""
    if isinstance(node, list):
        for item in node:
            _without_nul(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not ({"pattern", "enum", "const", "format"} & node.keys()):
        node["pattern"] = NO_NUL
    if node.get("type") == "object" and "additionalProperties" in node:
        extra = node["additionalProperties"]
        node["propertyNames"] = {"pattern": NO_NUL}
        if extra is True or extra == {}:
            node["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
    if node.get("type") == "array" and node.get("items") in ({}, True):
        node["items"] = {"$ref": "#/components/schemas/JsonValue"}
    for value in node.values():
        _without_nul(value)


def _int32(node: Any, schemas: dict[str, Any], seen: set[str]) -> None:
    """Integers a request carries are 32-bit (the databases' id columns): say so where no bound is."""
    if isinstance(node, list):
        for item in node:
            _int32(item, schemas, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen and name in schemas:
            seen.add(name)
            _int32(schemas[name], schemas, seen)
    if node.get("type") == "integer":
        node.setdefault("minimum", -(2**31))
        node.setdefault("maximum", 2**31 - 1)
    for value in node.values():
        _int32(value, schemas, seen)


def _requests_int32(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            _int32(operation.get("parameters", []), schemas, seen)
            _int32(operation.get("requestBody", {}), schemas, seen)


ERRORS = {
    "400": ("The body could not be read", "Problem"),
    "401": ("No API token, or a token that is not valid", "Problem"),
    "403": ("Your role in the object's team does not allow this (the message names the role needed)", "Problem"),
    "404": ("No such object", "Problem"),
    "409": ("Not possible now (another operation, a state that does not allow it, a name taken)", "Problem"),
    "413": ("The body is over the limit", "FieldProblems"),
    "422": ("Bad input: each wrong field with a message", "FieldProblems"),
    "429": ("Too many wrong tokens from this client: wait Retry-After seconds", "Problem"),
    "502": ("Flink, Kubernetes, the LDAP directory or the OpenID provider did not answer", "Problem"),
    "503": ("The database connection dropped: retry (operations with the same Idempotency-Key)", "Problem"),
}


def document_errors(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        _requests_int32(doc, schemas)
        _without_nul(doc.get("paths", {}))
        _without_nul(schemas)
        schemas.update(FieldProblem=FIELD_PROBLEM, FieldProblems=FIELD_PROBLEMS, Problem=PROBLEM, JsonValue=JSON_VALUE)
        for path_item in doc.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, (description, schema) in ERRORS.items():
                    ref = {"$ref": f"#/components/schemas/{schema}"}
                    responses[status] = {"description": description, "content": {"application/json": {"schema": ref}}}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
