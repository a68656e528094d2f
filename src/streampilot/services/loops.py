"""Runs ``run_once`` callables forever at an interval; logs and survives errors, warns on overrun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("streampilot.loops")


@dataclass
class Loop:
    name: str
    interval_s: float
    run_once: Callable[[], Awaitable[object]]
    passes: int = 0
    overruns: int = 0
    last_error: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
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
            if elapsed > self.interval_s:
                self.overruns += 1
                log.warning(
                    "loop %s: pass took %.2f s, longer than its interval %.2f s", self.name, elapsed, self.interval_s
                )
            await asyncio.sleep(max(0.0, self.interval_s - elapsed))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name=f"loop:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
