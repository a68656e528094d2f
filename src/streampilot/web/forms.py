"""Between HTML forms and application specs: flat dotted field names <-> nested spec dictionaries.

Kept free of web-framework types so it is unit-testable; empty inputs mean "not set".
"""

from __future__ import annotations

from typing import Any

from streampilot.domain.apps import AppSpec

# Checkboxes that exist in the form: absent from the submission means false.
BOOLEAN_FIELDS = {"checkpointing.retain_on_cancel", "checkpoint_stall.restart"}
INT_FIELDS = {
    "parallelism",
    "jar_id",
    "checkpointing.tolerable_failed_checkpoints",
    "restart_strategy.attempts",
    "restart_strategy.max_failures",
    "checkpoint_failure_policy.failures",
    "auto_restart.max_restarts",
}
LIST_FIELDS = {"alert_channel_ids", "alert_reasons"}
# Optional sections of a spec: set only when their "<section>.enabled" box is checked.
SECTIONS = ("restart_strategy", "checkpoint_failure_policy", "auto_restart", "checkpoint_stall", "metric_alerts")


def _number(field: str, raw: str) -> Any:
    try:
        return int(raw) if field in INT_FIELDS else float(raw)
    except ValueError:
        return raw  # left for validation to name the field


NUMERIC_PREFIXES = (
    "checkpointing.",
    "restart_strategy.",
    "checkpoint_failure_policy.",
    "auto_restart.",
    "checkpoint_stall.",
    "metric_alerts.",
)
TEXT_FIELDS = {
    "checkpointing.mode",
    "checkpointing.storage_dir",
    "restart_strategy.type",
    "checkpoint_failure_policy.action",
}


def parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        props[key.strip()] = value.strip() if sep else ""
    return props


def form_to_body(form: dict[str, Any]) -> dict[str, Any]:
    """Flat form fields (dotted names) to the nested body the services validate."""
    body: dict[str, Any] = {}
    enabled = {section for section in SECTIONS if form.get(f"{section}.enabled")}
    if not form.get("checkpointing.enabled"):
        body["checkpointing"] = {"interval_s": None}
    for name, value in form.items():
        if name.endswith(".enabled") or name in ("properties_text", "csrf"):
            continue
        section = name.split(".", 1)[0] if "." in name else None
        if section in SECTIONS and section not in enabled:
            continue
        if section == "checkpointing" and not form.get("checkpointing.enabled"):
            continue
        if name in LIST_FIELDS:
            items = value if isinstance(value, list) else [value]
            body[name] = [int(v) if name == "alert_channel_ids" else v for v in items if str(v).strip()]
            continue
        if isinstance(value, list):
            value = value[-1]
        text = str(value).strip()
        if name in BOOLEAN_FIELDS:
            continue
        if text == "":
            continue
        if name in ("parallelism", "jar_id") or (name.startswith(NUMERIC_PREFIXES) and name not in TEXT_FIELDS):
            parsed: Any = _number(name, text)
        elif name == "args":
            parsed = text.split()
        else:
            parsed = str(value)
        _put(body, name, parsed)
    for name in BOOLEAN_FIELDS:
        section = name.split(".", 1)[0]
        if (section == "checkpointing" and form.get("checkpointing.enabled")) or section in enabled:
            _put(body, name, bool(form.get(name)))
    props = parse_properties(str(form.get("properties_text", "")))
    if props or "properties_text" in form:
        body["properties"] = props
    return body


def _put(body: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = body
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def spec_to_form(spec: AppSpec, name: str, cluster_id: int) -> dict[str, Any]:
    """The flat form values that show an existing spec."""
    data = spec.model_dump(mode="json")
    form: dict[str, Any] = {"name": name, "cluster_id": str(cluster_id)}
    for key in ("kind", "sql", "python", "entry_class", "parallelism", "jar_id", "runtime_mode"):
        if data.get(key) is not None:
            form[key] = str(data[key])
    form["args"] = " ".join(data.get("args") or [])
    form["properties_text"] = "\n".join(f"{k}={v}" for k, v in (data.get("properties") or {}).items())
    cp = data.get("checkpointing") or {}
    if cp.get("interval_s") is not None:
        form["checkpointing.enabled"] = "on"
    for k, v in cp.items():
        if v is not None:
            form[f"checkpointing.{k}"] = "on" if v is True else ("" if v is False else str(v))
    for section in SECTIONS:
        values = data.get(section)
        if values:
            form[f"{section}.enabled"] = "on"
            for k, v in values.items():
                if v is not None:
                    form[f"{section}.{k}"] = "on" if v is True else ("" if v is False else str(v))
    form["alert_channel_ids"] = [str(c) for c in data.get("alert_channel_ids") or []]
    if data.get("alert_reasons") is not None:
        form["alert_reasons"] = list(data["alert_reasons"])
    return form
