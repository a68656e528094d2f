"""`restore: latest` is the newest state on storage, not only what the database recorded.

While the platform is down, Flink keeps completing checkpoints and subsumes the one streampilot
recorded; a savepoint taken before is older than what is on disk. Restoring "latest" afterwards must
take the newest retained checkpoint, which nobody recorded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from streampilot.services.platform import Platform
from tests.helpers import DATAGEN_SQL, act, wait_app, wait_state

pytestmark = [pytest.mark.flink]
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SINGLE_DB
async def test_restore_latest_finds_the_checkpoint_written_while_the_platform_was_down(
    api: httpx.AsyncClient, flink: int, platform: Platform, flink_cluster: LocalCluster
) -> None:
    body = {
        "name": "latest",
        "kind": "sql",
        "cluster_id": flink,
        "sql": DATAGEN_SQL,
        "checkpointing": {"interval_s": 0.5, "retain_on_cancel": True},
    }
    app_id = (await api.post("/api/v1/apps", json=body)).json()["id"]
    job = (await act(api, app_id, "start"))["result"]["job_id"]
    await wait_app(api, app_id, lambda a: (a["status"]["last_checkpoint"] or {}).get("path"), what="a checkpoint")
    savepoint = (await act(api, app_id, "savepoint"))["result"]["path"]
    recorded = (await api.get(f"/api/v1/apps/{app_id}/checkpoints")).json()["retained"][0]["path"]

    await platform.stop_loops()  # the platform is down: nothing records what Flink does now
    rest = flink_cluster.layout.rest_url
    savepoint_written = Path(urlparse(savepoint).path, "_metadata").stat().st_mtime
    job_dir = Path(urlparse(recorded).path).parent
    for _ in range(
        100
    ):  # Flink completes newer checkpoints (newer than the savepoint too) and subsumes the recorded one
        latest = httpx.get(f"{rest}/jobs/{job}/checkpoints").json()["latest"]["completed"]
        newer = [c for c in job_dir.glob("chk-*/_metadata") if c.stat().st_mtime > savepoint_written]
        if newer and latest["external_path"] != recorded and not Path(urlparse(recorded).path, "_metadata").exists():
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("Flink never subsumed the recorded checkpoint")
    httpx.patch(f"{rest}/jobs/{job}", params={"mode": "cancel"})  # ended outside streampilot
    for _ in range(100):
        if httpx.get(f"{rest}/jobs/{job}").json()["state"] == "CANCELED":
            break
        await asyncio.sleep(0.1)
    # The truth is on storage (Flink's REST statistics are cached and may lag by a checkpoint or two).
    retained = [c for c in job_dir.glob("chk-*") if (c / "_metadata").exists()]
    newest_on_disk = f"file:{max(retained, key=lambda c: int(c.name.removeprefix('chk-')))}"
    platform.start_loops()  # back up
    await wait_state(api, app_id, "CANCELED")

    started = await act(api, app_id, "start", {"restore": "latest"})
    assert f"from {newest_on_disk}" in started["steps"][1]["text"], started["steps"]
    assert newest_on_disk not in (savepoint, recorded)
    restored = await wait_app(
        api, app_id, lambda a: (a["status"]["last_checkpoint"] or {}).get("restored_from"), what="restore reported"
    )
    assert restored["status"]["last_checkpoint"]["restored_from"] == newest_on_disk
    await act(api, app_id, "cancel")
