"""Teams, users and roles through the API (fake target): three users in two teams, each role's allowed
and refused calls, objects of other teams as 404, personal tokens, and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from streampilot.store.orm import ApiToken, Cluster, utcnow
from streampilot.targets.fake import KIND, FakeFleet
from tests.helpers import DATAGEN_SQL
from tests.services.conftest import finished


@dataclass
class Company:
    """Teams ``payments`` and ``search``; dana: developer in payments; oscar: operator in payments and
    viewer in search; vera: viewer in payments. Each team has a fake cluster."""

    admin: httpx.AsyncClient
    users: dict[str, httpx.AsyncClient]
    ids: dict[str, int]
    teams: dict[str, int]
    clusters: dict[str, int]


def _client(platform: Platform, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform), client=("10.1.2.3", 4000)),
        base_url="http://streampilot",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def company(platform: Platform, api: httpx.AsyncClient) -> AsyncIterator[Company]:
    teams = {}
    for name in ("payments", "search"):
        resp = await api.post("/api/v1/teams", json={"name": name})
        assert resp.status_code == 201, resp.text
        teams[name] = resp.json()["id"]
    clusters = {}
    async with platform.ctx.sessions() as s, s.begin():
        for name, team in teams.items():
            c = Cluster(team_id=team, name=f"{name}-flink", kind=KIND, rest_url=None, options={})
            s.add(c)
            await s.flush()
            clusters[name] = c.id
    roles = {"dana": {"payments": "developer"}, "oscar": {"payments": "operator", "search": "viewer"}}
    roles["vera"] = {"payments": "viewer"}
    users, ids = {}, {}
    for name, memberships in roles.items():
        resp = await api.post("/api/v1/users", json={"name": name, "password": f"{name}-secret-pw"})
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
        for team, role in memberships.items():
            resp = await api.post(f"/api/v1/teams/{teams[team]}/members", json={"user_id": ids[name], "role": role})
            assert resp.status_code == 201, resp.text
        resp = await api.post(f"/api/v1/users/{ids[name]}/tokens", json={"name": "test"})
        assert resp.status_code == 201, resp.text
        users[name] = _client(platform, resp.json()["token"])
    yield Company(api, users, ids, teams, clusters)
    for c in users.values():
        await c.aclose()


def _app(name: str, cluster_id: int, **extra: object) -> dict[str, object]:
    return {"name": name, "cluster_id": cluster_id, "kind": "sql", "sql": DATAGEN_SQL, **extra}


async def test_each_role_may_do_what_it_may_and_nothing_more(platform: Platform, company: Company) -> None:
    dana, oscar, vera = (company.users[n] for n in ("dana", "oscar", "vera"))
    pay = company.clusters["payments"]

    # Creating: developers yes; operators and viewers no (403 says which role it takes).
    for who in (oscar, vera):
        resp = await who.post("/api/v1/apps", json=_app("nope", pay))
        assert resp.status_code == 403, resp.text
        assert "developer" in resp.json()["detail"]
    resp = await dana.post("/api/v1/apps", json=_app("orders", pay))
    assert resp.status_code == 201, resp.text
    app = resp.json()
    assert app["team_id"] == company.teams["payments"]  # the cluster's team

    # Reading: every member.
    for who in (dana, oscar, vera):
        assert (await who.get(f"/api/v1/apps/{app['id']}")).status_code == 200

    # Editing: developers only.
    for who in (oscar, vera):
        assert (await who.patch(f"/api/v1/apps/{app['id']}", json={"parallelism": 2})).status_code == 403
    assert (await dana.patch(f"/api/v1/apps/{app['id']}", json={"parallelism": 2})).status_code == 200

    # Operating: operators and developers, not viewers.
    assert (await vera.post(f"/api/v1/apps/{app['id']}/start")).status_code == 403
    resp = await oscar.post(f"/api/v1/apps/{app['id']}/start")
    assert resp.status_code == 202, resp.text
    op = await finished(platform, resp.json()["operation"]["id"])
    assert op.state == "succeeded", op.steps
    assert op.actor == "oscar"
    assert (await vera.post(f"/api/v1/apps/{app['id']}/savepoints")).status_code == 403
    assert (await vera.post(f"/api/v1/apps/{app['id']}/stop")).status_code == 403
    resp = await dana.post(f"/api/v1/apps/{app['id']}/stop", json={"savepoint": False})
    assert resp.status_code == 202, resp.text
    assert (await finished(platform, resp.json()["operation"]["id"])).state == "succeeded"

    # Deleting: developers only.
    assert (await oscar.delete(f"/api/v1/apps/{app['id']}")).status_code == 403
    assert (await dana.delete(f"/api/v1/apps/{app['id']}")).status_code == 204


async def test_other_teams_objects_do_not_exist(platform: Platform, company: Company) -> None:
    admin, dana, oscar = company.admin, company.users["dana"], company.users["oscar"]
    search = company.clusters["search"]
    resp = await admin.post("/api/v1/apps", json=_app("ranker", search))
    assert resp.status_code == 201, resp.text
    ranker = resp.json()["id"]
    resp = await admin.post(
        "/api/v1/variables",
        json={"name": "search_key", "value": "s3cr3t", "secret": True, "team_id": company.teams["search"]},
    )
    assert resp.status_code == 201, resp.text
    variable = resp.json()["id"]
    resp = await admin.post(
        "/api/v1/alert-channels",
        json={
            "name": "search-hook",
            "kind": "webhook",
            "config": {"url": "http://127.0.0.1:9/h"},
            "team_id": company.teams["search"],
        },
    )
    assert resp.status_code == 201, resp.text
    channel = resp.json()["id"]

    # dana is not in search: its app, cluster, variable, channel and team are all 404, and absent from lists.
    for path in (
        f"/api/v1/apps/{ranker}",
        f"/api/v1/apps/{ranker}/events",
        f"/api/v1/clusters/{search}",
        f"/api/v1/variables/{variable}",
        f"/api/v1/alert-channels/{channel}",
        f"/api/v1/teams/{company.teams['search']}",
    ):
        resp = await dana.get(path)
        assert resp.status_code == 404, (path, resp.text)
    assert (await dana.post(f"/api/v1/apps/{ranker}/start")).status_code == 404
    assert (await dana.delete(f"/api/v1/clusters/{search}")).status_code == 404
    assert [a["name"] for a in (await dana.get("/api/v1/apps")).json()] == []
    assert {c["name"] for c in (await dana.get("/api/v1/clusters")).json()} == {"payments-flink"}
    assert (await dana.get("/api/v1/variables")).json() == []
    assert (await dana.get("/api/v1/alert-channels")).json() == []
    assert [t["name"] for t in (await dana.get("/api/v1/teams")).json()] == ["payments"]

    # Nor can dana's apps point at them: each is a field error, as if it did not exist.
    resp = await dana.post("/api/v1/apps", json=_app("sneaky", search))
    assert resp.status_code == 422
    assert [p["field"] for p in resp.json()["detail"]] == ["cluster_id"]
    pay = company.clusters["payments"]
    resp = await dana.post("/api/v1/apps", json=_app("sneaky", pay, alert_channel_ids=[channel]))
    assert resp.status_code == 422
    assert [p["field"] for p in resp.json()["detail"]] == ["alert_channel_ids"]
    sql = DATAGEN_SQL.replace("'20'", "'${search_key}'")
    resp = await dana.post("/api/v1/apps", json={**_app("sneaky", pay), "sql": sql})
    assert resp.status_code == 422
    assert "search_key" in resp.text and "s3cr3t" not in resp.text
    resp = await dana.post("/api/v1/apps", json=_app("sneaky", pay, team_id=company.teams["search"]))
    assert resp.status_code == 422, resp.text  # the payments cluster is not search's

    # oscar views search: sees its app, may not operate it.
    assert (await oscar.get(f"/api/v1/apps/{ranker}")).status_code == 200
    resp = await oscar.post(f"/api/v1/apps/{ranker}/start")
    assert resp.status_code == 403
    assert "viewer" in resp.json()["detail"]
    assert {a["name"] for a in (await oscar.get("/api/v1/apps")).json()} == {"ranker"}


async def test_members_tokens_and_admin_only_calls(platform: Platform, company: Company) -> None:
    admin, dana, oscar = company.admin, company.users["dana"], company.users["oscar"]
    pay = company.teams["payments"]

    # Only an owner (or admin) manages members; a developer may not.
    resp = await dana.post(f"/api/v1/teams/{pay}/members", json={"user_id": company.ids["vera"], "role": "owner"})
    assert resp.status_code == 403
    resp = await admin.post(f"/api/v1/teams/{pay}/members", json={"user_id": company.ids["dana"], "role": "owner"})
    assert resp.status_code == 201
    resp = await dana.post(f"/api/v1/teams/{pay}/members", json={"user_id": company.ids["vera"], "role": "operator"})
    assert resp.status_code == 201
    resp = await dana.post(f"/api/v1/teams/{pay}/members", json={"user_id": company.ids["vera"], "role": "boss"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["field"] == "role"
    members = {m["name"]: m["role"] for m in (await dana.get(f"/api/v1/teams/{pay}/members")).json()}
    assert members == {"dana": "owner", "oscar": "operator", "vera": "operator"}

    # Platform-level calls are an admin's.
    for call in (
        dana.post("/api/v1/users", json={"name": "mallory", "password": "long-enough-pw"}),
        dana.post("/api/v1/teams", json={"name": "rogue"}),
        dana.post("/api/v1/secrets/rotate"),
        dana.post("/api/v1/clusters", json={"name": "mine", "kind": "local"}),
        dana.post("/api/v1/flink-homes", json={"name": "h", "path": "/tmp"}),
        dana.patch(f"/api/v1/users/{company.ids['dana']}", json={"admin": True}),
    ):
        resp = await call
        assert resp.status_code == 403, resp.text

    # Personal tokens: shown once, listed without the secret, revocable, expiring.
    resp = await oscar.post("/api/v1/me/tokens", json={"name": "laptop", "expires_in_days": 7})
    assert resp.status_code == 201
    made = resp.json()
    listed = (await oscar.get("/api/v1/me/tokens")).json()
    assert {t["name"] for t in listed} == {"test", "laptop"}
    assert all("token" not in t for t in listed)
    async with _client(platform, made["token"]) as laptop:
        me = (await laptop.get("/api/v1/me")).json()
        assert me["name"] == "oscar" and {t["role"] for t in me["teams"]} == {"operator", "viewer"}
        assert (await oscar.get(f"/api/v1/users/{company.ids['dana']}/tokens")).status_code == 404  # not hers
        assert (await oscar.delete(f"/api/v1/me/tokens/{made['id']}")).status_code == 204
        assert (await laptop.get("/api/v1/me")).status_code == 401
        async with platform.ctx.sessions() as s, s.begin():
            await s.execute(
                sa.update(ApiToken)
                .where(ApiToken.name == "test", ApiToken.account_id == company.ids["vera"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        resp = await company.users["vera"].get("/api/v1/me")
        assert resp.status_code == 401 and "expired" in resp.text

    # A disabled user's tokens stop working; the last admin cannot be demoted.
    assert (await admin.patch(f"/api/v1/users/{company.ids['dana']}", json={"disabled": True})).status_code == 200
    assert (await dana.get("/api/v1/me")).status_code == 401
    me = (await admin.get("/api/v1/me")).json()
    resp = await admin.patch(f"/api/v1/users/{me['id']}", json={"admin": False})
    assert resp.status_code == 409

    # A password for a token (the CLI's login); a wrong one is 401 without saying which part was wrong.
    resp = await admin.post("/api/v1/login", json={"name": "oscar", "password": "oscar-secret-pw"})
    assert resp.status_code == 201
    async with _client(platform, resp.json()["token"]) as cli:
        assert (await cli.get("/api/v1/me")).json()["name"] == "oscar"
    for name, password in (("oscar", "wrong-password"), ("nobody", "oscar-secret-pw")):
        resp = await admin.post("/api/v1/login", json={"name": name, "password": password})
        assert resp.status_code == 401
        assert resp.json()["detail"] == "wrong user name or password"


async def test_audit_trail_of_create_start_stop(platform: Platform, company: Company, fleet: FakeFleet) -> None:
    dana, oscar = company.users["dana"], company.users["oscar"]
    resp = await dana.post("/api/v1/apps", json=_app("ledger", company.clusters["payments"]))
    app_id = resp.json()["id"]
    resp = await dana.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 3})
    assert resp.status_code == 200
    resp = await oscar.post(f"/api/v1/apps/{app_id}/start")
    assert (await finished(platform, resp.json()["operation"]["id"])).state == "succeeded"
    resp = await oscar.post(f"/api/v1/apps/{app_id}/stop", json={"savepoint": False})
    assert (await finished(platform, resp.json()["operation"]["id"])).state == "succeeded"

    resp = await dana.get("/api/v1/audit", params={"object_kind": "app", "object_id": app_id})
    assert resp.status_code == 200
    trail = list(reversed(resp.json()))
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("create", "dana"),
        ("update", "dana"),
        ("start", "oscar"),
        ("cancel", "oscar"),
    ]
    assert all(e["client"] == "10.1.2.3" and e["team_id"] == company.teams["payments"] for e in trail)
    assert trail[1]["diff"]["parallelism"] == {"from": 1, "to": 3}
    assert trail[2]["diff"]["operation_id"] > 0

    # Filters; and the trail is the team's: vera (payments) sees it, a search-only view does not.
    assert [e["action"] for e in (await dana.get("/api/v1/audit", params={"actor": "oscar"})).json()] == [
        "cancel",
        "start",
    ]
    assert len((await company.users["vera"].get("/api/v1/audit", params={"object_id": app_id})).json()) == 4
    resp = await company.admin.post("/api/v1/users", json={"name": "sam", "password": "sam-secret-pw"})
    sam = resp.json()["id"]
    await company.admin.post(
        f"/api/v1/teams/{company.teams['search']}/members", json={"user_id": sam, "role": "viewer"}
    )
    token = (await company.admin.post(f"/api/v1/users/{sam}/tokens", json={"name": "t"})).json()["token"]
    async with _client(platform, token) as sam_api:
        assert (await sam_api.get("/api/v1/audit", params={"object_kind": "app"})).json() == []
    # Admin-level events (users, teams) are in the admin's view.
    actions = {(e["action"], e["object_kind"]) for e in (await company.admin.get("/api/v1/audit")).json()}
    assert {("create", "user"), ("create", "team"), ("set_member", "team"), ("create_token", "user")} <= actions
