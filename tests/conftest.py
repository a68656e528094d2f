"""Shared test fixtures: one real local Flink cluster per test session, a platform per test.

The platform under test runs in-process (API over ASGI, loops as tasks) with short intervals;
databases are real: SQLite files, and fresh PostgreSQL / MariaDB databases on this machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomysql
import asyncpg
import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.flink.homes import bundled_home_path, inspect_home
from streampilot.flink.local import LocalCluster, LocalClusterLayout, free_port
from streampilot.services.platform import Platform
from streampilot.settings import FlinkSettings, MetricsSettings, Settings, TrackingSettings
from tests.e2e.test_soak import TEST_NAME as SOAK_TEST
from tests.e2e.test_soak import BackgroundSoak, start_soak
from tests.faultproxy import FaultProxy
from tests.hangs import watch
from tests.receivers import HttpReceiver, SmtpReceiver

PG = os.environ.get("STREAMPILOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL = os.environ.get("STREAMPILOT_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


SOAK = pytest.StashKey[BackgroundSoak]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The soak's test goes last: it only waits for the soak started in the background."""
    items.sort(key=lambda item: item.name == SOAK_TEST)  # stable: the rest keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.option.collectonly and any(item.name == SOAK_TEST for item in session.items):
        session.config.stash[SOAK] = start_soak()


def pytest_sessionfinish(session: pytest.Session) -> None:
    soak = session.config.stash.get(SOAK, None)
    if soak is not None:
        soak.stop()


@pytest.fixture(autouse=True)
def report_a_hang(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints the asyncio tasks of a test that is about to time out (tests/hangs.py)."""
    timer = watch(request.node)
    yield
    if timer is not None:
        timer.cancel()


@pytest.fixture(scope="session")
def background_soak(request: pytest.FixtureRequest) -> BackgroundSoak:
    soak = request.config.stash.get(SOAK, None)
    if soak is None:
        soak = request.config.stash[SOAK] = start_soak()
    return soak


@pytest.fixture(scope="session")
def jobs_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test jobs in tests/e2e/jobs/*.java, compiled with javac against the bundled Flink's lib/."""
    home = bundled_home_path()
    assert home is not None
    out = tmp_path_factory.mktemp("jobsjar")
    classes = out / "classes"
    sources = sorted(str(p) for p in (Path(__file__).parent / "e2e" / "jobs").glob("*.java"))
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{home}/lib/*", *sources], check=True)
    jar = out / "test-jobs.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "-C", str(classes), "."], check=True)
    return jar


@pytest.fixture(scope="session")
def udf_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/e2e/udf/*.java (a SQL function) compiled with javac into a jar of its own."""
    home = bundled_home_path()
    assert home is not None
    out = tmp_path_factory.mktemp("udfjar")
    sources = sorted(str(p) for p in (Path(__file__).parent / "e2e" / "udf").glob("*.java"))
    subprocess.run(["javac", "-d", str(out / "classes"), "-cp", f"{home}/lib/*", *sources], check=True)
    jar = out / "shout-udf.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "-C", str(out / "classes"), "."], check=True)
    return jar


@pytest.fixture(scope="session")
def shared_flink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real standalone Flink cluster from the bundled distribution, shared by the session."""
    home_path = bundled_home_path()
    assert home_path is not None, "apache-flink is not installed: run the tests through 'make test'"
    layout = LocalClusterLayout(
        home=inspect_home(home_path),
        root=tmp_path_factory.mktemp("flink"),
        rest_port=free_port(),
        rpc_port=free_port(),
        slots=16,
        taskmanagers=1,
    )
    cluster = LocalCluster(layout)
    asyncio.run(cluster.start(timeout_s=90))
    yield cluster
    asyncio.run(cluster.stop())


@pytest.fixture
async def flink_cluster(shared_flink: LocalCluster) -> LocalCluster:
    """The shared cluster, whole before each test: a process that died since (a test's fault, or Flink's
    own: a PyFlink job's Beam worker can fail its TaskManager with "Reference count must not be
    negative") is started again, as the platform's supervisor does for the clusters it owns."""
    await shared_flink.start(timeout_s=90)
    return shared_flink


async def _create_pg_database() -> tuple[str, str]:
    name = f"sp_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG.replace("postgresql://", "postgres://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG.rsplit("/", 1)[0] + f"/{name}", name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG.replace("postgresql://", "postgres://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _mysql_exec(sql: str) -> None:
    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


DATABASES = os.environ.get("STREAMPILOT_TEST_DATABASES", "sqlite,postgresql,mysql").split(",")


@pytest.fixture(params=DATABASES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The database of one test: every test using the platform runs on each of DATABASES."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'sp.db'}"
    elif kind == "postgresql":
        url, name = await _create_pg_database()
        yield url
        await _drop_pg_database(name)
    else:
        name = f"sp_test_{uuid.uuid4().hex[:10]}"
        await _mysql_exec(f"CREATE DATABASE `{name}`")
        yield MYSQL.rsplit("/", 1)[0] + f"/{name}"
        await _mysql_exec(f"DROP DATABASE IF EXISTS `{name}`")


def test_settings(home: Path, db: str) -> Settings:
    return Settings().with_(
        home=home,
        database_url=db,
        tracking=TrackingSettings(tick_s=0.3, lost_after_s=5, submit_grace_s=10, detail_every_s=0.5),
        flink=FlinkSettings(request_timeout_s=3, submit_timeout_s=120, savepoint_timeout_s=120, start_wait_s=30),
        metrics=MetricsSettings(every_s=2.0),
    )


@pytest.fixture
async def platform(tmp_path: Path, db_url: str) -> AsyncIterator[Platform]:
    p = Platform(test_settings(tmp_path / "home", db_url))
    await p.open()
    yield p
    await p.close()


@pytest.fixture
def token(platform: Platform) -> str:
    return platform.settings.token_file.read_text().strip()


@pytest.fixture
async def api(platform: Platform, token: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://streampilot",
        timeout=180,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture
async def flink(platform: Platform, flink_cluster: LocalCluster, api: httpx.AsyncClient) -> AsyncIterator[int]:
    """The shared cluster registered as a standalone cluster of this test's platform, loops running.

    Yields the cluster id; afterwards cancels every job this test's apps still run.
    """
    resp = await api.post(
        "/api/v1/clusters", json={"name": "shared", "kind": "standalone", "rest_url": flink_cluster.layout.rest_url}
    )
    assert resp.status_code == 201, resp.text
    platform.start_loops()
    yield resp.json()["id"]
    await platform.stop_loops()
    for app in await platform.apps.list_apps():
        if app.job_id:
            cluster = await platform.clusters.get(app.cluster_id)
            client = platform.ctx.client(cluster)
            try:
                await client.cancel(app.job_id)
            except Exception:
                pass


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    """A local HTTP endpoint that records requests and answers as a test scripts it."""
    r = await HttpReceiver().start()
    yield r
    await r.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    """A real SMTP server in-process (aiosmtpd)."""
    s = SmtpReceiver().start()
    yield s
    s.stop()


@pytest.fixture
async def proxy(flink_cluster: LocalCluster) -> AsyncIterator[FaultProxy]:
    """A fault-injecting HTTP proxy in front of the shared cluster's REST API."""
    p = FaultProxy(flink_cluster.layout.rest_url)
    await p.start()
    yield p
    p.mode = "ok"
    await p.stop()
