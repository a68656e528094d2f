"""An application's versioned settings (its spec) and the rules each field must satisfy.

The spec is what a user edits; every edit becomes a new immutable version. Field rules live here
so that the API, the CLI's YAML and the console share one set of field-level errors.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from streampilot.domain.alerts import AlertReason
from streampilot.domain.errors import FieldProblem
from streampilot.domain.limits import MAX_INT, YEAR_S
from streampilot.domain.restart import RestartStrategy


class AppKind(StrEnum):
    SQL = "sql"
    JAR = "jar"
    PYTHON = "python"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Checkpointing(_Strict):
    interval_s: float | None = Field(
        default=None, gt=0, le=YEAR_S, description="Checkpoint every this many seconds; null turns checkpointing off."
    )
    timeout_s: float = Field(default=600.0, gt=0, le=YEAR_S)
    min_pause_s: float = Field(default=0.0, ge=0, le=YEAR_S)
    mode: Literal["exactly_once", "at_least_once"] = "exactly_once"
    tolerable_failed_checkpoints: int = Field(default=0, ge=0, le=MAX_INT)
    retain_on_cancel: bool = True
    storage_dir: str | None = Field(default=None, min_length=1)


class CheckpointFailurePolicy(_Strict):
    failures: int = Field(ge=1, le=MAX_INT, description="How many distinct failed checkpoints ...")
    window_s: float = Field(gt=0, le=YEAR_S, description="... within this many seconds ...")
    action: Literal["restart", "alert"] = "alert"


class AutoRestart(_Strict):
    max_restarts: int = Field(ge=0, le=MAX_INT, description="restarts after real failures within window_s (the budget)")
    window_s: float = Field(gt=0, le=YEAR_S)
    initial_backoff_s: float = Field(default=1.0, gt=0, le=86400, description="wait before the first restart")
    max_backoff_s: float = Field(default=300.0, gt=0, le=86400, description="the longest wait between restarts")
    multiplier: float = Field(default=2.0, ge=1, le=100, description="each further restart waits this much longer")
    jitter: float = Field(default=0.1, ge=0, le=1, description="+/- this fraction of each wait, at random")


class CheckpointStall(_Strict):
    after_s: float = Field(gt=0, le=YEAR_S, description="No completed checkpoint for this long is a stall.")
    restart: bool = False


class MetricAlerts(_Strict):
    """Alerts on the job's sampled metrics (domain/metric_rules.py); each fires once per breach."""

    backpressured_above: float | None = Field(
        default=None, gt=0, le=1, description="The most backpressured vertex above this share of time (0 to 1)..."
    )
    backpressured_for_s: float = Field(default=60.0, ge=0, le=YEAR_S, description="...for this long.")
    no_throughput_for_s: float | None = Field(
        default=None, gt=0, le=YEAR_S, description="The job's sources read no record for this long."
    )
    watermark_lag_above_s: float | None = Field(
        default=None, gt=0, le=YEAR_S, description="The largest watermark lag of the job above this."
    )
    checkpoint_duration_above_s: float | None = Field(
        default=None, gt=0, le=YEAR_S, description="A completed checkpoint took longer than this."
    )


PropertyValue = StrictStr | StrictBool | StrictInt | StrictFloat

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_JAVA_CLASS = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")


class AppSpec(_Strict):
    """Everything about an application that is versioned."""

    kind: AppKind
    sql: str | None = None
    jar_id: int | None = None
    entry_class: str | None = None
    args: list[str] = Field(default_factory=list)
    python: str | None = None
    python_files: dict[str, str] = Field(
        default_factory=dict,
        description="More files of a PyFlink app by relative path (modules it imports), next to its script",
    )
    python_requirements: list[str] = Field(
        default_factory=list,
        description="pip requirement specifiers installed for the job's Python workers (Flink's python.requirements)",
    )
    python_wheel_dir: str | None = Field(
        default=None,
        min_length=1,
        description="A directory of wheels the TaskManagers can read: requirements install from it, without an index",
    )
    dependency_jar_ids: list[int] = Field(
        default_factory=list,
        description="Uploaded jars (connectors, formats, UDFs) put on the job's class path",
    )
    parallelism: int = Field(default=1, ge=1, le=32768)
    runtime_mode: Literal["streaming", "batch"] = Field(
        default="streaming",
        description="batch: a bounded job run stage after stage (Flink's execution.runtime-mode)",
    )
    properties: dict[str, PropertyValue] = Field(default_factory=dict)
    checkpointing: Checkpointing = Field(default_factory=Checkpointing)
    restart_strategy: Annotated[RestartStrategy | None, Field(discriminator="type")] = None
    checkpoint_failure_policy: CheckpointFailurePolicy | None = None
    auto_restart: AutoRestart | None = None
    checkpoint_stall: CheckpointStall | None = None
    metric_alerts: MetricAlerts | None = None
    on_state_unavailable: Literal["refuse", "start_fresh"] = Field(
        default="refuse",
        description="A policy restart whose state cannot be read: refuse (leave the job as it is, alert) "
        "or start_fresh (start without state)",
    )
    alert_channel_ids: list[int] = Field(default_factory=list)
    alert_reasons: list[AlertReason] | None = Field(
        default=None, description="Which reasons reach the channels; null means all of them."
    )

    def kind_problems(self) -> list[FieldProblem]:
        """Fields that are missing or foreign for this kind of application."""
        problems = []
        needed = {AppKind.SQL: "sql", AppKind.JAR: "jar_id", AppKind.PYTHON: "python"}[self.kind]
        value = getattr(self, needed)
        in_image = self.kind == AppKind.JAR and bool(self.properties.get(IMAGE_JAR_PROPERTY))
        if (value is None or (isinstance(value, str) and not value.strip())) and not in_image:
            why = f"{needed} is required for a {self.kind.value} application"
            if self.kind == AppKind.JAR:
                why += f" (on Kubernetes, a jar inside the image can be named by the property {IMAGE_JAR_PROPERTY})"
            problems.append(FieldProblem(needed, why))
        foreign = {
            AppKind.SQL: ("jar_id", "entry_class", "python"),
            AppKind.JAR: ("sql", "python"),
            AppKind.PYTHON: ("sql", "jar_id", "entry_class"),
        }[self.kind]
        for name in foreign:
            if getattr(self, name) is not None:
                problems.append(FieldProblem(name, f"{name} does not apply to a {self.kind.value} application"))
        if self.kind != AppKind.PYTHON:
            for name in ("python_files", "python_requirements"):
                if getattr(self, name):
                    problems.append(FieldProblem(name, f"{name} does not apply to a {self.kind.value} application"))
            if self.python_wheel_dir is not None:
                problems.append(FieldProblem("python_wheel_dir", "python_wheel_dir is for PyFlink applications"))
        problems.extend(python_file_problems(self.python_files))
        for i, req in enumerate(self.python_requirements):
            if not req.strip() or "\n" in req or req.lstrip().startswith("-"):
                problems.append(
                    FieldProblem(
                        f"python_requirements.{i}", "give one requirement specifier (like 'pandas>=2'), no pip options"
                    )
                )
        if self.python_wheel_dir is not None and not self.python_requirements:
            problems.append(FieldProblem("python_wheel_dir", "a wheel directory serves python_requirements: list them"))
        for key in ("python.files", "python.requirements"):
            if key in self.properties and (self.python_files or self.python_requirements):
                problems.append(
                    FieldProblem(f"properties.{key}", "set by python_files / python_requirements; use those fields")
                )
        if len(set(self.dependency_jar_ids)) != len(self.dependency_jar_ids):
            problems.append(FieldProblem("dependency_jar_ids", "a jar is listed twice; list each once"))
        if self.entry_class is not None and not _JAVA_CLASS.match(self.entry_class):
            problems.append(FieldProblem("entry_class", f"{self.entry_class!r} is not a Java class name"))
        return problems


_RELATIVE_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,9}$")
MAX_PYTHON_FILES = 200
MAX_PYTHON_FILES_BYTES = 5 * 1024 * 1024


def python_file_problems(files: dict[str, str]) -> list[FieldProblem]:
    """Relative, tame paths (no '..', no absolute ones), a bounded number and size, Python that compiles."""
    problems = []
    if len(files) > MAX_PYTHON_FILES:
        problems.append(FieldProblem("python_files", f"at most {MAX_PYTHON_FILES} files"))
    if sum(len(c) for c in files.values()) > MAX_PYTHON_FILES_BYTES:
        problems.append(FieldProblem("python_files", f"at most {MAX_PYTHON_FILES_BYTES // 2**20} MiB in all"))
    for path, content in files.items():
        field = f"python_files.{path}"
        if not _RELATIVE_FILE.match(path) or ".." in path.split("/"):
            problems.append(FieldProblem(field, "a relative path like 'lib/util.py' (letters, digits, '_', '.', '-')"))
        elif path == "main.py":
            problems.append(FieldProblem(field, "main.py is the app's script itself; choose another name"))
        elif "\x00" in content:
            problems.append(FieldProblem(field, "a file cannot contain a NUL character"))
        elif path.endswith(".py"):
            try:
                compile(content, path, "exec")
            except SyntaxError as exc:
                problems.append(FieldProblem(field, f"Python syntax error: {exc.msg}", exc.lineno, exc.offset))
    return problems


# A jar app on Kubernetes may name a jar inside the image instead of an uploaded one.
IMAGE_JAR_PROPERTY = "kubernetes.jar-uri"


def check_name(name: str) -> str | None:
    """The reason a name is unusable, or None."""
    if not _NAME.match(name):
        return "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None
