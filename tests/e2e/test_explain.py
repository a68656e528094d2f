"""EXPLAIN of a SQL script from the API: Flink's own planner, nothing submitted to the cluster."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import DATAGEN_SQL

pytestmark = [pytest.mark.flink]
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SINGLE_DB
async def test_explain_an_app_and_an_unsaved_script(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster, udf_jar: Path
) -> None:
    jobs_before = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    resp = await api.post(
        "/api/v1/apps", json={"name": "explained", "kind": "sql", "cluster_id": flink, "sql": DATAGEN_SQL}
    )
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]

    resp = await api.post(f"/api/v1/apps/{app_id}/explain")
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    assert plan["version"] == 1
    for section in ("== Abstract Syntax Tree ==", "== Optimized Physical Plan ==", "== Optimized Execution Plan =="):
        assert section in plan["plan"], plan["plan"]
    assert "TableSourceScan(table=[[default_catalog, default_database, src]]" in plan["plan"]
    # Nothing ran.
    assert httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"] == jobs_before

    # A script being edited, with a mistake on its third line: the field error names it.
    bad = DATAGEN_SQL.replace("SELECT id, v FROM src", "SELECT id, nope FROM src")
    resp = await api.post("/api/v1/explain", json={"cluster_id": flink, "sql": bad})
    assert resp.status_code == 422, resp.text
    problem = resp.json()["detail"][0]
    assert problem["field"] == "sql" and problem["line"] == 3, problem
    assert "Column 'nope' not found" in problem["message"], problem

    # A function from an uploaded jar plans when the jar is listed.
    upload = await api.post("/api/v1/jars", files={"file": ("shout-udf.jar", udf_jar.read_bytes())})
    sql = "CREATE FUNCTION shout AS 'io.streampilot.testudf.Shout';\n" + DATAGEN_SQL.replace("v FROM", "shout(v) FROM")
    body = {"cluster_id": flink, "sql": sql, "dependency_jar_ids": [upload.json()["id"]]}
    resp = await api.post("/api/v1/explain", json=body)
    assert resp.status_code == 200, resp.text
    assert "shout(v)" in resp.json()["plan"]

    # Batch mode plans as batch: an unbounded source is Flink's refusal, said in one line.
    resp = await api.post("/api/v1/explain", json={**body, "runtime_mode": "batch"})
    assert resp.status_code == 422, resp.text
    message = resp.json()["detail"][0]["message"]
    assert "Querying an unbounded table" in message and "\n" not in message and " at " not in message, message

    resp = await api.post("/api/v1/explain", json={"cluster_id": 999, "sql": DATAGEN_SQL})
    assert resp.status_code == 404, resp.text
