"""SQL written the way Flink's documentation writes it, run on the real cluster."""

from __future__ import annotations

import uuid

import httpx
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import act, wait_state

pytestmark = [pytest.mark.flink]
# What Flink does with the job is the point here, not the database: one database is enough.
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# As in Flink's SQL documentation (INSERT statements, "Run multiple INSERT statements"): one job, two sinks.
STATEMENT_SET = """CREATE TABLE orders (id BIGINT, amount DOUBLE) WITH (
  'connector' = 'datagen', 'number-of-rows' = '200', 'rows-per-second' = '100'
);
CREATE TEMPORARY VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 0;
CREATE TABLE audit_sink (id BIGINT, amount DOUBLE) WITH ('connector' = 'blackhole');
CREATE TABLE count_sink (id BIGINT) WITH ('connector' = 'blackhole');

EXECUTE STATEMENT SET
BEGIN
  INSERT INTO audit_sink SELECT id, amount FROM big_orders;
  INSERT INTO count_sink SELECT id FROM orders;
END;
"""


@SINGLE_DB
async def test_execute_statement_set_is_one_job_with_both_sinks(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    name = f"statement-set-{uuid.uuid4().hex[:8]}"  # the cluster is shared by every database's run
    body = {"name": name, "kind": "sql", "cluster_id": flink, "sql": STATEMENT_SET}
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    job_id = (await act(api, app_id, "start"))["result"]["job_id"]
    await wait_state(api, app_id, "FINISHED", timeout=60)
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    assert [j["jid"] for j in jobs if j["name"] == name] == [job_id]  # one job, not one per INSERT
    plan = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/{job_id}/plan").json()["plan"]
    described = " ".join(node["description"] for node in plan["nodes"])
    assert "audit_sink" in described and "count_sink" in described


@SINGLE_DB
async def test_create_table_as_select_is_the_scripts_job(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    sql = (
        "CREATE TABLE src (id BIGINT, v STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '50');\n"
        "CREATE TABLE copy_sink WITH ('connector' = 'blackhole') AS SELECT id, v FROM src;\n"
    )
    name = f"ctas-{uuid.uuid4().hex[:8]}"
    resp = await api.post("/api/v1/apps", json={"name": name, "kind": "sql", "cluster_id": flink, "sql": sql})
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    # A bounded job may be done before anyone saw it run: that is a successful start too.
    started = await act(api, app_id, "start")
    assert started["result"]["state"] in ("RUNNING", "FINISHED")
    await wait_state(api, app_id, "FINISHED")
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    assert [j["jid"] for j in jobs if j["name"] == name] == [started["result"]["job_id"]]
