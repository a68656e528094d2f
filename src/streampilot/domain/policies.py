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
    attempts_ms: list[int] = field(default_factory=list)  # every auto-restart (also after a lack of slots)
    next_restart_ms: int | None = None  # a FAILED app's next auto-restart is due then (backoff)
    for_resources: bool = False  # the failure was Flink not finding slots: it does not spend the budget
    judged_job_id: str | None = None  # the failed job for_resources was read for (read once per job)
    waiting_noted: bool = False  # "waiting for free slots" said once per wait
    policy_restarts_ms: list[int] = field(default_factory=list)  # restarts for checkpoint failures or stalls
    # A policy restart deferred by backoff: {"job_id", "due_ms", "why", "breached_at_ms"}.
    pending_restart: dict[str, Any] | None = None

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
            attempts_ms=[int(t) for t in raw.get("attempts_ms", [])],
            next_restart_ms=raw.get("next_restart_ms"),
            for_resources=bool(raw.get("for_resources", False)),
            judged_job_id=raw.get("judged_job_id"),
            waiting_noted=bool(raw.get("waiting_noted", False)),
            policy_restarts_ms=[int(t) for t in raw.get("policy_restarts_ms", [])],
            pending_restart=raw.get("pending_restart"),
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
            "attempts_ms": self.attempts_ms,
            "next_restart_ms": self.next_restart_ms,
            "for_resources": self.for_resources,
            "judged_job_id": self.judged_job_id,
            "waiting_noted": self.waiting_noted,
            "policy_restarts_ms": self.policy_restarts_ms,
            "pending_restart": self.pending_restart,
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


def backoff_ms(budget: AutoRestart, attempts: int, draw: float) -> int:
    """The wait before the next auto-restart after ``attempts`` recent ones: exponential, capped, with
    jitter (``draw`` in [0, 1) spreads apps that failed together, e.g. when a TaskManager died)."""
    base = min(budget.max_backoff_s, budget.initial_backoff_s * budget.multiplier ** min(attempts, 64))
    return int(base * (1 + budget.jitter * (2 * draw - 1)) * 1000)


# Policy restarts (checkpoint failures, stalls) back off like auto-restarts; with no auto_restart
# settings of its own an app gets these. Restarts older than the window no longer lengthen the wait.
POLICY_BACKOFF = AutoRestart(max_restarts=0, window_s=3600)


def policy_restart_due(memory: PolicyMemory, backoff: AutoRestart, now_ms: int, draw: float) -> int:
    """When the next policy restart may happen: at once for the first within the window, else the
    backoff after the previous one (1 s, 2 s, 4 s ... by default), so a job whose checkpoints keep
    failing right after each restart is not restarted in a storm."""
    memory.policy_restarts_ms = [t for t in memory.policy_restarts_ms if t >= now_ms - int(backoff.window_s * 1000)]
    if not memory.policy_restarts_ms:
        return now_ms
    return memory.policy_restarts_ms[-1] + backoff_ms(backoff, len(memory.policy_restarts_ms) - 1, draw)


# How Flink says a job failed for want of slots, not for anything in the job itself (Flink:
# NoResourceAvailableException from the scheduler's slot allocation, the adaptive scheduler's
# "Could not acquire the minimum required resources", a bulk of slot requests that timed out).
_NO_RESOURCES = (
    "NoResourceAvailableException",
    "Could not acquire the minimum required resources",
    "Slot request bulk is not fulfillable",
    "Could not allocate the required slot",
)


def lacks_resources(exception_text: str) -> bool:
    return any(marker in exception_text for marker in _NO_RESOURCES)
