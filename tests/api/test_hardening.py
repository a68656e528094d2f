"""Hardening of the API and console against hostile or careless input (each case a 4xx, never a 500),
and what every answer carries (security headers)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from streampilot.logs import CHATTY, configure
from streampilot.services.errors import ServiceError
from streampilot.services.platform import Platform
from streampilot.services.secrets import SecretBox
from streampilot.store.orm import AlertChannel, Cluster, Variable, WebSession, utcnow
from tests.helpers import DATAGEN_SQL, console_login
from tests.receivers import HttpReceiver


async def test_every_answer_carries_security_headers(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/health", "/api/v1/apps", "/login", "/api/v1/apps/424242"):
        headers = (await api.get(path)).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path


async def test_bodies_over_the_limit_are_refused_before_they_are_stored(api: httpx.AsyncClient) -> None:
    huge = "-- padding\n" * (3 * 1024 * 1024 // 11) + DATAGEN_SQL  # 3 MB of SQL: over the 2 MB limit
    resp = await api.post("/api/v1/apps", json={"name": "huge", "kind": "sql", "cluster_id": 1, "sql": huge})
    assert resp.status_code == 413 and "over 2 MB" in resp.json()["detail"][0]["message"], resp.text

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(3):
            yield b"x" * (1024 * 1024)

    chunked = await api.post("/api/v1/variables", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    assert (await api.get("/api/v1/apps")).json() == []


async def test_nul_characters_are_refused(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/variables", json={"name": "v", "value": "a\u0000b"})
    assert resp.status_code == 422 and "NUL" in resp.json()["detail"][0]["message"], resp.text
    assert resp.json()["detail"][0]["field"] == "value"
    nested = await api.post("/api/v1/apps", json={"name": "n", "kind": "sql", "properties": {"k": "\u0000"}})
    assert nested.json()["detail"][0]["field"] == "properties.k", nested.text
    form = await api.post("/apps/new", data={"name": "x\x00y"})
    assert form.status_code == 422 and form.json()["detail"][0]["field"] == "name", form.text
    escaped = await api.post("/api/v1/variables", json={"name": "w", "value": "C:\\u0000dir"})  # no NUL at all
    assert escaped.status_code == 201, escaped.text
    await api.delete(f"/api/v1/variables/{escaped.json()['id']}")
    assert (await api.get("/api/v1/variables")).json() == []


async def test_ids_and_numbers_out_of_range_are_not_found_or_field_errors(api: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/apps/99999999999999999999999",
        "/api/v1/apps/2147483648",
        "/api/v1/clusters/9223372036854775808",
        "/api/v1/operations/99999999999",
        "/api/v1/apps/2147483648/events",
    ):
        resp = await api.get(path)
        assert resp.status_code == 404, (path, resp.status_code, resp.text)
    body = {"name": "far", "kind": "sql", "sql": DATAGEN_SQL}
    for cluster_id in (10**12, 2**63, 2**31):
        resp = await api.post("/api/v1/apps", json={**body, "cluster_id": cluster_id})
        assert resp.status_code in (404, 422), (cluster_id, resp.status_code, resp.text)
    resp = await api.get("/api/v1/alerts", params={"app_id": 10**15})
    assert resp.status_code in (200, 422), resp.text


async def test_a_channel_test_reports_the_status_never_the_answer(
    api: httpx.AsyncClient, receiver: HttpReceiver
) -> None:
    resp = await api.post(
        "/api/v1/alert-channels",
        json={"name": "probe", "kind": "webhook", "config": {"url": f"{receiver.url}/admin"}},
    )
    assert resp.status_code == 201, resp.text
    receiver.script = [(404, "internal admin page: db password hunter2", {})]
    tested = await api.post(f"/api/v1/alert-channels/{resp.json()['id']}/test")
    assert tested.status_code == 200 and tested.json()["ok"] is False, tested.text
    assert "hunter2" not in tested.text and "HTTP 404" in tested.text, tested.text


async def test_credentials_in_a_clusters_url_are_never_shown(api: httpx.AsyncClient, platform: Platform) -> None:
    async with platform.ctx.sessions() as s, s.begin():
        s.add(
            Cluster(
                team_id=1,
                name="behind-auth",
                kind="standalone",
                rest_url="http://ops:hunter2@flink.internal:8081",
                options={},
            )
        )
    listing = await api.get("/api/v1/clusters")
    assert "hunter2" not in listing.text and "ops" not in listing.text, listing.text
    assert "http://***@flink.internal:8081" in listing.text
    cookie, _ = await console_login(api)
    page = await api.get("/clusters", headers=cookie)
    assert page.status_code == 200, page.text
    assert "hunter2" not in page.text and "http://***@flink.internal:8081" in page.text


def test_the_home_and_its_database_are_the_owners_only(platform: Platform) -> None:
    assert platform.settings.home.stat().st_mode & 0o777 == 0o700
    if platform.settings.database_url is None:  # SQLite in the home
        for db_file in platform.settings.home.glob("streampilot.db*"):
            assert db_file.stat().st_mode & 0o777 == 0o600, db_file


def test_start_up_errors_are_one_line_without_the_password(tmp_path: Path) -> None:
    for url, words in [
        ("postgresql://ops:hunter2@127.0.0.1:1/x", "cannot reach the database at postgresql://ops:***@127.0.0.1:1/x"),
        ("postgresql://ops:hunter2@127.0.0.1:5432:x/y", "is not a database URL"),
    ]:
        env = {**os.environ, "STREAMPILOT_HOME": str(tmp_path / "home"), "STREAMPILOT_DATABASE_URL": url}
        proc = subprocess.run(
            [sys.executable, "-m", "streampilot", "server", "--no-local-cluster"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1 and words in out, out
        assert "hunter2" not in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out


async def test_secret_bearing_urls_never_reach_the_log(
    api: httpx.AsyncClient, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in CHATTY})
    try:
        configure("info")  # the server's own logging set-up
        root.addHandler(caplog.handler)
        secret_path = "/services/T0/B0/s3cr3t-hook-path"
        resp = await api.post(
            "/api/v1/alert-channels",
            json={"name": "slack", "kind": "slack", "config": {"webhook_url": f"{receiver.url}{secret_path}"}},
        )
        assert resp.status_code == 201, resp.text
        receiver.script = [(500, "boom", {})]  # a failed delivery too
        for _ in range(2):
            await api.post(f"/api/v1/alert-channels/{resp.json()['id']}/test")
        assert len(receiver.requests) == 2
        assert "s3cr3t" not in caplog.text, caplog.text
        # The scan would see it: httpx logs every request's URL at INFO, which the set-up keeps quiet.
        logging.getLogger("httpx").setLevel(logging.INFO)
        await api.post(f"/api/v1/alert-channels/{resp.json()['id']}/test")
        assert "s3cr3t" in caplog.text
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


async def test_the_console_checks_a_clusters_name_as_the_api_does(api: httpx.AsyncClient) -> None:
    cookie, csrf = await console_login(api)
    for name in ("local/../local", "../etc", "a b"):
        page = await api.post("/clusters", data={"name": name, "kind": "local", "csrf": csrf}, headers=cookie)
        assert page.status_code == 422 and "letters, digits" in page.text, (name, page.status_code)
    assert (await api.get("/api/v1/clusters")).json() == []


async def test_a_client_guessing_tokens_is_throttled(api: httpx.AsyncClient, platform: Platform) -> None:
    now = [1000.0]
    platform.ctx.logins.clock = lambda: now[0]
    good = api.headers["Authorization"]
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(platform.ctx.logins.failures):
        assert (await api.get("/api/v1/apps", headers=wrong)).status_code == 401
    blocked = await api.get("/api/v1/apps", headers={"Authorization": good})  # even the right one, for now
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 60, blocked.text
    page = await api.post("/login", data={"token": good.split()[1]})
    assert page.status_code == 429 and "try again in 60 s" in page.text
    now[0] += 61
    assert (await api.get("/api/v1/apps", headers={"Authorization": good})).status_code == 200
    for _ in range(platform.ctx.logins.failures):  # at it again: blocked twice as long
        await api.get("/api/v1/apps", headers=wrong)
    assert (await api.get("/api/v1/apps")).status_code == 429
    now[0] += 61
    assert (await api.get("/api/v1/apps")).status_code == 429
    now[0] += 60
    assert (await api.get("/api/v1/apps")).status_code == 200


async def test_console_sessions_expire_end_at_logout_and_refuse_forged_forms(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    cookie, csrf = await console_login(api)
    assert api.headers["Authorization"].split()[1] not in cookie["Cookie"]  # the cookie is not the API token
    form = {"name": "ok-name", "kind": "standalone", "rest_url": "http://127.0.0.1:9"}
    # Without the form's token, or from another site: refused before anything is done.
    assert (await api.post("/clusters", data=form, headers=cookie)).status_code == 403
    forged = await api.post("/clusters", data={**form, "csrf": "guess"}, headers=cookie)
    assert forged.status_code == 403 and "reload the page" in forged.text
    elsewhere = {**cookie, "Origin": "http://127.0.0.1:9999"}
    assert (await api.post("/clusters", data={**form, "csrf": csrf}, headers=elsewhere)).status_code == 403
    own = await api.post("/clusters", data={**form, "csrf": csrf}, headers={**cookie, "Origin": "http://streampilot"})
    assert own.status_code == 422  # through to the form's own checks (no Flink at that address)
    # Logout ends the session on the server: the same cookie no longer opens a page.
    assert (await api.post("/logout", data={"csrf": csrf}, headers=cookie)).status_code == 303
    assert (await api.get("/clusters", headers=cookie)).status_code == 303  # to the login page
    # A session expires on the server too.
    cookie, _ = await console_login(api)
    async with platform.ctx.sessions() as s, s.begin():
        await s.execute(sa.update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await api.get("/clusters", headers=cookie)).status_code == 303
    async with platform.ctx.sessions() as s:
        assert (await s.execute(sa.select(WebSession))).scalars().all() == []  # and is gone


async def test_channel_secrets_are_encrypted_at_rest_and_still_delivered(
    api: httpx.AsyncClient, platform: Platform, receiver: HttpReceiver
) -> None:
    url = f"{receiver.url}/services/T0/B0/s3cr3t-path"
    made = await api.post("/api/v1/alert-channels", json={"name": "s", "kind": "slack", "config": {"webhook_url": url}})
    assert made.status_code == 201, made.text
    async with platform.ctx.sessions() as s:
        stored = (await s.execute(sa.select(AlertChannel.config))).scalar_one()
    assert "s3cr3t" not in json.dumps(stored) and stored["webhook_url"].startswith("fernet:"), stored
    assert (await api.post(f"/api/v1/alert-channels/{made.json()['id']}/test")).json()["ok"] is True
    assert receiver.requests[-1].path == "/services/T0/B0/s3cr3t-path"  # decrypted to send
    # A channel stored before secrets were encrypted is sealed at the next start.
    async with platform.ctx.sessions() as s, s.begin():
        s.add(AlertChannel(team_id=1, name="old", kind="slack", config={"webhook_url": url}))
    assert await platform.channels.seal_stored() == 1
    async with platform.ctx.sessions() as s:
        configs = (await s.execute(sa.select(AlertChannel.config))).scalars().all()
    assert all("s3cr3t" not in json.dumps(c) for c in configs), configs


async def test_the_secrets_key_rotates_and_every_secret_stays_readable(
    api: httpx.AsyncClient, platform: Platform, receiver: HttpReceiver
) -> None:
    var = await api.post("/api/v1/variables", json={"name": "pw", "value": "hunter2", "secret": True})
    url = f"{receiver.url}/services/T0/B0/s3cr3t"
    chan = await api.post("/api/v1/alert-channels", json={"name": "c", "kind": "slack", "config": {"webhook_url": url}})
    assert var.status_code == 201 and chan.status_code == 201
    key_file = platform.ctx.secrets.key_file
    old_key = key_file.read_bytes()
    async with platform.ctx.sessions() as s:
        before = (await s.execute(sa.select(Variable.value))).scalar_one()

    rotated = await api.post("/api/v1/secrets/rotate")
    assert rotated.status_code == 200 and rotated.json() == {"variables": 1, "channels": 1}, rotated.text

    assert key_file.read_bytes() != old_key and len(key_file.read_bytes().split()) == 1  # the old key is gone
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with platform.ctx.sessions() as s:
        after = (await s.execute(sa.select(Variable))).scalar_one()
    assert after.value != before and after.value.startswith("fernet:")
    # Readable with the new key alone: a fresh box (as after a restart) opens them.
    fresh = SecretBox(key_file)
    assert fresh.open(after.value) == "hunter2"
    with pytest.raises(ServiceError):
        SecretBox(tmp_key(key_file.parent, old_key)).open(after.value)  # and no longer with the old one
    assert (await api.post(f"/api/v1/alert-channels/{chan.json()['id']}/test")).json()["ok"] is True
    assert receiver.requests[-1].path == "/services/T0/B0/s3cr3t"


def tmp_key(folder: Path, key: bytes) -> Path:
    path = folder / "old.key"
    path.write_bytes(key)
    return path


async def test_huge_numbers_and_long_urls_are_field_errors(api: httpx.AsyncClient) -> None:
    """Found by the review: `1e308` seconds and a rest_url over 1,000 characters were 500s."""
    clusters = (await api.get("/api/v1/clusters")).json()
    body = {"name": "huge", "kind": "sql", "sql": DATAGEN_SQL, "cluster_id": clusters[0]["id"] if clusters else 1}
    for checkpointing in ({"interval_s": 1e308}, {"timeout_s": 1e308}, {"interval_s": float("1e20")}):
        resp = await api.post("/api/v1/apps", json={**body, "checkpointing": checkpointing})
        assert resp.status_code == 422, (checkpointing, resp.text)
        assert resp.json()["detail"][0]["field"].startswith("checkpointing"), resp.text
    resp = await api.post(
        "/api/v1/clusters",
        json={"name": "long", "kind": "standalone", "rest_url": "http://flink.example/" + "a" * 2000},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["field"] == "rest_url"
    resp = await api.get("/api/v1/apps", params={"cluster_id": 10**15})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "cluster_id"
