"""The policy loop: what Flink cannot do itself, decided by domain/policies.py, acted on here.

Per pass, for every app whose running version has a policy:
- checkpoint failures: distinct failed checkpoint ids in the window (Flink's history plus
  ``latest.failed``) reaching N → restart from the last completed checkpoint, or alert; once per breach;
- checkpoint stall: no completed checkpoint for ``after_s`` → alert (optionally restart); once per stall;
- these policy restarts back off: the first within the hour at once, each further one the app's
  auto-restart backoff (or 1 s, 2 s, 4 s ... up to 300 s) after the previous one;
- auto-restart: a FAILED app the user wants running is started again from its latest checkpoint or
  savepoint, at most ``max_restarts`` times per window; then it is left FAILED, and we say so.
Actions run as background tasks, one at a time per app, through the lifecycle's operation slot, so
they never race a user's operation.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from streampilot.domain.alerts import AlertReason
from streampilot.domain.apps import AppSpec
from streampilot.domain.policies import (
    POLICY_BACKOFF,
    PolicyMemory,
    acted,
    backoff_ms,
    checkpoint_breach,
    lacks_resources,
    note_failures,
    policy_restart_due,
    restart_allowed,
    stalled,
)
from streampilot.domain.states import ACTIVE_STATES, AppState, Cause
from streampilot.flink.client import CheckpointStats, FlinkClient, FlinkError
from streampilot.services.alerting import raise_alert
from streampilot.services.context import Context
from streampilot.services.errors import ServiceError
from streampilot.services.leases import LeaseLost
from streampilot.services.lifecycle import Lifecycle
from streampilot.services.restore_points import candidates as restore_candidates
from streampilot.services.restore_points import snapshot_problem
from streampilot.services.statewriter import lock_app, record_event
from streampilot.services.targets import target_for
from streampilot.store.orm import App, AppVersion, Cluster
from streampilot.tasks import cancel_and_wait

log = logging.getLogger("streampilot.policies")
KEEP_FAILURES_MS = 24 * 3600 * 1000


HA_CHECK_EVERY_S = 60.0


def now_ms() -> int:
    return int(time.time() * 1000)


def restore_point(stats: CheckpointStats | None) -> str | None:
    """Where a restart of this job resumes: its last completed checkpoint or, until one completes, the
    snapshot it was itself restored from (a restarted job that failed again must not lose that)."""
    if stats is None:
        return None
    latest = stats.latest_completed
    return (latest.external_path if latest else None) or stats.latest_restored_path


def failures_of(stats: CheckpointStats) -> dict[int, int]:
    found = {c.checkpoint_id: c.failure_ms or c.trigger_ms for c in stats.history if c.status == "FAILED"}
    if stats.latest_failed is not None:
        latest = stats.latest_failed
        found[latest.checkpoint_id] = latest.failure_ms or latest.trigger_ms
    return found


@dataclass
class PolicyLoop:
    ctx: Context
    lifecycle: Lifecycle
    actions: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    reactions_ms: list[int] = field(default_factory=list)  # breach failure time -> restart submitted
    _specs: dict[tuple[int, int], AppSpec] = field(default_factory=dict)
    # Whether a cluster runs without HA, and when that was read (its /jobmanager/config, not every pass).
    _without_ha: dict[int, tuple[bool, float]] = field(default_factory=dict)

    async def _spec(self, app_id: int, version: int) -> AppSpec:
        key = (app_id, version)
        if key not in self._specs:
            async with self.ctx.sessions() as s:
                raw = (
                    await s.execute(
                        sa.select(AppVersion.spec).where(AppVersion.app_id == app_id, AppVersion.version == version)
                    )
                ).scalar_one()
            self._specs[key] = AppSpec.model_validate(raw)
        return self._specs[key]

    async def run_once(self) -> None:
        await self.ctx.leases_ready()
        watched = [s.value for s in ACTIVE_STATES] + [AppState.FAILED.value, AppState.LOST.value]
        async with self.ctx.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(App, Cluster)
                    .join(Cluster, App.cluster_id == Cluster.id)
                    .where(App.state.in_(watched), App.running_version.is_not(None))
                )
            ).all()
        await asyncio.gather(*(self._guarded(app, cluster) for app, cluster in rows if self.ctx.watches(cluster.id)))

    async def _guarded(self, app: App, cluster: Cluster) -> None:
        try:
            await self._check(app, cluster)
        except LeaseLost as exc:
            log.info("policies of app %s left to the instance that watches it now: %s", app.id, exc)

    async def _check(self, app: App, cluster: Cluster) -> None:
        if app.id in self.actions or app.operation:
            return  # an action or a user's operation is under way: judge again afterwards
        assert app.running_version is not None
        spec = await self._spec(app.id, app.running_version)
        if not (spec.checkpoint_failure_policy or spec.checkpoint_stall or spec.auto_restart):
            return
        memory = PolicyMemory.load(app.policy_state)
        before = memory.dump()
        if app.state not in (AppState.FAILED.value, AppState.LOST.value) and memory.next_restart_ms is not None:
            memory.next_restart_ms, memory.waiting_noted = None, False  # running again: no restart pending
        try:
            rest = target_for(self.ctx, cluster).flink_api(app.job_id) if app.job_id else None
            if app.state == AppState.FAILED.value or await self._lost_for_good(app, cluster):
                stats = None
                if spec.auto_restart is not None and rest is not None:
                    try:  # the failed job's own last checkpoint: newer than what the details loop recorded
                        stats = await rest[0].checkpoints(rest[1])
                    except FlinkError:
                        stats = None
                await self._auto_restart(app, cluster, spec, memory, stats, rest)
            elif app.state in (AppState.RUNNING.value, AppState.RESTARTING.value) and rest is not None:
                stats = await rest[0].checkpoints(rest[1])
                await self._checkpoints(app, spec, memory, stats)
        except FlinkError as exc:
            log.debug("policy check of app %s: %s", app.id, exc)
        if memory.dump() != before:
            async with self.ctx.sessions() as s, s.begin():
                await s.execute(sa.update(App).where(App.id == app.id).values(policy_state=memory.dump()))

    async def _checkpoints(self, app: App, spec: AppSpec, memory: PolicyMemory, stats: CheckpointStats) -> None:
        assert app.job_id is not None
        now = now_ms()
        if memory.expect_restore is not None and app.state == AppState.RUNNING.value:
            restored = stats.latest_restored_path
            if restored == memory.expect_restore:
                await self._note(app, f"confirmed: the new job restored checkpoint {restored}")
            else:
                await self._note(
                    app, f"the new job did not restore {memory.expect_restore} (Flink restored {restored or 'nothing'})"
                )
            memory.expect_restore = None
        note_failures(memory, app.job_id, failures_of(stats), now, KEEP_FAILURES_MS)
        pending = memory.pending_restart
        if pending is not None and pending.get("job_id") != app.job_id:
            memory.pending_restart = None  # the job was replaced meanwhile: that restart is moot
        elif pending is not None and now >= int(pending["due_ms"]):
            memory.pending_restart = None
            memory.policy_restarts_ms.append(now)
            why, breached_at = str(pending["why"]), pending.get("breached_at")
            self._act(app.id, self._restart(app.id, restore_point(stats), why, breached_at))
            return
        if memory.pending_restart is not None:
            return  # a restart is due for this job already: further failures neither fire nor alert again
        policy = spec.checkpoint_failure_policy
        if policy is not None:
            breach = checkpoint_breach(memory, policy, now)
            if breach is not None:
                acted(memory, now)
                last_good = restore_point(stats)
                text = f"{breach.describe()}: policy says {policy.action}"
                facts: dict[str, Any] = {
                    "failures": breach.failures,
                    "window_s": breach.window_s,
                    "checkpoint_ids": list(breach.checkpoint_ids),
                }
                await self._event(app, text, AlertReason.CHECKPOINT_FAILURES, facts)
                if policy.action == "restart":
                    nth = sorted(memory.failed[c] for c in breach.checkpoint_ids)[-1]
                    await self._policy_restart(app, spec, memory, last_good, text, breached_at_ms=nth)
        stall = spec.checkpoint_stall
        if stall is not None and spec.checkpointing.interval_s is not None and app.state == AppState.RUNNING.value:
            last = stats.latest_completed.latest_ack_ms if stats.latest_completed else None
            since = int(app.submitted_at.timestamp() * 1000) if app.submitted_at else now
            if stalled(stall, last, since, now) and memory.stall_noted_for_ms != (last or -1):
                memory.stall_noted_for_ms = last or -1
                text = f"no completed checkpoint for {stall.after_s:g} s"
                await self._event(app, text, AlertReason.CHECKPOINT_STALLED, {"after_s": stall.after_s})
                if stall.restart:
                    await self._policy_restart(app, spec, memory, restore_point(stats), f"checkpoint stall ({text})")

    async def _policy_restart(
        self,
        app: App,
        spec: AppSpec,
        memory: PolicyMemory,
        restore: str | None,
        why: str,
        breached_at_ms: int | None = None,
    ) -> None:
        """Restart now, or when the backoff after the previous policy restarts has passed (the restore
        point is read again then: it may be newer)."""
        now = now_ms()
        backoff = spec.auto_restart or POLICY_BACKOFF
        due = policy_restart_due(memory, backoff, now, random.random())
        if due <= now:
            memory.pending_restart = None
            memory.policy_restarts_ms.append(now)
            self._act(app.id, self._restart(app.id, restore, why, breached_at_ms))
            return
        if memory.pending_restart is None:
            memory.pending_restart = {"job_id": app.job_id, "due_ms": due, "why": why, "breached_at": breached_at_ms}
            recent, wait_ms = len(memory.policy_restarts_ms), due - memory.policy_restarts_ms[-1]
            await self._note(
                app,
                f"restart by policy in {(due - now) / 1000:.1f} s, {wait_ms / 1000:.1f} s after the previous one "
                f"(backoff after {recent} policy restart(s) within {backoff.window_s:g} s): {why}",
            )

    async def _auto_restart(
        self,
        app: App,
        cluster: Cluster,
        spec: AppSpec,
        memory: PolicyMemory,
        stats: CheckpointStats | None,
        rest: tuple[FlinkClient, str] | None,
    ) -> None:
        """Restart a FAILED app after a backoff, once its cluster has the slots it needs; a failure for
        want of slots does not spend the budget, which is for failures of the job itself."""
        budget = spec.auto_restart
        if budget is None or app.desired_state != "RUNNING":
            return
        now = now_ms()
        window_ms = int(budget.window_s * 1000)
        if memory.next_restart_ms is None:
            if memory.judged_job_id != app.job_id:  # Flink's exceptions are read once per failed job
                memory.for_resources = await self._failed_for_resources(rest)
                memory.judged_job_id = app.job_id
            if not memory.for_resources and not restart_allowed(memory, budget, now):
                if not memory.budget_spent_noted:
                    memory.budget_spent_noted = True
                    text = (
                        f"auto-restart budget spent: {len(memory.restarts_ms)} restarts within {budget.window_s:g} s; "
                        "leaving the application FAILED"
                    )
                    facts = {"restarts": len(memory.restarts_ms), "window_s": budget.window_s}
                    await self._event(app, text, AlertReason.RESTART_BUDGET_SPENT, facts)
                return
            memory.attempts_ms = [t for t in memory.attempts_ms if t >= now - window_ms]
            delay = backoff_ms(budget, len(memory.attempts_ms), random.random())
            memory.next_restart_ms = now + delay
            cause = "Flink found no free slots for it" if memory.for_resources else "the job FAILED"
            await self._note(app, f"{cause}; auto-restart in {delay / 1000:.1f} s (backoff)")
            return
        if now < memory.next_restart_ms:
            return
        free, needed = await self._free_slots(cluster), spec.parallelism
        if free is not None and free < needed:
            if not memory.waiting_noted:
                memory.waiting_noted = True
                await self._note(
                    app,
                    f"waiting to restart: the job needs {needed} free slot(s) and cluster {cluster.name!r} has {free}; "
                    "no restart is tried (or spent) until it has",
                )
            return
        memory.next_restart_ms, memory.waiting_noted = None, False
        memory.attempts_ms.append(now)
        if memory.for_resources:
            why = "auto-restart after Flink found no free slots (not counted against the budget)"
        else:
            memory.restarts_ms.append(now)
            memory.budget_spent_noted = False
            n = len(memory.restarts_ms)
            why = f"auto-restart {n} of {budget.max_restarts} within {budget.window_s:g} s after the job FAILED"
        self._act(app.id, self._restart(app.id, restore_point(stats), why))

    async def _lost_for_good(self, app: App, cluster: Cluster) -> bool:
        """LOST because the cluster answered without the job (not because it did not answer), on a
        standalone cluster without high availability: the JobManager restarted and the job is gone
        for good, so auto-restart treats it like a failure. With HA it may still come back: never
        restarted then, so there is never a second job."""
        if (
            app.state != AppState.LOST.value
            or app.unconfirmed_since is not None
            or cluster.kind
            not in (
                "local",
                "standalone",
            )
        ):
            return False
        known = self._without_ha.get(cluster.id)
        if known is not None and time.monotonic() - known[1] < HA_CHECK_EVERY_S:
            return known[0]
        try:
            config = await self.ctx.client(cluster).jobmanager_config()
        except FlinkError:
            return False
        ha = config.get("high-availability.type", config.get("high-availability", "NONE"))
        without = ha.upper() in ("NONE", "")
        self._without_ha[cluster.id] = (without, time.monotonic())
        return without

    async def _free_slots(self, cluster: Cluster) -> int | None:
        described = await target_for(self.ctx, cluster).describe()
        free = described.get("slots_available")
        return free if isinstance(free, int) and described.get("reachable") else None

    @staticmethod
    async def _failed_for_resources(rest: tuple[FlinkClient, str] | None) -> bool:
        """Whether Flink's exceptions say the job failed for want of slots (unknown: it did not)."""
        if rest is None:
            return False
        try:
            found = await rest[0].exceptions(rest[1])
        except FlinkError:
            return False
        return bool(found) and lacks_resources(f"{found[0].get('message', '')}\n{found[0].get('stacktrace', '')}")

    async def _note(self, app: App, text: str) -> None:
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app.id)
            if row is not None:
                await self._fence(s, row)
                await record_event(s, row, row.state, Cause.POLICY, text)

    async def _fence(self, s: Any, row: App) -> None:
        if self.ctx.leases is not None:  # only while this instance still watches the app's cluster
            await self.ctx.leases.fence(s, row.cluster_id)

    async def _event(self, app: App, text: str, reason: AlertReason, facts: dict[str, Any]) -> None:
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app.id)
            if row is None:
                return
            await self._fence(s, row)
            await record_event(s, row, row.state, Cause.POLICY, text)
            raise_alert(s, row, reason, text, **facts)

    def _act(self, app_id: int, work: Any) -> None:
        """Run one action for an app in the background; never two at once for the same app."""

        async def run() -> None:
            try:
                await work
            except LeaseLost as exc:
                log.info("policy action for app %s left to the instance that watches it now: %s", app_id, exc)
            except ServiceError as exc:
                log.warning("policy action for app %s did not go through: %s", app_id, exc)
                async with self.ctx.sessions() as s, s.begin():
                    row = await lock_app(s, app_id)
                    if row is not None:
                        await record_event(s, row, row.state, Cause.POLICY, f"policy action not taken: {exc}")
            except Exception:
                log.exception("policy action for app %s failed", app_id)
            finally:
                self.actions.pop(app_id, None)

        self.actions[app_id] = asyncio.create_task(run(), name=f"policy:{app_id}")

    async def _readable_state(self, app: App, chosen: str | None) -> tuple[str | None, list[str], bool]:
        """The chosen snapshot if it can be read, else the next older readable one we know of.

        Returns the path (or None), why each unreadable candidate was passed over, and whether any
        state was known at all (an app that never retained any has nothing to lose by starting fresh).
        """
        known = [c.path for c in await restore_candidates(self.ctx, app)]  # newest first
        candidates = list(dict.fromkeys([*([chosen] if chosen else []), *known]))
        passed_over: list[str] = []
        for path in candidates:
            problem = await asyncio.to_thread(snapshot_problem, path)
            if problem is None:
                return path, passed_over, True
            passed_over.append(f"{path}: {problem}")
        return None, passed_over, bool(candidates)

    async def _restart(self, app_id: int, checkpoint: str | None, why: str, breached_at_ms: int | None = None) -> None:
        app = await self.lifecycle.apps.get(app_id)
        assert app.running_version is not None
        spec = await self._spec(app_id, app.running_version)
        # Checked before anything is canceled: a restart never drops state silently.
        path, passed_over, had_state = await self._readable_state(app, checkpoint)
        if passed_over and path is not None:
            await self._note(app, f"not restoring {'; '.join(passed_over)}; the next older readable state is {path}")
        restore = path or "none"
        if path is None and had_state:
            unreadable = "; ".join(passed_over)
            if spec.on_state_unavailable != "start_fresh":
                text = (
                    f"not restarted ({why}): no readable state to restore ({unreadable}); the job is left "
                    f"{app.state}. Repair the storage, or set on_state_unavailable: start_fresh to allow a start "
                    "without state"
                )
                await self._event(app, text, AlertReason.STATE_UNAVAILABLE, {"unreadable": passed_over})
                return
            await self._note(
                app, f"no readable state ({unreadable}): starting without state, as on_state_unavailable says"
            )
        restarted = await self.lifecycle.restart(app_id, restore=restore, why=f"restart by policy ({why})")
        if restarted is None:
            return
        if breached_at_ms is not None:
            self.reactions_ms.append(now_ms() - breached_at_ms)
        async with self.ctx.sessions() as s, s.begin():
            row = await lock_app(s, app_id)
            if row is None:
                return
            memory = PolicyMemory.load(row.policy_state)
            memory.expect_restore = checkpoint
            row.policy_state = memory.dump()
            raise_alert(s, row, AlertReason.RESTARTED_BY_POLICY, f"restarted from {restore}: {why}", restore=restore)

    async def close(self) -> None:
        await cancel_and_wait(list(self.actions.values()))
