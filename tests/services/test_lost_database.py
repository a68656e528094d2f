"""PostgreSQL's connection drops at the worst moment: after it committed, before the platform heard.

A start whose operation was stored still answers 202 (the platform finds its own operation by its
key) and runs one job; a retry with the same Idempotency-Key gets the same operation, not a 409; a
change whose commit was not confirmed answers 503 (unknown), never 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from streampilot.store.orm import Cluster
from streampilot.targets.fake import KIND, FakeFleet
from tests.conftest import test_settings as settings_for
from tests.dbproxy import DbProxy
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
async def proxy(db_url: str) -> AsyncIterator[DbProxy]:
    where = urlparse(db_url)
    p = await DbProxy(where.hostname or "127.0.0.1", where.port or 5432).start()
    yield p
    await p.stop()


@pytest.fixture
async def platform(tmp_path: Path, db_url: str, proxy: DbProxy, fleet: FakeFleet) -> AsyncIterator[Platform]:
    where = urlparse(db_url)
    through_proxy = where._replace(netloc=f"{where.username or 'postgres'}@127.0.0.1:{proxy.bound_port}").geturl()
    p = Platform(settings_for(tmp_path / "home", through_proxy))
    p.ctx.target_factories[KIND] = fleet.target
    await p.open()
    yield p
    await p.close()


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    token = platform.settings.token_file.read_text().strip()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False),
        base_url="http://streampilot",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def _app(platform: Platform, api: httpx.AsyncClient) -> int:
    async with platform.ctx.sessions() as s, s.begin():
        cluster = Cluster(team_id=1, name="fake", kind=KIND, rest_url=None, options={})
        s.add(cluster)
        await s.flush()
    resp = await api.post(
        "/api/v1/apps", json={"name": "orders", "cluster_id": cluster.id, "kind": "sql", "sql": DATAGEN_SQL}
    )
    assert resp.status_code == 201, resp.text
    app_id: int = resp.json()["id"]
    return app_id


async def test_a_start_survives_a_dropped_connection_at_its_commit(
    platform: Platform, api: httpx.AsyncClient, proxy: DbProxy, fleet: FakeFleet
) -> None:
    app_id = await _app(platform, api)
    proxy.cut_after_commit_of(b"INSERT INTO operations")
    resp = await api.post(f"/api/v1/apps/{app_id}/start", headers={"Idempotency-Key": "start-1"})
    assert proxy.cuts == 1  # the connection did drop right after the commit
    assert resp.status_code == 202, resp.text
    op = resp.json()["operation"]
    assert (await finished(platform, op["id"])).state == "succeeded"
    assert len(fleet.launches) == 1  # one job, not two

    # The client never saw that answer and retries: the same operation, no 409, no second job.
    again = await api.post(f"/api/v1/apps/{app_id}/start", headers={"Idempotency-Key": "start-1"})
    assert again.status_code == 202, again.text
    assert again.json()["operation"]["id"] == op["id"]
    assert len(fleet.launches) == 1
    # A new intent (a new key) is judged on its own: the app already runs.
    assert (await api.post(f"/api/v1/apps/{app_id}/start", headers={"Idempotency-Key": "start-2"})).status_code == 409
    # The same key for another verb is a mistake the client hears about.
    resp = await api.post(f"/api/v1/apps/{app_id}/cancel", headers={"Idempotency-Key": "start-1"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "Idempotency-Key"


async def test_an_unconfirmed_commit_is_503_and_the_change_is_there(
    platform: Platform, api: httpx.AsyncClient, proxy: DbProxy
) -> None:
    app_id = await _app(platform, api)
    proxy.cut_after_commit_of(b"INSERT INTO app_versions")
    resp = await api.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 3})
    assert proxy.cuts == 1, resp.text
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "1" and "retry" in resp.json()["detail"]
    after = (await api.get(f"/api/v1/apps/{app_id}")).json()
    assert after["current_version"] == 2 and after["spec"]["parallelism"] == 3


async def test_an_instance_without_its_database_is_not_ready(api: httpx.AsyncClient, proxy: DbProxy) -> None:
    assert (await api.get("/api/v1/health/ready")).status_code == 200
    await proxy.stop()  # the database is gone (and every connection to it)
    resp = await api.get("/api/v1/health/ready")
    assert resp.status_code == 503, resp.text
    assert resp.json()["checks"]["database"].startswith("not reachable")
    assert (await api.get("/api/v1/health")).status_code == 200  # alive all the same: liveness is not readiness
