"""Stopping ends what it stops, even when a cancellation is swallowed on the way.

On Python 3.11 ``asyncio.wait_for`` drops a cancellation that arrives in the same turn as its inner
result (gh-86296); a loop whose pass was inside one went on forever and the stop awaiting it with it
(a suite that hung until its CI's time ran out)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streampilot.services.loops import Loop
from streampilot.tasks import cancel_and_wait


async def swallowing(times: list[int], seen: list[int]) -> None:
    """Catches the first ``times[0]`` cancellations as such a library call does, then ends on the next."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(1)
            if len(seen) > times[0]:
                raise


async def test_a_task_that_swallows_cancellations_is_cancelled_again_until_it_ends() -> None:
    seen: list[int] = []
    task = asyncio.create_task(swallowing([2], seen))
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], limit_s=10)
    assert task.done() and len(seen) == 3


async def test_a_task_that_never_ends_is_named_and_left_after_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []
    times = [10**6]
    task = asyncio.create_task(swallowing(times, seen), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="streampilot.tasks"):
        assert not await cancel_and_wait([task], limit_s=1.2)
    assert not task.done() and len(seen) >= 3  # cancelled again every half second
    assert "stubborn" in caplog.text
    times[0] = 0  # (the test's own clean-up: a real stubborn task is beyond help)
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert task.cancelled()


async def test_a_loop_whose_pass_swallows_its_cancellation_still_stops() -> None:
    seen: list[int] = []
    inside = asyncio.Event()

    async def one_pass() -> None:
        inside.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(1)
            if len(seen) > 1:
                raise
            # the first one swallowed, as wait_for does: the pass returns normally

    loop = Loop("swallower", interval_s=0.05, run_once=one_pass)
    loop.start()
    await inside.wait()
    await asyncio.wait_for(loop.stop(), 10)
    assert seen == [1]  # ended by its stop flag at the next turn, not by a second pass
    assert loop.passes == 1
