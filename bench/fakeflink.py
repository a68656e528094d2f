"""A simulated fleet: one process serving many fake Flink REST endpoints (``/jobs/overview``).

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


async def serve(clusters: int, jobs: int, base_port: int, t0: float) -> None:
    async def handler(cluster: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path.startswith(b"/jobs/overview"):
                    body, status = overview(cluster, jobs, t0), b"200 OK"
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
