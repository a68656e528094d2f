"""Variables: ``${name}`` in an app's SQL, properties and args (not in Python code, where the
characters may mean something else), resolved when the job is submitted.

An app's versions keep the references, never the values, so a changed password reaches the next
start without a new version, and a secret never lands in a version, a diff or an export. ``$${``
writes a literal ``${``. Values of secret variables are masked wherever a resolved configuration is
shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streampilot.domain.apps import AppSpec
from streampilot.domain.errors import FieldProblem

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
_REF = re.compile(r"\$(\$?)\{([^}\n]*)\}")
MASK = "******"


def name_problem(name: str) -> str | None:
    if not NAME.match(name):
        return "use a letter or '_' first, then up to 99 letters, digits, '_', '.' or '-'"
    return None


@dataclass(frozen=True)
class Reference:
    name: str
    line: int
    column: int


def references(text: str) -> list[Reference]:
    """The ``${name}`` references in ``text`` (escaped ``$${...}`` ones are not), with positions."""
    found = []
    for m in _REF.finditer(text):
        if m.group(1):
            continue
        before = text[: m.start()]
        found.append(Reference(m.group(2), before.count("\n") + 1, m.start() - (before.rfind("\n") + 1) + 1))
    return found


def substitute(text: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "${" + m.group(2) + "}"
        return values[m.group(2)]

    return _REF.sub(one, text)


def _fields(spec: AppSpec) -> Iterable[tuple[str, str]]:
    if spec.sql is not None:
        yield "sql", spec.sql
    for key, value in spec.properties.items():
        if isinstance(value, str):
            yield f"properties.{key}", value
    for i, arg in enumerate(spec.args):
        yield f"args.{i}", arg


def used_names(spec: AppSpec) -> set[str]:
    return {ref.name for _, text in _fields(spec) for ref in references(text)}


def undefined(spec: AppSpec, known: Iterable[str]) -> list[FieldProblem]:
    """A field error for each reference to a variable that does not exist (or is not a name)."""
    names = set(known)
    problems = []
    for field, text in _fields(spec):
        multiline = field == "sql"
        for ref in references(text):
            if ref.name in names:
                continue
            why = (
                f"${{{ref.name}}} is not a variable name"
                if name_problem(ref.name)
                else f"undefined variable ${{{ref.name}}}: define it (POST /api/v1/variables) or write $${{ for a "
                "literal ${"
            )
            problems.append(
                FieldProblem(field, why, ref.line if multiline else None, ref.column if multiline else None)
            )
    return problems


def resolve(spec: AppSpec, values: Mapping[str, str]) -> AppSpec:
    """The spec with every reference replaced by its value (all must be defined: see ``undefined``)."""
    changes: dict[str, object] = {}
    if spec.sql is not None:
        changes["sql"] = substitute(spec.sql, values)
    changes["properties"] = {k: substitute(v, values) if isinstance(v, str) else v for k, v in spec.properties.items()}
    changes["args"] = [substitute(a, values) for a in spec.args]
    return spec.model_copy(update=changes)


def mask(config: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """``config`` with every secret value replaced by a mask, wherever it occurs in a value."""
    hidden = sorted((s for s in secrets if s), key=len, reverse=True)
    out = {}
    for key, value in config.items():
        for secret in hidden:
            value = value.replace(secret, MASK)
        out[key] = value
    return out
