"""Every edit makes a new immutable version; versions are listed, diffable, and runnable by choice."""

from __future__ import annotations

import httpx
import pytest

from streampilot.flink.homes import bundled_home_path
from tests.helpers import DATAGEN_SQL, act, events, wait_app, wait_state

pytestmark = [pytest.mark.flink]


async def test_edit_diff_and_run_a_chosen_version(api: httpx.AsyncClient, flink: int) -> None:
    resp = await api.post(
        "/api/v1/apps", json={"name": "versioned", "kind": "sql", "cluster_id": flink, "sql": DATAGEN_SQL}
    )
    app_id = resp.json()["id"]
    patched = await api.patch(
        f"/api/v1/apps/{app_id}", json={"parallelism": 2, "properties": {"pipeline.auto-watermark-interval": "1 s"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["current_version"] == 2
    same = await api.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 2})
    assert same.json()["current_version"] == 2  # no change, no new version

    versions = (await api.get(f"/api/v1/apps/{app_id}/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["spec"]["parallelism"] == 1  # version 1 is unchanged
    diff = (await api.get(f"/api/v1/apps/{app_id}/versions/diff", params={"a": 1, "b": 2})).json()["diff"]
    assert "-parallelism: 1" in diff and "+parallelism: 2" in diff

    started = await api.post(f"/api/v1/apps/{app_id}/start", json={"version": 1})
    assert started.status_code == 202, started.text
    app = await wait_state(api, app_id, "RUNNING")
    assert app["running_version"] == 1 and app["current_version"] == 2
    launch = (await api.get(f"/api/v1/apps/{app_id}/launch-config")).json()
    assert launch["submitted"]["parallelism.default"] == "1"
    assert launch["current"]["parallelism.default"] == "2"
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"

    unknown = await api.post(f"/api/v1/apps/{app_id}/start", json={"version": 9})
    assert unknown.status_code == 404


async def test_upgrade_runs_the_new_version_from_a_savepoint_of_the_old(api: httpx.AsyncClient, flink: int) -> None:
    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "upgraded",
            "kind": "sql",
            "cluster_id": flink,
            "sql": DATAGEN_SQL,
            "checkpointing": {"interval_s": 1},
        },
    )
    app_id = resp.json()["id"]
    stopped = await api.post(f"/api/v1/apps/{app_id}/upgrade", json={})
    assert stopped.status_code == 409 and "not running" in stopped.text
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    old_job = (await wait_state(api, app_id, "RUNNING"))["status"]["job_id"]
    await api.patch(f"/api/v1/apps/{app_id}", json={"parallelism": 2})

    upgraded = await act(api, app_id, "upgrade", {})
    assert upgraded["result"]["version"] == 2 and upgraded["result"]["state"] == "RUNNING"
    app = await wait_state(api, app_id, "RUNNING")
    assert app["running_version"] == 2 and app["status"]["job_id"] != old_job
    savepoint = (await api.get(f"/api/v1/apps/{app_id}/savepoints")).json()[0]
    assert savepoint["trigger"] == "stop" and savepoint["job_id"] == old_job
    # The new job restored the old one's state, and runs with the new settings (read back from Flink).
    app = await wait_app(
        api,
        app_id,
        lambda a: (
            a["status"]["config_verified"] is not None
            and (a["status"]["last_checkpoint"] or {}).get("restored_from") is not None
        ),
        what="readback and restore",
    )
    assert app["status"]["config_verified"] is True
    assert app["status"]["last_checkpoint"]["restored_from"] == savepoint["path"]
    assert any("upgrade from version 1" in e["detail"] for e in await events(api, app_id))
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"


async def test_flink_home_registration(api: httpx.AsyncClient) -> None:
    homes = (await api.get("/api/v1/flink-homes")).json()
    assert homes[0]["bundled"] is True and homes[0]["version"] == "2.3.0"
    resp = await api.post("/api/v1/flink-homes", json={"name": "mine", "path": str(bundled_home_path())})
    assert resp.status_code == 201 and resp.json()["version"] == "2.3.0"
    again = await api.post("/api/v1/flink-homes", json={"name": "mine", "path": str(bundled_home_path())})
    assert again.status_code == 409
