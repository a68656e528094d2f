"""Jars an app brings: uploaded dependencies (dependency_jar_ids), ADD JAR and CREATE FUNCTION ... USING JAR.

The function lives in a jar built here with javac that no Flink class path knows; the job must run
it on the TaskManager, so the rows it writes prove the jar reached the whole job.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import pytest

from tests.helpers import act, wait_state, written_rows

pytestmark = [pytest.mark.flink]
SINGLE_DB = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def shout_sql(out: Path, prelude: str) -> str:
    return f"""{prelude}
CREATE TABLE words (w STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '5', 'fields.w.length' = '4');
CREATE TABLE shouted (w STRING) WITH ('connector' = 'filesystem', 'path' = '{out.as_uri()}', 'format' = 'csv');
INSERT INTO shouted SELECT shout(w) FROM words;
"""


async def run_and_read(api: httpx.AsyncClient, app_id: int, out: Path) -> list[str]:
    await act(api, app_id, "start")
    await wait_state(api, app_id, "FINISHED", timeout=60)
    rows = written_rows(out)
    assert len(rows) == 5, rows
    return rows


@SINGLE_DB
async def test_an_uploaded_udf_jar_reaches_the_job(
    api: httpx.AsyncClient, flink: int, udf_jar: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    body = {
        "name": "shout-dependency",
        "kind": "sql",
        "cluster_id": flink,
        "runtime_mode": "batch",
        "sql": shout_sql(out, "CREATE FUNCTION shout AS 'io.streampilot.testudf.Shout';"),
    }
    # Without the jar, Flink's planner cannot find the class: a field error at create, nothing runs.
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 422, resp.text
    assert "io.streampilot.testudf.Shout" in resp.text, resp.text

    resp = await api.post("/api/v1/apps", json={**body, "dependency_jar_ids": [12345]})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["field"] == "dependency_jar_ids"

    upload = await api.post("/api/v1/jars", files={"file": ("shout-udf.jar", udf_jar.read_bytes())})
    assert upload.status_code == 201, upload.text
    resp = await api.post("/api/v1/apps", json={**body, "dependency_jar_ids": [upload.json()["id"]]})
    assert resp.status_code == 201, resp.text
    rows = await run_and_read(api, resp.json()["id"], out)
    assert all(r.endswith("!") and r[:-1] == r[:-1].upper() for r in rows), rows


@SINGLE_DB
@pytest.mark.parametrize("form", ["add-jar", "using-jar"])
async def test_sql_brings_its_own_jar(
    api: httpx.AsyncClient, flink: int, udf_jar: Path, tmp_path: Path, form: str
) -> None:
    # Flink's documented forms; the path is read by the JobManager (here: the same machine).
    prelude = {
        "add-jar": f"ADD JAR '{udf_jar}';\nCREATE FUNCTION shout AS 'io.streampilot.testudf.Shout';",
        "using-jar": f"CREATE FUNCTION shout AS 'io.streampilot.testudf.Shout' USING JAR '{udf_jar}';",
    }[form]
    out = tmp_path / "out"
    body = {
        "name": f"shout-{form}",
        "kind": "sql",
        "cluster_id": flink,
        "runtime_mode": "batch",
        "sql": shout_sql(out, prelude),
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    rows = await run_and_read(api, resp.json()["id"], out)
    assert all(r.endswith("!") for r in rows), rows


PYFLINK_SHOUT = """import sys
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t_env.create_java_temporary_function("shout", "io.streampilot.testudf.Shout")
t_env.execute_sql(
    "CREATE TABLE words (w STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '5', 'fields.w.length' = '4')"
)
t_env.execute_sql(
    f"CREATE TABLE shouted (w STRING) WITH ('connector' = 'filesystem', 'path' = '{sys.argv[1]}', 'format' = 'csv')"
)
t_env.execute_sql("INSERT INTO shouted SELECT shout(w) FROM words")
"""


@SINGLE_DB
async def test_a_pyflink_app_uses_a_java_function_from_an_uploaded_jar(
    api: httpx.AsyncClient, flink: int, udf_jar: Path, tmp_path: Path
) -> None:
    upload = await api.post("/api/v1/jars", files={"file": ("shout-udf.jar", udf_jar.read_bytes())})
    assert upload.status_code == 201, upload.text
    out = tmp_path / "out"
    body = {
        "name": "pyflink-shout",
        "kind": "python",
        "cluster_id": flink,
        "python": PYFLINK_SHOUT,
        "args": [out.as_uri()],
        "dependency_jar_ids": [upload.json()["id"]],
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    rows = await run_and_read(api, resp.json()["id"], out)
    assert all(r.endswith("!") for r in rows), rows


PYFLINK_WITH_FILES = """import sys
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf

from helpers.text import shout  # one of the app's python_files, on the client

t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())


@udf(result_type=DataTypes.STRING())
def decorate(s):
    import spgreet  # installed for the workers from python_requirements
    from helpers.text import shout  # the same file, on the worker

    return spgreet.greet(shout(s))


t_env.create_temporary_function("decorate", decorate)
t_env.execute_sql(
    "CREATE TABLE words (w STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '5', 'fields.w.length' = '4')"
)
t_env.execute_sql(
    f"CREATE TABLE shouted (w STRING) WITH ('connector' = 'filesystem', 'path' = '{sys.argv[1]}', 'format' = 'csv')"
)
t_env.execute_sql("INSERT INTO shouted SELECT decorate(w) FROM words")
assert shout("a") == "A!"
"""


def wheel(folder: Path) -> Path:
    """A tiny pure-Python wheel, so that requirements install without any package index."""
    path = folder / "spgreet-1.0-py3-none-any.whl"
    files = {
        "spgreet/__init__.py": "def greet(s):\n    return 'hi-' + s\n",
        "spgreet-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: spgreet\nVersion: 1.0\n",
        "spgreet-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in [*files, "spgreet-1.0.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in {**files, "spgreet-1.0.dist-info/RECORD": record}.items():
            zf.writestr(name, text)
    return path


@SINGLE_DB
async def test_a_pyflink_app_brings_python_files_and_requirements(
    api: httpx.AsyncClient, flink: int, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels)
    out = tmp_path / "out"
    files = {"helpers/__init__.py": "", "helpers/text.py": "def shout(s):\n    return s.upper() + '!'\n"}
    body = {
        "name": "pyflink-files",
        "kind": "python",
        "cluster_id": flink,
        "python": PYFLINK_WITH_FILES,
        "args": [out.as_uri()],
        "python_files": {**files, "helpers/broken.py": "def f(:\n"},
        "python_requirements": ["spgreet==1.0"],
        "python_wheel_dir": str(wheels),
    }
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 422, resp.text
    problem = resp.json()["detail"][0]
    assert (problem["field"], problem["line"]) == ("python_files.helpers/broken.py", 1), problem

    resp = await api.post("/api/v1/apps", json={**body, "python_files": files})
    assert resp.status_code == 201, resp.text
    rows = await run_and_read(api, resp.json()["id"], out)
    assert all(r.startswith("hi-") and r.endswith("!") for r in rows), rows
