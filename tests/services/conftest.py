"""Service tests against the fake Target: no Flink, no emulator, SQLite; each test well under a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.domain.apps import AppKind, AppSpec, Checkpointing
from streampilot.services.platform import Platform
from streampilot.store.orm import Cluster, Operation
from streampilot.targets.fake import KIND, FakeFleet
from tests.conftest import test_settings
from tests.helpers import DATAGEN_SQL


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet()


async def open_platform(home: Path, fleet: FakeFleet) -> Platform:
    p = Platform(test_settings(home, f"sqlite:///{home.parent / 'sp.db'}"))
    p.ctx.target_factories[KIND] = fleet.target
    await p.open()
    return p


@pytest.fixture
async def platform(tmp_path: Path, fleet: FakeFleet) -> AsyncIterator[Platform]:
    p = await open_platform(tmp_path / "home", fleet)
    yield p
    await p.close()


@pytest.fixture
async def cluster_id(platform: Platform) -> int:
    async with platform.ctx.sessions() as s, s.begin():
        c = Cluster(team_id=1, name="fake", kind=KIND, rest_url=None, options={})
        s.add(c)
        await s.flush()
        return c.id


@pytest.fixture
async def app_id(platform: Platform, cluster_id: int) -> int:
    spec = AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL, checkpointing=Checkpointing(interval_s=10))
    return (await platform.apps.create("orders", cluster_id, spec)).id


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    token = platform.settings.token_file.read_text().strip()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform)),
        base_url="http://streampilot",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def finished(platform: Platform, op_id: int, timeout: float = 5) -> Operation:
    """The operation once it has ended (the background work runs on this test's event loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = await platform.lifecycle.get_operation(op_id)
        if op.state in ("succeeded", "failed"):
            return op
        await asyncio.sleep(0.01)
    raise AssertionError(f"operation {op_id} still {op.state}: {op.steps}")


def texts(op: Operation | dict[str, Any]) -> list[str]:
    steps = op["steps"] if isinstance(op, dict) else op.steps
    return [s["text"] for s in steps]
