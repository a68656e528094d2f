"""The console in a real headless Chromium (Debian's package, driven by Playwright) against the real
platform and the shared Flink cluster. Screenshots of the main pages go to test-artifacts/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from streampilot.services.platform import Platform
from tests.helpers import DATAGEN_SQL, serving
from tests.k8s_emulator import KubeEmulator

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def server(platform: Platform, flink: int) -> AsyncIterator[str]:
    async with serving(platform) as base:
        yield base


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def login(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/apps")
    assert "/login" in page.url  # every page is behind the login
    await page.fill("input[name=token]", "wrong")
    await page.click("button.primary")
    await expect(page.locator(".banner.error")).to_contain_text("not valid")
    await shot(page, "login")
    await page.fill("input[name=token]", token)
    await page.click("button.primary")
    await page.wait_for_url(f"{base}/apps")


async def test_create_start_watch_savepoint_stop(server: str, browser: Browser, token: str) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await login(page, server, token)

    await page.click("text=New application")
    await page.wait_for_url(f"{server}/apps/new")
    await page.wait_for_selector(".CodeMirror")  # the editor is built once its script has loaded
    await page.fill("input[name=name]", "console-app")
    await page.evaluate("sql => document.querySelector('.CodeMirror').CodeMirror.setValue(sql)", DATAGEN_SQL)
    await page.fill("input[name='checkpointing.interval_s']", "1")
    await page.check("input[name='restart_strategy.enabled']")
    await page.select_option("select[name='restart_strategy.type']", "failure-rate")
    await page.fill("input[name='restart_strategy.max_failures']", "3")
    await page.fill("input[name='restart_strategy.interval_s']", "300")
    await page.fill("input[name='restart_strategy.delay_s']", "2")
    await shot(page, "app-form")
    await page.click("text=Create application")
    await expect(page.locator(".banner.notice")).to_contain_text("created")

    await page.click("form[action$='/start'] button.primary")
    badge = page.locator("#status .badge")
    # The page is not reloaded: htmx refreshes the status until the tracker says RUNNING.
    await expect(badge).to_have_attribute("data-state", "RUNNING", timeout=60_000)
    await expect(page.locator("#status")).to_contain_text("verified", timeout=30_000)
    await shot(page, "app-detail")

    # Charts (uPlot) from the sampled metrics, refreshed while the page is open: throughput, load per
    # vertex, checkpoints with axes; the range buttons ask for another window.
    for chart in ("throughput", "load", "checkpoints"):
        await expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1, timeout=60_000)
    await expect(page.locator("#chart-throughput .u-axis")).to_have_count(2)
    await expect(page.locator("#chart-throughput .u-legend")).to_contain_text("records in")
    await expect(page.locator("#metrics-note")).to_contain_text("checkpoints in range")
    loaded = int(await page.locator("#metrics").get_attribute("data-loaded") or 0)
    await page.click("#metrics button[data-window='900']")
    await expect(page.locator("#metrics")).not_to_have_attribute("data-loaded", str(loaded))
    await page.locator("#metrics").scroll_into_view_if_needed()
    await shot(page, "app-metrics")

    # A verb is an operation: its steps show on the page while it runs, and how it ended.
    await page.click("text=Trigger savepoint")
    await expect(page.locator(".banner.notice")).to_contain_text("Savepoint requested (operation")
    await expect(page.locator("#operation")).to_contain_text("savepoint triggered", timeout=30_000)
    await expect(page.locator("#operation .op-state")).to_have_text("succeeded", timeout=30_000)
    await expect(page.locator("#operation")).to_contain_text("written")
    await page.reload()
    # Submitted beside Flink's readback, row by row on Flink's keys, in Flink's notation: all agree.
    interval = page.locator("#readback tr", has_text="execution.checkpointing.interval")
    await expect(interval.locator("td")).to_have_text(["execution.checkpointing.interval", "1000 ms", "1000 ms"])
    await expect(page.locator("#readback tr", has_text="restart-strategy.type")).to_contain_text("failure-rate")
    await expect(page.locator("#readback tr.differs")).to_have_count(0)
    await expect(page.locator("#savepoints tbody tr")).to_have_count(1)
    await expect(page.locator("#savepoints")).to_contain_text("savepoint-")

    # Flink's plan of the script, from its own planner.
    await page.click("#explain-link")
    await expect(page.locator("#plan")).to_contain_text("== Optimized Physical Plan ==", timeout=60_000)
    await expect(page.locator("#plan")).to_contain_text(
        "TableSourceScan(table=[[default_catalog, default_database, src]]"
    )
    await shot(page, "app-plan")
    await page.click("text=back to console-app")

    # An edit makes version 2 (the running job keeps version 1); the diff shows what changed.
    await page.click("text=Edit")
    await expect(page.locator("input[name=name]")).to_have_value("console-app")
    await expect(page.locator("input[name='restart_strategy.max_failures']")).to_have_value("3")
    await page.fill("input[name=parallelism]", "2")
    await page.click("text=Save as a new version")
    await expect(page.locator(".banner.notice")).to_contain_text("version 2")
    await page.select_option("select[name=a]", "1")
    await page.select_option("select[name=b]", "2")
    await page.click("text=Show diff")
    await expect(page.locator("pre.diff .del")).to_contain_text(["-parallelism: 1"])
    await expect(page.locator("pre.diff .add")).to_contain_text(["+parallelism: 2"])

    # The running job keeps version 1 until the user upgrades it: savepoint, then version 2 from it.
    await page.click("text=Upgrade to version 2")
    await expect(page.locator(".banner.notice")).to_contain_text("Upgrade requested", timeout=120_000)
    await expect(page.locator("#operation h3")).to_contain_text("Upgrade")
    await expect(page.locator("#operation .op-state")).to_have_text("succeeded", timeout=120_000)
    await expect(page.locator("#operation")).to_contain_text("is RUNNING")
    await expect(page.locator("#status .badge")).to_have_attribute("data-state", "RUNNING", timeout=60_000)
    await expect(page.locator("#status")).to_contain_text("2 (current 2)")
    await expect(page.locator("text=Upgrade to version")).to_have_count(0)

    await page.goto(f"{server}/apps")
    row = page.locator("tr[data-app='console-app']")
    await expect(row.locator(".badge")).to_have_text("RUNNING")
    await shot(page, "apps")
    await page.goto(f"{server}/apps?state=RUNNING")
    await expect(page.locator("tr[data-app='console-app']")).to_have_count(1)
    await page.goto(f"{server}/apps?state=FAILED")
    await expect(page.locator("tr[data-app='console-app']")).to_have_count(0)

    await page.goto(f"{server}/apps")
    await row.locator("button", has_text="Stop").click()
    await expect(page.locator(".banner.notice")).to_contain_text("Stop requested", timeout=60_000)
    await expect(page.locator("#status .badge")).to_have_attribute("data-state", "FINISHED", timeout=30_000)

    for name, path in (("clusters", "/clusters"), ("alert-channels", "/alert-channels")):
        await page.goto(f"{server}{path}")
        await shot(page, name)

    # The landing page: the fleet at a glance, each state's count linking to its list.
    await page.goto(f"{server}/")
    await expect(page.locator("#by-state a[data-state='FINISHED']")).to_contain_text("1")
    await shot(page, "overview")
    await page.click("#by-state a[data-state='FINISHED']")
    await expect(page.locator("tr[data-app='console-app']")).to_have_count(1)


async def test_bad_value_shows_the_field_error_and_keeps_the_form(server: str, browser: Browser, token: str) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    await login(page, server, token)
    await page.goto(f"{server}/apps/new")
    await page.wait_for_selector(".CodeMirror")
    await page.fill("input[name=name]", "keep-me")
    await page.evaluate("sql => document.querySelector('.CodeMirror').CodeMirror.setValue(sql)", DATAGEN_SQL)
    await page.fill("input[name=parallelism]", "-3")
    await page.fill("input[name='checkpointing.timeout_s']", "0")
    await page.click("text=Create application")
    await expect(page.locator(".field-error[data-field=parallelism]")).to_be_visible()
    await expect(page.locator(".field-error[data-field='checkpointing.timeout_s']")).to_be_visible()
    await expect(page.locator("input[name=name]")).to_have_value("keep-me")
    await expect(page.locator("input[name=parallelism]")).to_have_value("-3")
    kept = await page.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    assert "INSERT INTO snk" in kept
    await shot(page, "app-form-errors")

    # Flink's own verdict on the SQL comes back to the same field, with the line.
    await page.fill("input[name=parallelism]", "1")
    await page.fill("input[name='checkpointing.timeout_s']", "60")
    await page.evaluate(
        "sql => document.querySelector('.CodeMirror').CodeMirror.setValue(sql)",
        DATAGEN_SQL.replace("SELECT id, v", "SELECT id, nosuchcol"),
    )
    await page.click("text=Create application")
    await expect(page.locator(".field-error[data-field=sql]")).to_contain_text("nosuchcol")
    await expect(page.locator(".field-error[data-field=sql]")).to_contain_text("line 3")
    # ... and the editor marks that line.
    await expect(page.locator(".CodeMirror .error-line")).to_have_count(1)
    await expect(page.locator(".CodeMirror .error-line")).to_contain_text("nosuchcol")
    await expect(page.locator(".CodeMirror .CodeMirror-gutter-wrapper.error-gutter")).to_contain_text("3")
    await shot(page, "app-form-sql-error")
    await page.goto(f"{server}/apps")
    await expect(page.locator("tr[data-app='keep-me']")).to_have_count(0)


async def test_add_a_kubernetes_cluster_from_the_console(
    server: str, browser: Browser, token: str, tmp_path: Path
) -> None:
    kube = await KubeEmulator(namespaces=("default", "flink")).start()  # the emulator: no real API server here
    try:
        kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
        page = await browser.new_page(viewport={"width": 1300, "height": 900})
        await login(page, server, token)
        await page.goto(f"{server}/clusters")
        await page.fill("#add-cluster input[name=name]", "on-k8s")
        await page.select_option("#add-cluster select[name=kind]", "kubernetes-application")
        options = (
            f"kubeconfig: {kubeconfig}\nnamespace: nowhere\nimage: registry.example.org/jobs:1.0\n"
            "state_dir: s3://flink-state/jobs\n"
        )
        await page.fill("#add-cluster textarea[name=options]", options)
        await page.click("#add-cluster button.primary")
        await expect(page.locator(".field-error[data-field='options.namespace']")).to_contain_text("does not exist")
        await expect(page.locator("#add-cluster textarea[name=options]")).to_have_value(options)  # nothing lost
        await expect(page.locator("#add-cluster select[name=kind]")).to_have_value("kubernetes-application")

        await page.fill("#add-cluster textarea[name=options]", "namespace: [unclosed")
        await page.click("#add-cluster button.primary")
        await expect(page.locator(".field-error[data-field=options]")).to_contain_text("not valid YAML")

        await page.fill("#add-cluster textarea[name=options]", options.replace("nowhere", "flink"))
        await page.click("#add-cluster button.primary")
        await expect(page.locator(".banner.notice")).to_contain_text("Cluster added")
        row = page.locator("tr", has_text="on-k8s")
        await expect(row).to_contain_text("kubernetes-application")
        await expect(row).to_contain_text("namespace flink · 0 resources")
        await expect(row.locator(".ok-mark")).to_have_text("yes")  # its watch is in step with the API server
        await shot(page, "clusters-kubernetes")
    finally:
        await kube.stop()
