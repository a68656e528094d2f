"""Auto-restart after FAILED and policy restarts: a growing backoff, no resubmission while the cluster lacks the slots
the job needs, and a budget spent on the job's own failures only (fake Target, no Flink)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from streampilot.domain.apps import AppKind, AppSpec, AutoRestart, CheckpointFailurePolicy
from streampilot.flink.client import CheckpointInfo, CheckpointStats
from streampilot.services.platform import Platform
from streampilot.targets.fake import FakeFleet, FakeTarget
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished


async def crashing_app(platform: Platform, cluster_id: int, fleet: FakeFleet, max_restarts: int) -> int:
    budget = AutoRestart(max_restarts=max_restarts, window_s=3600, initial_backoff_s=0.2, multiplier=2, jitter=0)
    spec = AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL, auto_restart=budget)
    app = await platform.apps.create("crashy", cluster_id, spec)
    fleet.fail_at_start = True
    await finished(platform, (await platform.lifecycle.start(app.id)).id)
    return app.id


async def drive(platform: Platform, fleet: FakeFleet, seconds: float, until: int | None = None) -> list[float]:
    """Run the tracker and the policies for a while (or until ``until`` submissions); the times at
    which jobs were submitted."""
    launched: list[float] = []
    seen = len(fleet.launches)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (until is None or len(launched) < until):
        await platform.tracker.run_once()
        await platform.policies.run_once()
        if len(fleet.launches) > seen:
            launched.extend([time.monotonic()] * (len(fleet.launches) - seen))
            seen = len(fleet.launches)
        await asyncio.sleep(0.02)
    return launched


async def details(platform: Platform, app_id: int) -> list[str]:
    return [e.detail for e in await platform.apps.events(app_id, 500)]


async def test_restarts_back_off_then_the_budget_is_spent(
    platform: Platform, cluster_id: int, fleet: FakeFleet
) -> None:
    app_id = await crashing_app(platform, cluster_id, fleet, max_restarts=3)
    launched = await drive(platform, fleet, 3.0)
    assert len(launched) == 3, launched  # the budget: 3, each after a longer wait than the one before
    gaps = [b - a for a, b in itertools.pairwise(launched)]
    assert gaps[0] >= 0.4 - 0.05 and gaps[1] >= 0.8 - 0.05, gaps  # 0.2 s, then 0.4 s, then 0.8 s
    said = await details(platform, app_id)
    assert any("auto-restart in 0.2 s (backoff)" in d for d in said), said
    assert any("auto-restart in 0.8 s (backoff)" in d for d in said), said
    assert any("auto-restart budget spent: 3 restarts" in d for d in said), said
    assert (await platform.apps.get(app_id)).state == "FAILED"


async def test_no_restart_while_the_cluster_lacks_slots_and_none_is_spent(
    platform: Platform, cluster_id: int, fleet: FakeFleet
) -> None:
    app_id = await crashing_app(platform, cluster_id, fleet, max_restarts=1)
    fleet.slots_free = False
    assert await drive(platform, fleet, 1.0) == []  # due after 0.2 s, but no slot is free
    said = await details(platform, app_id)
    waits = [d for d in said if d.startswith("waiting to restart: the job needs 1 free slot(s)")]
    assert len(waits) == 1, said  # said once per wait, not every pass
    fleet.slots_free = True
    assert len(await drive(platform, fleet, 0.5)) == 1  # slots again: the one restart of the budget


class FailingCheckpoints:
    """Flink's checkpoint statistics of a job whose every checkpoint fails (two new failures per read)."""

    def __init__(self) -> None:
        self.next_id = 1

    async def checkpoints(self, job_id: str) -> CheckpointStats:
        now = int(time.time() * 1000)
        failed = [
            CheckpointInfo(i, "FAILED", None, now, None, None, None, "injected", failure_ms=now)
            for i in (self.next_id, self.next_id + 1)
        ]
        self.next_id += 2
        return CheckpointStats(0, len(failed), 0, 0, None, failed[-1], None, failed)


async def test_policy_restarts_for_failing_checkpoints_back_off(
    platform: Platform, cluster_id: int, fleet: FakeFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = FailingCheckpoints()
    monkeypatch.setattr(FakeTarget, "flink_api", lambda self, job_id: (rest, job_id))
    spec = AppSpec(
        kind=AppKind.SQL,
        sql=DATAGEN_SQL,
        checkpoint_failure_policy=CheckpointFailurePolicy(failures=2, window_s=300, action="restart"),
        auto_restart=AutoRestart(max_restarts=100, window_s=3600, initial_backoff_s=0.3, multiplier=2, jitter=0),
    )
    app = await platform.apps.create("flaky-checkpoints", cluster_id, spec)
    await finished(platform, (await platform.lifecycle.start(app.id)).id)
    # Every job breaches at once; the first restart is immediate, then 0.3 s, 0.6 s and 1.2 s apart (on a
    # busy machine later, never sooner), and the fifth job waits 2.4 s for its restart.
    launched = await drive(platform, fleet, 20, until=4)
    launched += await drive(platform, fleet, 1.0)
    assert len(launched) == 4, launched
    gaps = [b - a for a, b in itertools.pairwise(launched)]
    assert [round(g, 1) >= want for g, want in zip(gaps, (0.3, 0.6, 1.2), strict=True)] == [True] * 3, gaps
    said = await details(platform, app.id)
    deferred = [d for d in said if d.startswith("restart by policy in ")]
    # Jobs 2-5 each breached once and had their restart deferred (the last one's is still pending),
    # said once per deferred restart, not on every pass while it waits.
    assert len(deferred) == 4, said
    assert "0.3 s after the previous one (backoff after 1 policy restart(s) within 3600 s)" in deferred[0], deferred
    assert "1.2 s after the previous one (backoff after 3 policy restart(s) within 3600 s)" in deferred[2], deferred
    breaches = [d for d in said if d.startswith("2 failed checkpoints within 300 s")]
    assert len(breaches) == 5, said  # one breach per job: waiting for the restart does not repeat it
    assert (await platform.apps.get(app.id)).state == "RUNNING"
