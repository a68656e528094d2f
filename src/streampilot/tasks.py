"""Ending asyncio tasks for sure.

A cancelled task can go on running: on Python 3.11, ``asyncio.wait_for`` returns the inner result and
drops the cancellation when the inner future finished in the same turn as the cancel (CPython issue
gh-86296, fixed in 3.12), and a library may catch ``CancelledError`` the same way. A stop that cancels
once and then awaits the task waits forever in that case, and with it the server's shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("streampilot.tasks")

RECANCEL_S = 0.5  # how long a cancelled task may take before it is cancelled again


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, limit_s: float = 30.0) -> bool:
    """Cancel ``tasks`` and wait until each has ended, cancelling again those that swallowed it.

    Returns whether all ended within ``limit_s``; those that did not are logged (by name) and left.
    Their results and exceptions are not raised: a stop must go on to stop the rest.
    """
    given = list(tasks)
    pending = {task for task in given if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    attempts = 0
    while pending:
        for task in pending:
            task.cancel()
        attempts += 1
        left = deadline - loop.time()
        if left <= 0:
            names = ", ".join(sorted(task.get_name() for task in pending))
            log.error("tasks still running %.0f s after being cancelled %d times: %s", limit_s, attempts, names)
            return False
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
        if pending:
            log.debug("cancelling again: %s", ", ".join(task.get_name() for task in pending))
    for task in given:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning for a stopped task
    return True
