"""Foundation benchmarks (run on demand with `make bench`; they print figures, they do not pass or fail).

- submit-to-RUNNING median of a SQL app on a local cluster, through the platform (goal <= 2 s);
- its ratio to a raw REST upload + run of the same job (goal <= 1.2x);
- server start time without Flink (goal <= 2 s) and idle server RSS (goal <= 150 MB);
- server start to the first health answer and console login page while the local Flink cluster
  starts in the background, on a first start (goal <= 2 s), and how long the cluster takes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from streampilot.domain.apps import AppKind, AppSpec, Checkpointing
from streampilot.domain.sqlscript import parse_script
from streampilot.flink.client import FlinkClient, JarRun
from streampilot.flink.homes import bundled_home_path, inspect_home
from streampilot.flink.launch import RUNNER_CLASS, RunnerBuilder, encode_statements
from streampilot.flink.local import LocalCluster, LocalClusterLayout, free_port
from streampilot.services.platform import Platform
from streampilot.settings import Settings

ROUNDS = 7
SQL = """CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');
CREATE TABLE snk (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO snk SELECT id FROM src;"""


async def wait_all_running(client: FlinkClient, job_id: str) -> None:
    while True:
        for job in await client.jobs_overview():
            if job.job_id == job_id and job.state == "RUNNING" and job.tasks_running == job.tasks_total > 0:
                return
        await asyncio.sleep(0.02)


async def bench_submit(root: Path) -> None:
    home = inspect_home(bundled_home_path() or Path("/nonexistent"))
    cluster = LocalCluster(
        LocalClusterLayout(home=home, root=root / "flink", rest_port=free_port(), rpc_port=free_port(), slots=16)
    )
    await cluster.start()
    platform = Platform(Settings().with_(home=root / "home", database_url=None))
    try:
        await platform.open()
        platform.start_loops()
        c = await platform.clusters.add("bench", "standalone", rest_url=cluster.layout.rest_url)
        spec = AppSpec(kind=AppKind.SQL, sql=SQL, checkpointing=Checkpointing(interval_s=10))
        app = await platform.apps.create("bench-app", c.id, spec)
        client = FlinkClient(cluster.layout.rest_url)
        platform_times = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            started = await platform.lifecycle.start(app.id)  # the operation ends once all tasks run
            while (await platform.lifecycle.get_operation(started.id)).state not in ("succeeded", "failed"):
                await asyncio.sleep(0.01)
            platform_times.append(time.perf_counter() - t0)
            assert (await platform.apps.get(app.id)).state == "RUNNING"
            op = await platform.lifecycle.cancel(app.id)
            while (await platform.lifecycle.get_operation(op.id)).state not in ("succeeded", "failed"):
                await asyncio.sleep(0.01)

        runner = await RunnerBuilder(root / "runners").sql_runner(home)
        args = encode_statements(parse_script(SQL))
        raw_times = []
        for i in range(ROUNDS):
            t0 = time.perf_counter()
            jar_id = await client.upload_jar(runner, f"raw-{i}.jar")
            job_id = await client.run_jar(
                jar_id,
                JarRun(
                    entry_class=RUNNER_CLASS,
                    args=args,
                    parallelism=1,
                    configuration={"pipeline.name": "raw", "execution.checkpointing.interval": "10 s"},
                ),
            )
            await wait_all_running(client, job_id)
            raw_times.append(time.perf_counter() - t0)
            await client.cancel(job_id)
        await client.close()
        p, r = statistics.median(platform_times), statistics.median(raw_times)
        print(f"submit-to-RUNNING (platform, SQL app), median of {ROUNDS}: {p:.3f} s   (goal <= 2 s)")
        print(f"raw REST jar upload + run to all tasks running, median:   {r:.3f} s")
        print(f"ratio platform / raw REST: {p / r:.2f}x   (goal <= 1.2x)")
    finally:
        await platform.close()
        await cluster.stop()


def wait_health(base: str, t0: float) -> float:
    """Seconds from ``t0`` until the server's health endpoint answers 200."""
    while True:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=0.5).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            time.sleep(0.02)


def bench_server(root: Path) -> None:
    port = free_port()
    env = {**os.environ, "STREAMPILOT_HOME": str(root / "server-home"), "STREAMPILOT_PORT": str(port)}
    # First start migrates an empty database; time the second, ordinary start.
    for attempt in range(2):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streampilot", "server", "--no-local-cluster"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = wait_health(f"http://127.0.0.1:{port}", t0)
        if attempt == 1:
            time.sleep(3)
            rss_kb = next(
                int(line.split()[1])
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            print(f"server start time without Flink (to first health answer): {started:.2f} s   (goal <= 2 s)")
            print(f"idle server RSS: {rss_kb / 1024:.0f} MB   (goal <= 150 MB)")
        proc.terminate()
        proc.wait(timeout=30)


def bench_server_with_local_cluster(root: Path) -> None:
    port = free_port()
    env = {**os.environ, "STREAMPILOT_HOME": str(root / "first-start"), "STREAMPILOT_PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streampilot", "server", "--no-example"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        health = wait_health(base, t0)
        login = httpx.get(f"{base}/login", timeout=5)
        console = time.perf_counter() - t0
        token = (root / "first-start" / "admin.token").read_text().strip()
        state = None
        while state != "RUNNING" and time.perf_counter() - t0 < 180:
            clusters = httpx.get(f"{base}/api/v1/clusters", headers={"Authorization": f"Bearer {token}"}).json()
            state = clusters[0]["state"] if clusters else None
            time.sleep(0.1)
        ready = time.perf_counter() - t0
        print(
            f"first start, local cluster starting: first health answer {health:.2f} s, console login page "
            f"{console:.2f} s (HTTP {login.status_code})   (goal <= 2 s)"
        )
        print(f"  ... the local Flink cluster RUNNING after {ready:.1f} s, in the background")
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_server_with_local_cluster(Path(tmp))
        bench_server(Path(tmp))
        asyncio.run(bench_submit(Path(tmp)))


if __name__ == "__main__":
    main()
