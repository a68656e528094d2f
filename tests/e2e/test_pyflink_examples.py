"""The PyFlink examples shipped in the apache-flink wheel, run as a user would bring them (not edited).

Table API examples end in ``.wait()``: Flink starts the job under the id streampilot chose, then the
submission answers an error because the wait cannot happen inside the JobManager. The job must be
the app's, tracked to its end: never an orphan.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pyflink
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import act, events, wait_state

pytestmark = [pytest.mark.flink, pytest.mark.slow]
EXAMPLES = Path(pyflink.__file__).parent / "examples"
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def python_app(api: httpx.AsyncClient, cluster_id: int, name: str, example: str) -> int:
    body = {"name": name, "kind": "python", "cluster_id": cluster_id, "python": (EXAMPLES / example).read_text()}
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def unaccounted(flink_cluster: LocalCluster, known: set[str]) -> list[dict[str, str]]:
    jobs = httpx.get(f"{flink_cluster.layout.rest_url}/jobs/overview").json()["jobs"]
    return [j for j in jobs if j["jid"] not in known and j["state"] not in ("CANCELED", "FINISHED", "FAILED")]


@SINGLE_DB
async def test_table_api_examples_that_wait_are_tracked_not_orphaned(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    streaming = await python_app(api, flink, "streaming-word-count", "table/streaming_word_count.py")
    bounded = await python_app(api, flink, "word-count", "table/word_count.py")

    op = await act(api, streaming, "start")  # succeeds: the job runs, whatever the submission answered
    job_id = op["result"]["job_id"]
    assert op["result"]["state"] == "RUNNING"
    assert any(f"but runs job {job_id}; tracking it" in s["text"] for s in op["steps"]), op["steps"]
    app = (await api.get(f"/api/v1/apps/{streaming}")).json()
    assert (app["status"]["state"], app["status"]["job_id"]) == ("RUNNING", job_id)
    notes = [e["detail"] for e in await events(api, streaming)]
    assert any("is this application's job and is tracked" in d for d in notes)

    # The local cluster has flink-python in its lib/: the job's jar is the empty carrier, so that
    # flink-python's classes are not loaded again for every PyFlink job (metaspace).
    names = [j["name"] for j in httpx.get(f"{flink_cluster.layout.rest_url}/jars").json()["files"]]
    assert any(n.endswith("streampilot-python-carrier.jar") for n in names), names
    assert not any("flink-python" in n for n in names), names

    await act(api, bounded, "start")
    finished = await wait_state(api, bounded, "FINISHED", timeout=90)  # a bounded example ends by itself
    assert "RESTARTING" not in [e["to_state"] for e in await events(api, bounded)]

    assert unaccounted(flink_cluster, {job_id, finished["status"]["job_id"]}) == []
    jobs = (await api.get("/api/v1/jobs/unmanaged")).json()
    assert [j for j in jobs if j["job_id"] in (job_id, finished["status"]["job_id"])] == []
    await act(api, streaming, "cancel")


FAILING_UDF = """from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())


@udf(result_type=DataTypes.BIGINT())
def parse(s):
    raise ValueError(f"not a number: {s!r}")


t_env.create_temporary_function("parse", parse)
t_env.execute_sql(
    "CREATE TABLE src (s STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '5', 'fields.s.length' = '3')"
)
t_env.execute_sql("CREATE TABLE snk (n BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO snk SELECT parse(s) FROM src")
"""


@SINGLE_DB
async def test_a_failing_python_function_says_its_own_error(api: httpx.AsyncClient, flink: int) -> None:
    body = {
        "name": "failing-udf",
        "kind": "python",
        "cluster_id": flink,
        "python": FAILING_UDF,
        "restart_strategy": {"type": "none"},
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    await act(api, app_id, "start", expect=None)  # it may fail before all tasks ever ran
    await wait_state(api, app_id, "FAILED", timeout=120)
    for _ in range(50):
        found = (await api.get(f"/api/v1/apps/{app_id}/exceptions")).json()
        if found:
            break
        await asyncio.sleep(0.2)
    assert found, "Flink reported no exception"
    assert found[0]["message"].startswith("ValueError: not a number: '"), found[0]["message"]
    # The same words in the timeline.
    for _ in range(50):
        reasons = [e["detail"] for e in await events(api, app_id) if e["detail"].startswith("Flink's reason: ")]
        if reasons:
            break
        await asyncio.sleep(0.2)
    assert reasons == [f"Flink's reason: {found[0]['message']}"]
