"""Every piece of bad input gets a clear 4xx naming the field, and nothing is half-created."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import DATAGEN_SQL


def fields(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    assert resp.status_code == 422, resp.text
    return {p["field"]: p for p in resp.json()["detail"]}


async def no_apps(api: httpx.AsyncClient) -> bool:
    return (await api.get("/api/v1/apps")).json() == []


async def test_health_is_public_and_everything_else_needs_a_token(api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=api._transport, base_url="http://streampilot") as anonymous:
        health = await anonymous.get("/api/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert (await anonymous.get("/api/v1/apps")).status_code == 401
        bad = await anonymous.get("/api/v1/apps", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and "invalid" in bad.json()["detail"]


def test_token_file_is_private(platform) -> None:  # type: ignore[no-untyped-def]
    assert platform.settings.token_file.stat().st_mode & 0o777 == 0o600


async def test_field_errors_without_flink(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/clusters", json={"name": "gone", "kind": "standalone", "rest_url": "http://127.0.0.1:9"}
    )
    assert "rest_url" in fields(resp)
    assert "no Flink REST API answers" in fields(resp)["rest_url"]["message"]
    resp = await api.post("/api/v1/clusters", json={"name": "x", "kind": "standalone", "rest_url": "ftp:/x"})
    assert "rest_url" in fields(resp)

    base = {"name": "a", "kind": "sql", "cluster_id": 999, "sql": DATAGEN_SQL}
    assert "cluster_id" in fields(await api.post("/api/v1/apps", json=base))
    assert "parallelism" in fields(await api.post("/api/v1/apps", json={**base, "parallelism": -1}))
    assert "properties.a" in fields(await api.post("/api/v1/apps", json={**base, "properties": {"a": [1]}}))
    assert "restart_strategy" in fields(
        await api.post("/api/v1/apps", json={**base, "restart_strategy": {"type": "sometimes"}})
    )
    assert "checkpointing.timeout_s" in fields(
        await api.post("/api/v1/apps", json={**base, "checkpointing": {"interval_s": 1, "timeout_s": 0}})
    )
    assert "checkpoint_failure_policy.failures" in fields(
        await api.post("/api/v1/apps", json={**base, "checkpoint_failure_policy": {"failures": 0, "window_s": 60}})
    )
    assert "sql" in fields(await api.post("/api/v1/apps", json={**base, "sql": "SELECT 1;"}))
    assert "checkpoint_failure_policy.window_s" in fields(
        await api.post("/api/v1/apps", json={**base, "checkpoint_failure_policy": {"failures": 2, "window_s": 0}})
    )
    assert "restart_strategy.delay_s" in fields(
        await api.post(
            "/api/v1/apps", json={**base, "restart_strategy": {"type": "fixed-delay", "attempts": 3, "delay_s": -1}}
        )
    )
    assert "auto_restart.window_s" in fields(
        await api.post("/api/v1/apps", json={**base, "auto_restart": {"max_restarts": 2, "window_s": -5}})
    )
    assert "jar_id" in fields(await api.post("/api/v1/apps", json={"name": "j", "kind": "jar", "cluster_id": 1}))
    assert await no_apps(api)

    assert (await api.get("/api/v1/apps/12345")).status_code == 404
    assert (await api.post("/api/v1/apps/12345/start", json={})).status_code == 404
    assert (await api.get("/api/v1/clusters/777")).status_code == 404

    resp = await api.post("/api/v1/jars", files={"file": ("job.jar", b"not a zip at all", "application/java-archive")})
    assert "file" in fields(resp)
    assert "not a jar" in fields(resp)["file"]["message"]

    resp = await api.post("/api/v1/flink-homes", json={"name": "nowhere", "path": "/tmp"})
    assert "path" in fields(resp)


@pytest.mark.flink
async def test_field_errors_with_flink(api: httpx.AsyncClient, flink: int) -> None:
    base = {"name": "a", "kind": "sql", "cluster_id": flink, "sql": DATAGEN_SQL}
    bad_sql = DATAGEN_SQL.replace("SELECT id, v FROM src", "SELECT id, nosuchcol FROM src")
    problem = fields(await api.post("/api/v1/apps", json={**base, "sql": bad_sql}))["sql"]
    assert problem["message"] == "Flink rejected the script: Column 'nosuchcol' not found in any table"  # once
    assert problem["line"] == 3 and problem["column"] > 1
    unknown = DATAGEN_SQL.replace("'connector' = 'datagen'", "'connector' = 'kafkaa'")
    problem = fields(await api.post("/api/v1/apps", json={**base, "sql": unknown}))["sql"]
    assert problem["message"].startswith(
        "Flink rejected the script: Could not find any factory for identifier 'kafkaa'"
    )
    assert "Available factory identifiers are: blackhole, datagen" in problem["message"]
    assert problem["message"].count("kafkaa") == 1
    assert (
        "contradicts"
        in fields(
            await api.post(
                "/api/v1/apps",
                json={
                    **base,
                    "checkpointing": {"interval_s": 1},
                    "properties": {"execution.checkpointing.interval": "7 s"},
                },
            )
        )["properties.execution.checkpointing.interval"]["message"]
    )
    assert await no_apps(api)

    assert (await api.post("/api/v1/apps", json=base)).status_code == 201
    taken = await api.post("/api/v1/apps", json=base)
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]

    # An edit with bad SQL is refused and makes no new version.
    app_id = (await api.get("/api/v1/apps")).json()[0]["id"]
    assert "sql" in fields(await api.patch(f"/api/v1/apps/{app_id}", json={"sql": bad_sql}))
    assert len((await api.get(f"/api/v1/apps/{app_id}/versions")).json()) == 1
    assert "restore" in fields(await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "latest"}))
    assert "restore" in fields(await api.post(f"/api/v1/apps/{app_id}/start", json={"restore": "/nowhere/sp"}))
    assert (await api.get(f"/api/v1/apps/{app_id}")).json()["status"]["state"] == "CREATED"
