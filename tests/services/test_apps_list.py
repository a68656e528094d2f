"""The console's apps list at scale (fake target): a page at a time, sorted and searched on the
server, with the count of all that match."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from streampilot.store.orm import App, AppVersion, Team, utcnow

SPEC = {"kind": "sql", "sql": "INSERT INTO b SELECT 1"}


@pytest.fixture
async def console(platform: Platform, cluster_id: int) -> AsyncIterator[httpx.AsyncClient]:
    now = utcnow()
    async with platform.ctx.sessions() as s, s.begin():
        s.add(Team(id=2, name="other"))
        await s.flush()
        apps = [
            {"id": 1000 + i, "team_id": 1 if i < 120 else 2, "name": f"orders-{i:03d}" if i % 2 else f"pay_{i:03d}",
             "cluster_id": cluster_id, "state": ("RUNNING", "FAILED", "CREATED")[i % 3], "current_version": 1,
             "submitted_at": now, "created_at": now, "updated_at": now}
            for i in range(125)
        ]  # fmt: skip
        await s.execute(sa.insert(App), apps)
        await s.execute(sa.insert(AppVersion), [{"app_id": a["id"], "version": 1, "spec": SPEC} for a in apps])
    token = platform.settings.token_file.read_text().strip()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(platform)), base_url="http://c") as c:
        login = await c.post("/login", data={"token": token})
        c.cookies.set("streampilot_token", login.cookies["streampilot_token"])
        yield c


def names(html: str) -> list[str]:
    return re.findall(r'<tr data-app="([^"]+)"', html)


async def test_pages_sorts_and_searches(console: httpx.AsyncClient, platform: Platform) -> None:
    # The admin sees both teams' 125 apps, 50 to a page, by name.
    first = (await console.get("/apps")).text
    assert len(names(first)) == 50 and names(first) == sorted(names(first))
    assert "1\u201350 of 125 applications" in first and 'rel="next"' in first
    last = (await console.get("/apps?page=3")).text
    assert len(names(last)) == 25 and "101\u2013125 of 125" in last and 'rel="next"' not in last

    # Descending by name; by state (then name).
    desc = names((await console.get("/apps/table?sort=name&dir=desc")).text)
    assert desc[0] == "pay_124" and desc == sorted(desc, reverse=True)
    by_state = (await console.get("/apps/table?sort=state")).text
    assert names(by_state)[0] == "orders-001" or names(by_state)[0].startswith(("orders", "pay"))
    states = re.findall(r'data-state="([A-Z]+)"', by_state)
    assert states == sorted(states)

    # Search in names (case-insensitive, % and _ taken literally), with the filters.
    found = (await console.get("/apps/table?q=ORDERS-01")).text
    assert names(found) == [f"orders-{i:03d}" for i in range(11, 20, 2)] and "of 5 applications" in found
    assert "of 63 applications" in (await console.get("/apps/table?q=pay_")).text
    assert names((await console.get("/apps/table?q=%25")).text) == []
    failed = names((await console.get("/apps/table?q=orders&state=FAILED")).text)
    assert failed and all(int(n[-3:]) % 3 == 1 for n in failed)

    # Nonsense in the query string falls back to defaults, never an error.
    for odd in ("?page=-1", "?page=abc", "?sort=drop", "?cluster_id=99999999999", "?page=99"):
        assert (await console.get("/apps" + odd)).status_code == 200, odd


async def test_the_api_lists_all_or_a_page(console: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    everything = await api.get("/api/v1/apps")
    assert everything.status_code == 200 and len(everything.json()) == int(everything.headers["X-Total-Count"])
    page = await api.get("/api/v1/apps", params={"q": "orders", "sort": "name", "order": "desc", "limit": 5})
    assert [a["name"] for a in page.json()] == [f"orders-{i:03d}" for i in (123, 121, 119, 117, 115)]
    assert page.headers["X-Total-Count"] == "62"
    for bad in ({"limit": 0}, {"sort": "x"}, {"order": "up"}, {"q": "a" * 101}):
        assert (await api.get("/api/v1/apps", params=bad)).status_code == 422, bad
