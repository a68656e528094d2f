"""Small helpers shared by tests: waiting on an application's state through the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

DATAGEN_SQL = """CREATE TABLE src (id BIGINT, v STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '20');
CREATE TABLE snk (id BIGINT, v STRING) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT id, v FROM src;
"""


async def wait_app(
    api: httpx.AsyncClient,
    app_id: int,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 60,
    what: str = "condition",
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await api.get(f"/api/v1/apps/{app_id}")
        assert resp.status_code == 200, resp.text
        last = resp.json()
        if until(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last status: {last.get('status')}")


async def wait_state(api: httpx.AsyncClient, app_id: int, state: str, timeout: float = 60) -> dict[str, Any]:
    return await wait_app(api, app_id, lambda a: a["status"]["state"] == state, timeout, f"state {state}")


async def events(api: httpx.AsyncClient, app_id: int) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/apps/{app_id}/events")
    assert resp.status_code == 200
    result: list[dict[str, Any]] = resp.json()
    return result
