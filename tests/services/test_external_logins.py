"""LDAP and OpenID Connect logins against real servers the tests start: OpenLDAP (Debian's slapd) and
oidc-provider-mock (an OpenID provider built on authlib). Groups become team roles at every login."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.api.app import create_app
from streampilot.services.audit import AuditQuery
from streampilot.services.platform import Platform
from streampilot.settings import LdapSettings, OidcSettings
from streampilot.targets.fake import KIND, FakeFleet
from tests import ldap_server
from tests.conftest import test_settings as settings_for
from tests.ldap_server import BASE, LdapServer

GROUP_ROLES = (
    "payments-devs=payments:developer;payments-ops=payments:operator;search-viewers=search:viewer;platform-admins=admin"
)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    if not ldap_server.available():
        pytest.fail("slapd is not installed: run 'make test' (it installs Debian's slapd and ldap-utils)")
    server = LdapServer(tmp_path_factory.mktemp("slapd")).start()
    server.seed(
        {"alice": "alice-ldap-pw", "bob": "bob-ldap-pw", "carol": "carol-ldap-pw"},
        {
            "payments-devs": ["alice"],
            "payments-ops": ["bob"],
            "search-viewers": ["alice"],
            "platform-admins": ["carol"],
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from streampilot.flink.local import free_port

    port = free_port()
    users = [
        '{"sub": "olivia-sub", "preferred_username": "olivia", "email": "olivia@example.org", "groups": ["payments-ops"]}',
        '{"sub": "root-sub", "preferred_username": "root", "groups": ["platform-admins"]}',
    ]
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--require-nonce", "true"]
    for u in users:
        args += ["--user-claims", u]
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/.well-known/openid-configuration", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("the OpenID provider did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def platform(tmp_path: Path, directory: LdapServer, provider: str) -> AsyncIterator[Platform]:
    settings = settings_for(tmp_path / "home", f"sqlite:///{tmp_path / 'sp.db'}").with_(
        ldap=LdapSettings(
            url=directory.url,
            bind_dn=ldap_server.ADMIN_DN,
            bind_password=ldap_server.ADMIN_PASSWORD,
            user_base=f"ou=people,{BASE}",
            group_base=f"ou=groups,{BASE}",
            timeout_s=2,
        ),
        oidc=OidcSettings(issuer=provider, client_id="streampilot", client_secret="client-secret", timeout_s=5),
        group_roles=GROUP_ROLES,
    )
    p = Platform(settings)
    p.ctx.target_factories[KIND] = FakeFleet().target
    await p.open()
    for team in ("payments", "search"):
        await p.teams.create(team)
    yield p
    await p.close()


def _api(platform: Platform, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform)),
        base_url="http://streampilot",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


async def _login(platform: Platform, name: str, password: str) -> httpx.Response:
    async with _api(platform) as anon:
        return await anon.post("/api/v1/login", json={"name": name, "password": password})


async def _me(platform: Platform, token: str) -> dict[str, object]:
    async with _api(platform, token) as api:
        resp = await api.get("/api/v1/me")
        assert resp.status_code == 200, resp.text
        me: dict[str, object] = resp.json()
        return me


async def test_ldap_logins_give_roles_from_groups(platform: Platform, directory: LdapServer) -> None:
    teams = {t.name: t.id for t in await platform.teams.list_teams()}
    resp = await _login(platform, "alice", "alice-ldap-pw")
    assert resp.status_code == 201, resp.text
    me = await _me(platform, resp.json()["token"])
    assert me["source"] == "ldap" and me["email"] == "alice@example.org" and me["admin"] is False
    assert me["teams"] == [
        {"team_id": teams["payments"], "role": "developer"},
        {"team_id": teams["search"], "role": "viewer"},
    ]
    resp = await _login(platform, "carol", "carol-ldap-pw")
    assert (await _me(platform, resp.json()["token"]))["admin"] is True

    # Wrong password, unknown user, an LDAP filter in the name: all the same 401.
    for name, password in (
        ("alice", "wrong"),
        ("nobody", "alice-ldap-pw"),
        ("*", "alice-ldap-pw"),
        ("alice)(uid=*", "x"),
    ):
        resp = await _login(platform, name, password)
        assert resp.status_code == 401, (name, resp.text)

    # Her groups change in the directory: her roles follow at the next login, and the audit says so.
    done = subprocess.run(
        ["ldapmodify", "-x", "-H", directory.url, "-D", ldap_server.ADMIN_DN, "-w", ldap_server.ADMIN_PASSWORD],
        input=f"dn: cn=payments-devs,ou=groups,{BASE}\nchangetype: modify\nreplace: member\n"
        f"member: uid=carol,ou=people,{BASE}\n".encode(),
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    resp = await _login(platform, "alice", "alice-ldap-pw")
    assert (await _me(platform, resp.json()["token"]))["teams"] == [{"team_id": teams["search"], "role": "viewer"}]
    events = await platform.audit.events(AuditQuery())
    synced = [e for e in events if e.action == "sync_roles" and e.object_name == "alice"]
    assert synced[0].diff["payments"] == {"from": "developer", "to": None}

    # The console logs in LDAP users with the same form.
    async with _api(platform) as browser:
        resp = await browser.post(
            "/login",
            data={"name": "bob", "password": "bob-ldap-pw", "next": "/apps"},
            headers={"origin": "http://streampilot"},
        )
        assert resp.status_code == 303 and resp.headers["location"] == "/apps"
        assert (await browser.get("/apps")).status_code == 200

    # A directory that does not answer is an error, not a wrong password.
    directory.stop()
    try:
        resp = await _login(platform, "alice", "alice-ldap-pw")
        assert resp.status_code == 502
        assert "LDAP directory did not answer" in resp.json()["detail"]
    finally:
        directory.start()
    assert (await _login(platform, "alice", "alice-ldap-pw")).status_code == 201


async def test_oidc_single_sign_on(platform: Platform, provider: str) -> None:
    teams = {t.name: t.id for t in await platform.teams.list_teams()}
    async with _api(platform) as browser, httpx.AsyncClient(timeout=10) as outside:
        page = await browser.get("/login")
        assert "Single sign-on" in page.text
        resp = await browser.get("/login/oidc", params={"next": "/clusters"})
        assert resp.status_code == 303
        authorize = resp.headers["location"]
        assert authorize.startswith(provider) and "code_challenge=" in authorize and "nonce=" in authorize
        form = await outside.get(authorize)
        assert form.status_code == 200
        answer = await outside.post(authorize, data={"sub": "olivia-sub"})
        assert answer.status_code == 302, answer.text
        back = urlparse(answer.headers["location"])
        assert back.path == "/login/oidc/callback"
        done = await browser.get(f"{back.path}?{back.query}")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/clusters"
        page = await browser.get("/clusters")
        assert page.status_code == 200 and "olivia" in page.text

        # The same answer twice (a replayed code) logs nobody in.
        again = await browser.get(f"{back.path}?{back.query}")
        assert again.status_code in (400, 403)

    users = {u.name: u for u in await platform.accounts.list_users()}
    assert users["olivia"].source == "oidc" and users["olivia"].email == "olivia@example.org"
    principal = await platform.accounts.principal(users["olivia"].id)
    assert principal is not None and dict(principal.roles) == {teams["payments"]: "operator"}

    # A forged state (another login's answer) is refused.
    async with _api(platform) as browser, httpx.AsyncClient(timeout=10) as outside:
        resp = await browser.get("/login/oidc")
        answer = await outside.post(resp.headers["location"], data={"sub": "root-sub"})
        back = urlparse(answer.headers["location"])
        forged = back.query.replace("state=", "state=x")
        resp = await browser.get(f"{back.path}?{forged}")
        assert resp.status_code == 403 and "another login attempt" in resp.text
