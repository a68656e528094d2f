"""Translation of an application's settings into one Flink launch configuration.

Structured settings (parallelism, checkpointing, restart strategy) and free-form properties (plus a
SQL script's SET statements) become one ``dict[str, str]`` submitted as the job's configuration.
A free-form value that contradicts a structured setting is a field error, never a silent override.
"""

from __future__ import annotations

from collections.abc import Mapping

from streampilot.domain.apps import AppSpec, Checkpointing
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.domain.flinkoptions import duration_ms, option_problem
from streampilot.domain.restart import flink_keys, ms

# Keys the platform itself sets for every submission: users steer them through our own fields.
MANAGED_KEYS = {
    "pipeline.name": "the job is named after the application; rename the application instead",
    "$internal.pipeline.job-id": "the platform assigns job ids",
    "execution.savepoint.path": "choose the restore point with start's 'restore' instead",
    "execution.state-recovery.path": "choose the restore point with start's 'restore' instead",
}

_STRATEGY_ALIASES = {
    "none": "none",
    "off": "none",
    "disable": "none",
    "norestart": "none",
    "fixed-delay": "fixed-delay",
    "fixeddelay": "fixed-delay",
    "failure-rate": "failure-rate",
    "failurerate": "failure-rate",
    "exponential-delay": "exponential-delay",
    "exponentialdelay": "exponential-delay",
}


def normalise(key: str, value: str) -> str:
    """A comparable form of a configuration value (durations in ms, enums lower-cased)."""
    v = value.strip()
    if key == "restart-strategy.type":
        return _STRATEGY_ALIASES.get(v.lower(), v.lower())
    if key.endswith((".interval", ".timeout", ".min-pause", ".delay", "-interval", "-backoff", "-threshold")):
        d = duration_ms(v)
        if d is not None:
            return f"{d:g}ms"
    return v.lower()


def property_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checkpointing_keys(cp: Checkpointing, *, force_retain: bool) -> dict[str, str]:
    if cp.interval_s is None:
        return {}
    keys = {
        "execution.checkpointing.interval": ms(cp.interval_s),
        "execution.checkpointing.timeout": ms(cp.timeout_s),
        "execution.checkpointing.min-pause": ms(cp.min_pause_s),
        "execution.checkpointing.mode": cp.mode.upper(),
        "execution.checkpointing.tolerable-failed-checkpoints": str(cp.tolerable_failed_checkpoints),
        "execution.checkpointing.externalized-checkpoint-retention": (
            "RETAIN_ON_CANCELLATION" if (cp.retain_on_cancel or force_retain) else "DELETE_ON_CANCELLATION"
        ),
    }
    if cp.storage_dir:
        keys["execution.checkpointing.dir"] = cp.storage_dir
    return keys


def structured_keys(spec: AppSpec) -> dict[str, tuple[str, str]]:
    """Flink keys produced by structured settings, with the field each comes from."""
    out: dict[str, tuple[str, str]] = {"parallelism.default": (str(spec.parallelism), "parallelism")}
    if spec.runtime_mode == "batch":
        out["execution.runtime-mode"] = ("BATCH", "runtime_mode")
    policy_restarts = spec.checkpoint_failure_policy is not None and spec.checkpoint_failure_policy.action == "restart"
    for k, v in checkpointing_keys(spec.checkpointing, force_retain=policy_restarts).items():
        out[k] = (v, "checkpointing")
    if spec.restart_strategy is not None:
        for k, v in flink_keys(spec.restart_strategy).items():
            out[k] = (v, "restart_strategy")
    return out


def build_launch_config(spec: AppSpec, *, app_name: str, sql_sets: Mapping[str, str] | None = None) -> dict[str, str]:
    """The exact configuration submitted to Flink; raises SpecError on contradictions."""
    structured = structured_keys(spec)
    problems: list[FieldProblem] = []
    free: dict[str, tuple[str, str]] = {}
    for key, value in spec.properties.items():
        free[key] = (property_text(value), f"properties.{key}")
    for key, value in (sql_sets or {}).items():
        free[key] = (value, "sql")
    for key, (value, field) in free.items():
        if not key.strip():
            problems.append(FieldProblem(field, "a property needs a non-empty key"))
        elif key in MANAGED_KEYS:
            problems.append(FieldProblem(field, f"{key} is set by the platform: {MANAGED_KEYS[key]}"))
        elif field != "sql" and (wrong := option_problem(key, value)):
            problems.append(FieldProblem(field, wrong))
        elif key in structured and normalise(key, value) != normalise(key, structured[key][0]):
            own, origin = structured[key]
            problems.append(
                FieldProblem(
                    field,
                    f"{key}={value!r} contradicts {origin} (which sets {own!r}); change {origin} instead",
                )
            )
    if problems:
        raise SpecError(problems)
    config = {k: v for k, (v, _) in free.items()}
    config.update({k: v for k, (v, _) in structured.items()})
    config["pipeline.name"] = app_name
    return dict(sorted(config.items()))
