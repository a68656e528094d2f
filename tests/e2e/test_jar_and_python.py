"""A jar application (built here with javac against the distribution) and a PyFlink application."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers import act, wait_app, wait_state

pytestmark = [pytest.mark.flink]
JOBS = Path(__file__).parent / "jobs"


async def test_jar_app_runs_savepoints_and_restores(api: httpx.AsyncClient, flink: int, jobs_jar: Path) -> None:
    upload = await api.post("/api/v1/jars", files={"file": ("tiny-job.jar", jobs_jar.read_bytes())})
    assert upload.status_code == 201, upload.text
    jar_id = upload.json()["id"]

    wrong = await api.post(
        "/api/v1/apps",
        json={"name": "tiny", "kind": "jar", "cluster_id": flink, "jar_id": jar_id, "entry_class": "example.NoSuchJob"},
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "entry_class"
    image_only = await api.post(
        "/api/v1/apps",
        json={
            "name": "tiny",
            "kind": "jar",
            "cluster_id": flink,
            "properties": {"kubernetes.jar-uri": "local:///opt/flink/usrlib/job.jar"},
        },
    )
    assert image_only.status_code == 422 and image_only.json()["detail"][0]["field"] == "jar_id"

    resp = await api.post(
        "/api/v1/apps",
        json={
            "name": "tiny",
            "kind": "jar",
            "cluster_id": flink,
            "jar_id": jar_id,
            "entry_class": "example.TinyJob",
            "args": ["10"],
            "parallelism": 2,
            "checkpointing": {"interval_s": 0.5},
            "restart_strategy": {"type": "fixed-delay", "attempts": 4, "delay_s": 1},
        },
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={})).status_code == 202
    app = await wait_state(api, app_id, "RUNNING")
    assert app["status"]["tasks_total"] >= 2
    app = await wait_app(api, app_id, lambda a: a["status"]["config_verified"] is not None, what="verification")
    assert app["status"]["config_verified"] is True, app["status"]["config_mismatches"]

    stopped = await act(api, app_id, "stop", {"savepoint": True})
    assert stopped["result"]["state"] == "FINISHED"
    savepoint = (await api.get(f"/api/v1/apps/{app_id}/savepoints")).json()[0]["path"]
    assert stopped["result"]["savepoint"] == savepoint
    assert (await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": savepoint})).status_code == 202
    app = await wait_app(
        api,
        app_id,
        lambda a: (
            (a["status"]["last_checkpoint"] or {}).get("restored_from") == savepoint
            and a["status"]["state"] == "RUNNING"
        ),
        what="restored and running",
    )
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"


async def test_python_app_runs(api: httpx.AsyncClient, flink: int) -> None:
    bad = await api.post(
        "/api/v1/apps", json={"name": "py", "kind": "python", "cluster_id": flink, "python": "def broken(:\n  pass\n"}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "python" and bad.json()["detail"][0]["line"] == 1

    resp = await api.post(
        "/api/v1/apps",
        json={"name": "py", "kind": "python", "cluster_id": flink, "python": (JOBS / "tiny_pyflink.py").read_text()},
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    # The start operation ends once all tasks run; the tracker may show RUNNING a moment before, when
    # a savepoint would still be refused (409: the start is in progress).
    assert (await act(api, app_id, "start", {}))["result"]["state"] == "RUNNING"
    await wait_state(api, app_id, "RUNNING", timeout=90)
    assert (await act(api, app_id, "savepoint"))["result"]["path"].startswith("file:")
    assert (await act(api, app_id, "cancel"))["result"]["state"] == "CANCELED"
