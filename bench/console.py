"""Server-side render time of the console's pages with 10,000 applications in the database (goals:
the apps list <= 150 ms, every page <= 300 ms). Run: ``make bench-console``."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from streampilot.api.app import create_app
from streampilot.services.platform import Platform
from streampilot.settings import Settings
from streampilot.store.orm import App, AppEvent, AppVersion, Cluster, utcnow

APPS = 10_000
SPEC = {"kind": "sql", "sql": "INSERT INTO b SELECT 1", "parallelism": 1, "checkpointing": {"interval_s": 10}}


async def run(home: Path) -> None:
    platform = Platform(Settings().with_(home=home))
    await platform.open()
    now = utcnow()
    async with platform.ctx.sessions() as s, s.begin():
        s.add(Cluster(team_id=1, id=1, name="bench", kind="standalone", rest_url="http://127.0.0.1:9", options={}))
        await s.flush()
        apps = [
            {
                "team_id": 1, "id": i + 1, "name": f"app-{i:05d}", "cluster_id": 1,
                "state": ("RUNNING", "FAILED", "CANCELED", "RESTARTING")[i % 4],
                "job_state": ("RUNNING", "FAILED", "CANCELED", "RESTARTING")[i % 4], "job_id": f"{i:032x}",
                "tasks_running": 2, "tasks_total": 2, "observed_at": now, "submitted_at": now, "running_version": 1,
                "current_version": 1, "created_at": now, "updated_at": now,
                "last_checkpoint": {"completed": 5, "id": 5, "completed_at_ms": 1},
            }
            for i in range(APPS)
        ]  # fmt: skip
        await s.execute(sa.insert(App), apps)
        await s.execute(sa.insert(AppVersion), [{"app_id": a["id"], "version": 1, "spec": SPEC} for a in apps])
        await s.execute(
            sa.insert(AppEvent),
            [
                {"app_id": a["id"], "from_state": "STARTING", "to_state": a["state"], "cause": "observer",
                 "detail": f"event {k}", "at": now}
                for a in apps[:1000]
                for k in range(5)
            ],
        )  # fmt: skip
    token = platform.settings.token_file.read_text().strip()
    app = create_app(platform)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        login = await client.post("/login", data={"token": token})  # a console session, as a browser has
        client.cookies.set("streampilot_token", login.cookies["streampilot_token"])
        for path in (
            "/",
            "/apps",
            "/apps/table",
            "/apps/table?state=FAILED",
            "/apps?q=app-09&sort=state&dir=desc",
            "/apps?page=150&sort=started",
            "/apps/500",
            "/apps/500/status",
            "/apps/new",
            "/clusters",
            "/alert-channels",
        ):
            first = time.perf_counter()
            assert (await client.get(path)).status_code == 200  # the first render compiles the templates
            first = time.perf_counter() - first
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                resp = await client.get(path)
                times.append(time.perf_counter() - t0)
                assert resp.status_code == 200, (path, resp.status_code)
            goal = 150 if path.startswith("/apps?") or path.startswith("/apps/table") or path == "/apps" else 300
            print(
                f"{path:36s} median {1000 * statistics.median(times):6.1f} ms   max {1000 * max(times):6.1f} ms"
                f"   (goal <= {goal} ms; first render {1000 * first:.0f} ms)"
            )
    await platform.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
