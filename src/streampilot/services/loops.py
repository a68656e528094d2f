"""Runs ``run_once`` callables forever at an interval; logs and survives errors, warns on overrun."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from streampilot.tasks import cancel_and_wait

log = logging.getLogger("streampilot.loops")


@dataclass
class Loop:
    name: str
    interval_s: float
    run_once: Callable[[], Awaitable[object]]
    passes: int = 0
    overruns: int = 0
    last_error: str | None = None
    on_pass: Callable[[str, float, bool], None] | None = None  # (loop, seconds, ok): for /metrics
    last_pass_at: float | None = None  # time.monotonic() when a pass last ended
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)

    def stale(self, now: float | None = None) -> bool:
        """Whether the loop has not finished a pass for three intervals (at least 30 s): stuck or dead."""
        if self._task is None:
            return False
        limit = max(3 * self.interval_s, 30.0)
        now = time.monotonic() if now is None else now
        return self._task.done() or (self.last_pass_at is not None and now - self.last_pass_at > limit)

    async def _forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:  # a cancellation a library swallowed still ends the loop at its next turn
            started = loop.time()
            try:
                await self.run_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a loop must survive anything one pass throws
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("loop %s: pass failed", self.name)
            self.passes += 1
            elapsed = loop.time() - started
            self.last_pass_at = time.monotonic()
            if self.on_pass is not None:
                self.on_pass(self.name, elapsed, self.last_error is None)
            if elapsed > self.interval_s:
                self.overruns += 1
            if elapsed > max(self.interval_s, 1.0):  # a sub-second loop a little late is no news
                log.warning(
                    "loop %s: pass took %.2f s, longer than its interval %.2f s", self.name, elapsed, self.interval_s
                )
            await asyncio.sleep(max(0.0, self.interval_s - elapsed))

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._forever(), name=f"loop:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            await cancel_and_wait([self._task])
            self._task = None
