"""The types of Flink's configuration options, so that a bad value is a field error before submission.

Flink converts a string option when the job reads it, which for many options is when the JobManager
builds the job: ``execution.checkpointing.interval = banana`` was accepted at create and failed at
start, with the reason only in the JobManager's log. The types below follow Flink 2.3's option
definitions (``ExecutionOptions``, ``CheckpointingOptions``, ``PipelineOptions``,
``ExecutionConfigOptions``, ``RestartStrategyOptions``, ``CoreOptions``); options we do not know are
left to Flink, and the suffix rules cover Flink's naming conventions for durations and switches.
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(ms|milli|millis|millisecond|milliseconds|s|sec|secs|second|seconds|"
    r"min|m|minute|minutes|h|hour|hours|d|day|days)?\s*$",
    re.IGNORECASE,
)
_UNIT_MS = {
    "ms": 1,
    "milli": 1,
    "millis": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "min": 60_000,
    "m": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
}


def duration_ms(text: str) -> float | None:
    m = _DURATION.match(text)
    if not m:
        return None
    return float(m.group(1)) * _UNIT_MS[(m.group(2) or "ms").lower()]


DURATION, INTEGER, BOOLEAN, MEMORY = "duration", "integer", "boolean", "memory size"

KNOWN: dict[str, str | tuple[str, ...]] = {
    "parallelism.default": INTEGER,
    "pipeline.max-parallelism": INTEGER,
    "pipeline.object-reuse": BOOLEAN,
    "pipeline.auto-watermark-interval": DURATION,
    "pipeline.operator-chaining.enabled": BOOLEAN,
    "execution.runtime-mode": ("STREAMING", "BATCH", "AUTOMATIC"),
    "execution.buffer-timeout.interval": DURATION,
    "execution.checkpointing.interval": DURATION,
    "execution.checkpointing.timeout": DURATION,
    "execution.checkpointing.min-pause": DURATION,
    "execution.checkpointing.mode": ("EXACTLY_ONCE", "AT_LEAST_ONCE"),
    "execution.checkpointing.tolerable-failed-checkpoints": INTEGER,
    "execution.checkpointing.max-concurrent-checkpoints": INTEGER,
    "execution.checkpointing.num-retained": INTEGER,
    "execution.checkpointing.unaligned.enabled": BOOLEAN,
    "execution.checkpointing.aligned-checkpoint-timeout": DURATION,
    "execution.checkpointing.externalized-checkpoint-retention": (
        "DELETE_ON_CANCELLATION",
        "RETAIN_ON_CANCELLATION",
        "NO_EXTERNALIZED_CHECKPOINTS",
    ),
    "restart-strategy.fixed-delay.attempts": INTEGER,
    "restart-strategy.failure-rate.max-failures-per-interval": INTEGER,
    "restart-strategy.exponential-delay.attempts-before-reset-backoff": INTEGER,
    "restart-strategy.exponential-delay.jitter-factor": "number",
    "restart-strategy.exponential-delay.backoff-multiplier": "number",
    "table.exec.mini-batch.enabled": BOOLEAN,
    "table.exec.mini-batch.size": INTEGER,
    "table.exec.mini-batch.allow-latency": DURATION,
    "table.exec.state.ttl": DURATION,
    "table.exec.source.idle-timeout": DURATION,
    "table.exec.resource.default-parallelism": INTEGER,
    "table.exec.sink.not-null-enforcer": ("ERROR", "DROP"),
    "table.optimizer.agg-phase-strategy": ("AUTO", "ONE_PHASE", "TWO_PHASE"),
    "taskmanager.memory.managed.size": MEMORY,
}
_DURATION_SUFFIXES = (".interval", ".timeout", ".delay", ".min-pause", "-backoff", ".ttl", "-latency", "-threshold")
_MEMORY = re.compile(r"^\s*\d+\s*(b|bytes|k|kb|kibibytes|m|mb|mebibytes|g|gb|gibibytes|t|tb|tebibytes)?\s*$", re.I)
_ISO_DURATION = re.compile(r"^P(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?|\d+D)$", re.I)


def kind_of(key: str) -> str | tuple[str, ...] | None:
    known = KNOWN.get(key)
    if known is not None:
        return known
    if key.endswith(".enabled"):
        return BOOLEAN
    if key.endswith(_DURATION_SUFFIXES):
        return DURATION
    return None


def option_problem(key: str, value: str) -> str | None:
    """Why Flink would refuse ``value`` for ``key``, or None (also for options we do not know)."""
    kind = kind_of(key)
    v = value.strip()
    if kind is None:
        return None
    if isinstance(kind, tuple):
        if v.upper().replace("-", "_") not in kind:
            return f"{key} must be one of {', '.join(kind)}, not {value!r}"
        return None
    ok = {
        DURATION: lambda: duration_ms(v) is not None or bool(_ISO_DURATION.match(v)),
        INTEGER: lambda: bool(re.fullmatch(r"[+-]?\d+", v)),
        BOOLEAN: lambda: v.lower() in ("true", "false"),
        MEMORY: lambda: bool(_MEMORY.match(v)),
        "number": lambda: bool(re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", v)),
    }[kind]()
    if ok:
        return None
    example = {
        DURATION: "'10 s', '500 ms' or '5 min'",
        INTEGER: "'4'",
        BOOLEAN: "'true' or 'false'",
        MEMORY: "'512 mb'",
        "number": "'1.5'",
    }[kind]
    return f"{key} is a {kind} (e.g. {example}), not {value!r}"
