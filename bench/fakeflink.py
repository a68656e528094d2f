"""A simulated fleet: one process serving many fake Flink REST endpoints (``/jobs/overview``, and
each job's graph and metrics as Flink 2.3 answers them, for the job metrics bench).

Cluster ``c`` listens on ``base_port + c`` and lists ``jobs`` jobs; one job per cluster flips from
RUNNING to RESTARTING at a scheduled moment (``flip_at``), which the benchmark computes the same way.
Run: ``python -m bench.fakeflink --clusters 200 --jobs 50 --base-port 30000 --t0 <epoch>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def job_id(cluster: int, job: int) -> str:
    return f"{cluster:08x}{job:024x}"


def flip_at(t0: float, cluster: int) -> float:
    """When cluster ``cluster``'s job 0 changes state (spread over 10-50 s after t0)."""
    return t0 + 10 + (cluster * 7.919) % 40


def overview(cluster: int, jobs: int, t0: float) -> bytes:
    now = time.time()
    listing = []
    for k in range(jobs):
        flipped = k == 0 and now >= flip_at(t0, cluster)
        state = "RESTARTING" if flipped else "RUNNING"
        running = 0 if flipped else 2
        listing.append(
            {
                "jid": job_id(cluster, k),
                "name": f"job-{cluster}-{k}",
                "state": state,
                "start-time": int(t0 * 1000),
                "tasks": {"running": running, "total": 2},
            }
        )
    return json.dumps({"jobs": listing}).encode()


VERTICES = ("90bea66de1c231edf33913ecd54406c1", "0a448493b4782967b150582570326227")
TASK_IDS = (
    "numRecordsInPerSecond", "numRecordsOutPerSecond", "busyTimeMsPerSecond", "backPressuredTimeMsPerSecond",
    "currentInputWatermark", "idleTimeMsPerSecond", "numBytesInPerSecond", "numBytesOutPerSecond",
)  # fmt: skip


def job_detail(jid: str) -> bytes:
    """``/jobs/<id>``: a source feeding a sink, as two vertices."""
    names = ("Source: orders[1]", "sink[2]: Writer")
    return json.dumps(
        {
            "jid": jid,
            "state": "RUNNING",
            "vertices": [{"id": v, "name": n, "parallelism": 2} for v, n in zip(VERTICES, names, strict=True)],
            "plan": {"nodes": [{"id": VERTICES[0]}, {"id": VERTICES[1], "inputs": [{"id": VERTICES[0]}]}]},
        }
    ).encode()


def vertex_metrics(vertex: str, query: str) -> bytes:
    """``/jobs/<id>/vertices/<v>/subtasks/metrics``: the ids it has, or the asked ones aggregated."""
    operator = "Source__orders[1]" if vertex == VERTICES[0] else "sink[2]__Writer"
    ids = [*TASK_IDS, f"{operator}.numRecordsInPerSecond", f"{operator}.numRecordsOutPerSecond"]
    asked = next((p[4:].split(",") for p in query.split("&") if p.startswith("get=")), None)
    if asked is None:
        return json.dumps([{"id": i} for i in ids]).encode()
    value = 100.0 + (time.time() % 7)
    return json.dumps([{"id": i, "min": value, "max": value, "avg": value, "sum": 2 * value} for i in asked]).encode()


async def serve(clusters: int, jobs: int, base_port: int, t0: float) -> None:
    async def handler(cluster: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                parts = path.decode().split("?", 1)
                segments, query = parts[0].strip("/").split("/"), parts[1] if len(parts) > 1 else ""
                if path.startswith(b"/jobs/overview"):
                    body, status = overview(cluster, jobs, t0), b"200 OK"
                elif len(segments) == 2 and segments[0] == "jobs":
                    body, status = job_detail(segments[1]), b"200 OK"
                elif len(segments) == 6 and segments[2] == "vertices" and segments[4:] == ["subtasks", "metrics"]:
                    body, status = vertex_metrics(segments[3], query.replace("%2C", ",")), b"200 OK"
                elif len(segments) == 3 and segments[2] == "metrics":
                    body, status = b'[{"id":"numRestarts","value":"0"}]', b"200 OK"
                else:
                    body, status = b'{"errors":["Not found"]}', b"404 Not Found"
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = []
    for c in range(clusters):
        servers.append(await asyncio.start_server(lambda r, w, c=c: handler(c, r, w), "127.0.0.1", base_port + c))
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--base-port", type=int, default=30000)
    ap.add_argument("--t0", type=float, required=True)
    args = ap.parse_args()
    asyncio.run(serve(args.clusters, args.jobs, args.base_port, args.t0))


if __name__ == "__main__":
    main()
