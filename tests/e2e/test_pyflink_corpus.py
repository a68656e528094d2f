"""The PyFlink examples shipped in the installed apache-flink wheel, run unedited as a new user would.

Every example that needs no outside system must end as Flink says: RUNNING (then canceled by the
test) or FINISHED, never shown RESTARTING on the way when it is bounded. The ones that need Kafka,
Elasticsearch or Pulsar must fail with the real cause in the app's message. After the whole corpus,
no job on the cluster is unaccounted for.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pyflink
import pytest

from streampilot.flink.local import LocalCluster
from tests.helpers import events

pytestmark = [pytest.mark.flink, pytest.mark.slow]
EXAMPLES = Path(pyflink.__file__).parent / "examples"
OUTSIDE = {"datastream/connectors"}  # need Kafka, Elasticsearch or Pulsar
AT_ONCE = int(os.environ.get("STREAMPILOT_CORPUS_AT_ONCE", "3"))
ONLY = os.environ.get("STREAMPILOT_CORPUS_ONLY", "")


def corpus() -> tuple[list[str], list[str]]:
    found = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py") if p.name != "__init__.py")
    found = [f for f in found if ONLY in f]
    outside = [f for f in found if any(f.startswith(o) for o in OUTSIDE)]
    return [f for f in found if f not in outside], outside


async def flink_state(rest_url: str, job_id: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(f"{rest_url}/jobs/{job_id}")
        return str(resp.json()["state"]) if resp.status_code == 200 else "unknown"


async def run_example(api: httpx.AsyncClient, cluster_id: int, rest_url: str, example: str) -> dict[str, Any]:
    name = "corpus-" + example.removesuffix(".py").replace("/", "-").replace("_", "-")
    body = {"name": name, "kind": "python", "cluster_id": cluster_id, "python": (EXAMPLES / example).read_text()}
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    resp = await api.post(f"/api/v1/apps/{app_id}/start")
    assert resp.status_code == 202, resp.text
    outcome: dict[str, Any] = {"example": example, "app_id": app_id}
    flink = "not compared"
    for _ in range(900):
        app = (await api.get(f"/api/v1/apps/{app_id}")).json()
        state, job_id = app["status"]["state"], app["status"]["job_id"]
        if state in ("RUNNING", "FINISHED", "FAILED", "CREATED") and app["operation"] is None:
            flink = await flink_state(rest_url, job_id) if job_id else "no job"
            if state in ("FAILED", "CREATED") or flink == state:
                break
        await asyncio.sleep(0.2)
    timeline = await events(api, app_id)
    ops = (await api.get(f"/api/v1/apps/{app_id}/operations")).json()
    resp = await api.get(f"/api/v1/apps/{app_id}/exceptions")
    exceptions = resp.json() if resp.status_code == 200 else []
    said = [ops[0]["error"] or ""] + [e["message"] for e in exceptions[:1]] + [e["detail"] for e in timeline[-2:]]
    outcome.update(state=state, flink=flink, job_id=job_id, message=" | ".join(s for s in said if s))
    outcome["states"] = [e["to_state"] for e in timeline]
    print(f"{example:55} {state:10} flink={flink:10} {outcome['states']} {outcome['message'][:400]!r}", flush=True)
    if state == "RUNNING":
        resp = await api.post(f"/api/v1/apps/{app_id}/cancel")
        assert resp.status_code == 202 or "is FINISHED" in resp.text, resp.text  # a bounded one may end first
    return outcome


def as_flink_says(r: dict[str, Any], needs_outside_system: bool) -> bool:
    if needs_outside_system:
        # Refused at start with the script's own reason (the missing connector), not an exit code.
        return r["state"] == "CREATED" and "the PyFlink script failed: " in r["message"] and "exits" not in r["message"]
    if r["state"] not in ("RUNNING", "FINISHED") or r["flink"] != r["state"]:
        return False
    return r["state"] == "RUNNING" or "RESTARTING" not in r["states"]  # bounded: never shown restarting


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_pyflink_examples_run_as_flink_says(
    api: httpx.AsyncClient, flink: int, flink_cluster: LocalCluster
) -> None:
    runnable, outside = corpus()
    rest_url = flink_cluster.layout.rest_url
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(example: str) -> dict[str, Any]:
        async with gate:
            return await run_example(api, flink, rest_url, example)

    results = await asyncio.gather(*(one(e) for e in runnable + outside))
    wrong = [r for r in results if not as_flink_says(r, r["example"] in outside)]
    assert wrong == [], wrong
