"""Teams and roles in the console, in a real headless Chromium against the platform (fake target: no
Flink needed). An admin builds the teams from the console; then a developer, an operator and a viewer
each see and may do what their role allows, and the audit page tells who did what."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from streampilot.domain.apps import AppKind, AppSpec
from streampilot.services.platform import Platform
from streampilot.store.orm import Cluster
from streampilot.targets.fake import KIND, FakeFleet
from tests.helpers import DATAGEN_SQL, serving
from tests.services.conftest import open_platform
from tests.web.test_console import shot

pytestmark = pytest.mark.slow


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    p = await open_platform(tmp_path / "home", FakeFleet())
    p.start_loops()
    yield p
    await p.stop_loops()
    await p.close()


@pytest.fixture
async def server(platform: Platform) -> AsyncIterator[str]:
    async with serving(platform) as base:
        yield base


async def log_in(browser: Browser, base: str, name: str, password: str) -> Page:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{base}/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button.primary")
    await page.wait_for_url(f"{base}/apps")
    await expect(page.locator(".top .who")).to_have_text(name)
    return page


async def test_roles_in_the_console(platform: Platform, server: str, browser: Browser) -> None:
    token = platform.settings.token_file.read_text().strip()
    admin = await browser.new_page(viewport={"width": 1300, "height": 900})
    await admin.goto(f"{server}/login")
    await admin.fill("input[name=token]", token)
    await admin.click("button.primary")
    await admin.wait_for_url(f"{server}/apps")

    # The admin builds two teams and three users from the console.
    await admin.goto(f"{server}/teams")
    for team in ("payments", "search"):
        await admin.fill("input[name=name]", team)
        await admin.click("text=Create team")
        await expect(admin.locator(".banner.notice")).to_contain_text(f"Team {team} created")
    for user in ("dana", "oscar", "vera"):
        await admin.fill("input[name=user_name]", user)
        await admin.fill("input[name=password]", f"{user}-secret-pw")
        await admin.click("text=Create user")
        await expect(admin.locator(".banner.notice")).to_contain_text(f"User {user} created")
    await admin.fill("input[name=user_name]", "x")
    await admin.fill("input[name=password]", "short")
    await admin.click("text=Create user")
    await expect(admin.locator('.field-error[data-field="password"]')).to_contain_text("at least 8")
    for team, user, role in (
        ("payments", "dana", "developer"),
        ("payments", "oscar", "operator"),
        ("payments", "vera", "viewer"),
        ("search", "oscar", "owner"),
    ):
        card = admin.locator(f'section.team[data-team="{team}"]')
        await card.locator("select[name=user_id]").select_option(label=user)
        await card.locator("select[name=role]").select_option(role)
        await card.locator("text=Add or change member").click()
        await expect(admin.locator(".banner.notice")).to_contain_text(f"{user} is {role}")
    await shot(admin, "teams")

    teams = {t.name: t.id for t in await platform.teams.list_teams()}
    async with platform.ctx.sessions() as s, s.begin():
        clusters = {name: Cluster(team_id=teams[name], name=f"{name}-flink", kind=KIND, options={}) for name in teams}
        s.add_all(list(clusters.values()))
    spec = AppSpec(kind=AppKind.SQL, sql=DATAGEN_SQL)
    ledger = await platform.apps.create("ledger", clusters["payments"].id, spec)
    ranker = await platform.apps.create("ranker", clusters["search"].id, spec)

    # vera (viewer) sees the payments app without its buttons; a forged start is refused anyway.
    vera = await log_in(browser, server, "vera", "vera-secret-pw")
    await expect(vera.locator("table")).to_contain_text("ledger")
    await expect(vera.locator("table")).not_to_contain_text("ranker")
    await vera.goto(f"{server}/apps/{ledger.id}")
    await expect(vera.locator("#actions")).to_contain_text("viewer")
    assert await vera.locator("#actions button").count() == 0
    await vera.evaluate(
        """([id, csrf]) => { const f = document.createElement('form'); f.method = 'post';
        f.action = `/apps/${id}/start`; const i = document.createElement('input'); i.name = 'csrf'; i.value = csrf;
        f.appendChild(i); document.body.appendChild(f); f.submit(); }""",
        [ledger.id, await vera.locator(".logout input[name=csrf]").get_attribute("value")],
    )
    await expect(vera.locator(".banner.error")).to_contain_text("operator role")
    await shot(vera, "viewer-refused")
    response = await vera.goto(f"{server}/apps/{ranker.id}")
    assert response is not None and response.status == 404

    # oscar (operator) starts it; he may not edit it.
    oscar = await log_in(browser, server, "oscar", "oscar-secret-pw")
    await expect(oscar.locator("table")).to_contain_text("ranker")  # owner of search
    await oscar.goto(f"{server}/apps/{ledger.id}")
    assert await oscar.locator("#actions a", has_text="Edit").count() == 0
    await oscar.click("#actions button:has-text('Start')")
    await expect(oscar.locator(".banner.notice")).to_contain_text("Start requested")
    await expect(oscar.locator("#status [data-state]")).to_have_attribute("data-state", "RUNNING", timeout=15_000)

    # dana (developer) may edit; she sees neither search's app nor its cluster.
    dana = await log_in(browser, server, "dana", "dana-secret-pw")
    await expect(dana.locator("table")).not_to_contain_text("ranker")
    await dana.goto(f"{server}/apps/{ledger.id}")
    await expect(dana.locator("#actions a", has_text="Edit")).to_be_visible()
    await dana.goto(f"{server}/clusters")
    await expect(dana.locator("main")).not_to_contain_text("search-flink")

    # The audit page: who started it, from where.
    await dana.goto(f"{server}/audit?object_kind=app")
    row = dana.locator("table.audit tbody tr", has_text="start")
    await expect(row).to_contain_text("oscar")
    await expect(row).to_contain_text("127.0.0.1")
    await shot(dana, "audit")
