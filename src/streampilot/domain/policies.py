"""Policies Flink cannot express, decided without I/O: the checkpoint-failure window, the
auto-restart budget and the checkpoint stall.

Their memory between passes is a small JSON-able ``PolicyMemory`` stored with the application, so a
restart of the platform neither forgets failures nor fires twice on the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streampilot.domain.apps import AutoRestart, CheckpointFailurePolicy, CheckpointStall


@dataclass
class PolicyMemory:
    job_id: str | None = None
    failed: dict[int, int] = field(default_factory=dict)  # failed checkpoint id -> failure time (ms)
    window_start_ms: int = 0  # failures before this moment were already acted upon
    restarts_ms: list[int] = field(default_factory=list)  # policy restarts after FAILED
    budget_spent_noted: bool = False
    stall_noted_for_ms: int | None = None  # the last completion time a stall was reported for
    expect_restore: str | None = None  # a policy restart's checkpoint, until Flink confirms it restored it

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> PolicyMemory:
        raw = raw or {}
        return cls(
            job_id=raw.get("job_id"),
            failed={int(k): int(v) for k, v in (raw.get("failed") or {}).items()},
            window_start_ms=int(raw.get("window_start_ms", 0)),
            restarts_ms=[int(t) for t in raw.get("restarts_ms", [])],
            budget_spent_noted=bool(raw.get("budget_spent_noted", False)),
            stall_noted_for_ms=raw.get("stall_noted_for_ms"),
            expect_restore=raw.get("expect_restore"),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "failed": {str(k): v for k, v in self.failed.items()},
            "window_start_ms": self.window_start_ms,
            "restarts_ms": self.restarts_ms,
            "budget_spent_noted": self.budget_spent_noted,
            "stall_noted_for_ms": self.stall_noted_for_ms,
            "expect_restore": self.expect_restore,
        }


@dataclass(frozen=True)
class Breach:
    failures: int
    window_s: float
    checkpoint_ids: tuple[int, ...]

    def describe(self) -> str:
        ids = ", ".join(str(i) for i in self.checkpoint_ids)
        return f"{self.failures} failed checkpoints within {self.window_s:g} s (ids {ids})"


def note_failures(memory: PolicyMemory, job_id: str, failures: dict[int, int], now_ms: int, keep_ms: int) -> None:
    """Remember distinct failed checkpoints of ``job_id``; a new job starts a new memory of failures."""
    if memory.job_id != job_id:
        memory.job_id = job_id
        memory.failed = {}
        memory.window_start_ms = 0
    memory.failed.update(failures)
    memory.failed = {cid: t for cid, t in memory.failed.items() if t >= now_ms - keep_ms}


def checkpoint_breach(memory: PolicyMemory, policy: CheckpointFailurePolicy, now_ms: int) -> Breach | None:
    """N distinct failures inside the window (and after the last action) is a breach."""
    since = max(now_ms - int(policy.window_s * 1000), memory.window_start_ms)
    inside = sorted(cid for cid, t in memory.failed.items() if t >= since)
    if len(inside) >= policy.failures:
        return Breach(len(inside), policy.window_s, tuple(inside))
    return None


def acted(memory: PolicyMemory, now_ms: int) -> None:
    """Start a fresh window: the failures counted so far never fire again."""
    memory.window_start_ms = now_ms + 1


def restart_allowed(memory: PolicyMemory, budget: AutoRestart, now_ms: int) -> bool:
    recent = [t for t in memory.restarts_ms if t >= now_ms - int(budget.window_s * 1000)]
    memory.restarts_ms = recent
    return len(recent) < budget.max_restarts


def stalled(stall: CheckpointStall, last_completed_ms: int | None, running_since_ms: int, now_ms: int) -> bool:
    reference = last_completed_ms if last_completed_ms is not None else running_since_ms
    return now_ms - reference >= stall.after_s * 1000
