"""What a hanging test awaits: every asyncio task's stack, printed shortly before pytest-timeout fails it.

pytest-timeout prints the threads' stacks, which for a hang in asyncio show only the event loop waiting
in its selector; the tasks' own stacks say which await never ends.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading

import pytest

MARGIN_S = 30.0  # printed this long before the test's timeout


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def _print_tasks(loop: asyncio.AbstractEventLoop, nodeid: str) -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks(loop)
    out.write(f"\n=== {nodeid}: still running near its timeout; {len(tasks)} asyncio tasks ===\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        task.print_stack(limit=12, file=out)
    sys.__stderr__.write(out.getvalue())  # past pytest's capture: the run's log shows it even if it is killed
    sys.__stderr__.flush()


def _report(nodeid: str) -> None:
    loops = _running_loops()
    if not loops:
        sys.__stderr__.write(f"\n=== {nodeid}: still running near its timeout, no asyncio loop running ===\n")
    for loop in loops:
        loop.call_soon_threadsafe(_print_tasks, loop, nodeid)


def watch(item: pytest.Item) -> threading.Timer | None:
    """A timer that reports the test's tasks ``MARGIN_S`` before its timeout (None without one)."""
    marker = item.get_closest_marker("timeout")
    timeout = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout") or 0)
    if timeout <= MARGIN_S:
        return None
    timer = threading.Timer(timeout - MARGIN_S, _report, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    return timer
