"""What was submitted beside what Flink reports, row by row on Flink's own key names (no I/O).

Flink's readback comes in other shapes than the configuration we send: the job's restart strategy as a
sentence, checkpointing as ``/jobs/<id>/checkpoints/config`` fields in milliseconds, parallelism in the
execution config. Here it is put back into configuration keys and Flink's notation ("500 ms",
"EXACTLY_ONCE"), so each row compares like with like; a key Flink does not read back is not a difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streampilot.domain.flinkconf import normalise
from streampilot.domain.restart import ms, read_sentence

_CHECKPOINT_KEYS = {
    "interval": "execution.checkpointing.interval",
    "timeout": "execution.checkpointing.timeout",
    "min_pause": "execution.checkpointing.min-pause",
}
_RESTART_KEYS = {
    "failure-rate": {
        "max_failures": "restart-strategy.failure-rate.max-failures-per-interval",
        "interval_s": "restart-strategy.failure-rate.failure-rate-interval",
        "delay_s": "restart-strategy.failure-rate.delay",
    },
    "fixed-delay": {
        "attempts": "restart-strategy.fixed-delay.attempts",
        "delay_s": "restart-strategy.fixed-delay.delay",
    },
}


@dataclass(frozen=True)
class ReadbackRow:
    key: str
    submitted: str | None  # None: not submitted (Flink's default applies)
    flink: str | None  # None: Flink does not read this key back
    differs: bool


def flink_view(readback: Mapping[str, Any]) -> dict[str, str]:
    """Flink's readback as configuration keys in Flink's notation."""
    out: dict[str, str] = {}
    if readback.get("parallelism") is not None:
        out["parallelism.default"] = str(readback["parallelism"])
    sentence = readback.get("restart_strategy")
    if sentence:
        facts = read_sentence(str(sentence))
        kind = str(facts.get("type"))
        if kind != "unrecognised":
            out["restart-strategy.type"] = kind
        for fact, key in _RESTART_KEYS.get(kind, {}).items():
            value = facts.get(fact)
            if isinstance(value, int | float):
                out[key] = ms(value) if fact.endswith("_s") else str(value)
    cp = readback.get("checkpointing")
    if isinstance(cp, Mapping):
        for field, key in _CHECKPOINT_KEYS.items():
            if isinstance(cp.get(field), int | float):
                out[key] = f"{cp[field]:g} ms"
        if cp.get("mode"):
            out["execution.checkpointing.mode"] = str(cp["mode"]).upper()
        for field, key in (
            ("tolerable_failed_checkpoints", "execution.checkpointing.tolerable-failed-checkpoints"),
            ("max_concurrent", "execution.checkpointing.max-concurrent-checkpoints"),
        ):
            if cp.get(field) is not None:
                out[key] = str(cp[field])
        if isinstance(cp.get("unaligned_checkpoints"), bool):
            out["execution.checkpointing.unaligned.enabled"] = str(cp["unaligned_checkpoints"]).lower()
        ext = cp.get("externalization")
        if isinstance(ext, Mapping):
            out["execution.checkpointing.externalized-checkpoint-retention"] = (
                "NO_EXTERNALIZED_CHECKPOINTS"
                if not ext.get("enabled")
                else "DELETE_ON_CANCELLATION"
                if ext.get("delete_on_cancellation", True)
                else "RETAIN_ON_CANCELLATION"
            )
    return out


def aligned(submitted: Mapping[str, str], readback: Mapping[str, Any] | None) -> list[ReadbackRow]:
    """One row per key: the submitted keys in their order, then keys only Flink reports."""
    flink = flink_view(readback or {})
    rows = []
    for key in [*submitted, *(k for k in flink if k not in submitted)]:
        mine, theirs = submitted.get(key), flink.get(key)
        differs = mine is not None and theirs is not None and normalise(key, mine) != normalise(key, theirs)
        rows.append(ReadbackRow(key, mine, theirs, differs))
    return rows
