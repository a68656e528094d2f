"""Small helpers shared by tests: waiting on an application's state through the API."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from streampilot.tasks import cancel_and_wait

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


async def wait_operation(api: httpx.AsyncClient, op_id: int, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    op: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await api.get(f"/api/v1/operations/{op_id}")
        assert resp.status_code == 200, resp.text
        op = resp.json()
        if op["state"] in ("succeeded", "failed"):
            return op
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op_id} did not end within {timeout} s: {op}")


async def act(
    api: httpx.AsyncClient,
    app_id: int,
    verb: str,
    body: dict[str, Any] | None = None,
    *,
    expect: str | None = "succeeded",
    timeout: float = 180,
) -> dict[str, Any]:
    """A lifecycle verb through the API: 202 with its operation, then the operation once it ended."""
    path = "savepoints" if verb == "savepoint" else verb
    resp = await api.post(f"/api/v1/apps/{app_id}/{path}", json=body)
    assert resp.status_code == 202, resp.text
    op = await wait_operation(api, resp.json()["operation"]["id"], timeout)
    if expect is not None:
        assert op["state"] == expect, op
    return op


def written_rows(out: Path) -> list[str]:
    """The rows a job's filesystem sink (csv) wrote under ``out``, unquoted."""
    files = [f for f in out.rglob("*") if f.is_file() and not f.name.startswith(".")]
    return [r.strip('"') for f in files for r in f.read_text().split()]


async def console_login(api: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """Log in to the console with the client's API token: the session cookie header, and the CSRF token
    its forms carry."""
    token = api.headers["Authorization"].split()[1]
    resp = await api.post("/login", data={"token": token, "next": "/clusters"})
    assert resp.status_code == 303, resp.text
    cookie = {"Cookie": resp.headers["set-cookie"].split(";", 1)[0]}
    page = await api.get("/clusters", headers=cookie)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return cookie, found.group(1)


async def start_uvicorn(server: Any) -> asyncio.Task[None]:
    """Serve in a task; returns once the server listens (its start's own error raised, never a wait forever)."""
    task: asyncio.Task[None] = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()  # raises what ended it
            raise RuntimeError("uvicorn ended without starting")
        if time.monotonic() > deadline:
            await cancel_and_wait([task])
            raise TimeoutError("uvicorn did not start within 30 s")
        await asyncio.sleep(0.02)
    return task


async def stop_uvicorn(server: Any, task: asyncio.Task[None]) -> None:
    """Ask the server to exit; cancelled if it has not within 10 s (a connection it waits for)."""
    server.should_exit = True
    await asyncio.wait({task}, timeout=10)
    await cancel_and_wait([task])


@contextlib.asynccontextmanager
async def serving(platform: Any, port: int | None = None) -> AsyncIterator[str]:
    """The platform's API and console on a real port of this process (uvicorn); yields the base URL."""
    import uvicorn

    from streampilot.api.app import create_app
    from streampilot.flink.local import free_port

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning"))
    task = await start_uvicorn(server)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await stop_uvicorn(server, task)
