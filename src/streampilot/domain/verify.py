"""Comparison of what we asked Flink for with what Flink reports a running job uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streampilot.domain.apps import AppSpec
from streampilot.domain.restart import expected_facts, read_sentence


def _close(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-6
    return a == b


def compare(spec: AppSpec, job_config: Mapping[str, Any], checkpoint_config: Mapping[str, Any] | None) -> list[str]:
    """Human-readable mismatches between ``spec`` and Flink's readback; empty means verified."""
    mismatches: list[str] = []
    exec_cfg = job_config.get("execution-config") or {}
    parallelism = exec_cfg.get("job-parallelism")
    if isinstance(parallelism, int) and parallelism != spec.parallelism:
        mismatches.append(f"parallelism: asked {spec.parallelism}, Flink runs {parallelism}")
    if spec.restart_strategy is not None:
        sentence = str(exec_cfg.get("restart-strategy", ""))
        seen = read_sentence(sentence)
        want = expected_facts(spec.restart_strategy)
        for key, value in want.items():
            if not _close(seen.get(key), value):
                mismatches.append(
                    f"restart_strategy.{key}: asked {value!r}, Flink reports {seen.get(key)!r} ({sentence!r})"
                )
                break
    cp = spec.checkpointing
    if cp.interval_s is not None:
        if checkpoint_config is None:
            mismatches.append("checkpointing: asked for checkpoints, Flink reports checkpointing disabled")
        else:
            pairs: list[tuple[str, object, object]] = [
                ("interval_s", cp.interval_s * 1000, checkpoint_config.get("interval")),
                ("timeout_s", cp.timeout_s * 1000, checkpoint_config.get("timeout")),
                ("min_pause_s", cp.min_pause_s * 1000, checkpoint_config.get("min_pause")),
                ("mode", cp.mode, checkpoint_config.get("mode")),
                (
                    "tolerable_failed_checkpoints",
                    cp.tolerable_failed_checkpoints,
                    checkpoint_config.get("tolerable_failed_checkpoints"),
                ),
            ]
            ext = checkpoint_config.get("externalization") or {}
            if spec.checkpoint_failure_policy is None or spec.checkpoint_failure_policy.action != "restart":
                retained = bool(ext.get("enabled")) and not ext.get("delete_on_cancellation", True)
                pairs.append(("retain_on_cancel", cp.retain_on_cancel, retained))
            for name, want_v, got in pairs:
                if not _close(want_v, got):
                    mismatches.append(f"checkpointing.{name}: asked {want_v!r}, Flink reports {got!r}")
    return mismatches
