"""The real server process as `make run` starts it, driven through the CLI.

The server creates its own local Flink cluster and starts the example app; the CLI operates it;
Ctrl-C (SIGINT) stops everything the server started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from streampilot.flink.local import free_port

pytestmark = [pytest.mark.flink, pytest.mark.slow]
CLI = [sys.executable, "-m", "streampilot"]


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=240)
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_server_with_local_cluster_example_and_cli(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(tmp_path / "home"),
        "STREAMPILOT_PORT": str(port),
        "STREAMPILOT_TRACKING_TICK_S": "0.5",
        "COLUMNS": "200",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([*CLI, "server"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", 120)
        token_file = tmp_path / "home" / "admin.token"
        assert token_file.stat().st_mode & 0o777 == 0o600

        deadline = time.monotonic() + 90
        while "RUNNING" not in (out := cli(env, "app", "list").stdout) and time.monotonic() < deadline:
            time.sleep(1)
        assert "example-datagen-to-blackhole" in out and "RUNNING" in out, out

        clusters = cli(env, "cluster", "list").stdout
        assert "local" in clusters
        assert "bundled-2.3.0" in cli(env, "flink-home", "list").stdout

        spec = tmp_path / "app.yaml"
        spec.write_text(
            "name: cli-app\nkind: sql\ncluster_id: 1\nsql_file: job.sql\nparallelism: 1\n"
            "checkpointing:\n  interval_s: 1\n"
        )
        (tmp_path / "job.sql").write_text(
            "CREATE TABLE s (x INT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');\n"
            "CREATE TABLE k (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO k SELECT x FROM s;\n"
        )
        assert "created application" in cli(env, "app", "create", "-f", str(spec)).stdout
        assert "is RUNNING" in cli(env, "app", "start", "cli-app").stdout
        assert cli(env, "app", "savepoint", "cli-app").stdout.strip().startswith("file:")
        change = tmp_path / "change.yaml"
        change.write_text("parallelism: 2\n")
        assert "version 2; running version 1" in cli(env, "app", "update", "cli-app", "-f", str(change)).stdout
        assert "runs version 2" in cli(env, "app", "upgrade", "cli-app").stdout
        assert "FINISHED" in cli(env, "app", "stop", "cli-app").stdout
        events = cli(env, "app", "events", "cli-app").stdout
        assert "STARTING" in events and "FINISHED" in events
        assert "2" in cli(env, "app", "versions", "cli-app").stdout

        # Errors are one clear line, no traceback, non-zero exit.
        again = cli(env, "app", "create", "-f", str(spec), ok=False)
        assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr
        missing = cli(env, "app", "start", "no-such-app", ok=False)
        assert missing.returncode != 0 and "no application named" in missing.stderr
        no_cluster = cli(env, "cluster", "stop", "no-such-cluster", ok=False)
        assert no_cluster.returncode != 0 and "no cluster named" in no_cluster.stderr
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: [unclosed\n")
        broken = cli(env, "app", "create", "-f", str(bad), ok=False)
        assert broken.returncode != 0 and "not valid YAML" in broken.stderr and "Traceback" not in broken.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=90)
        log.close()
    # Everything the server started is gone: the local cluster's processes too.
    pid_dir = tmp_path / "home" / "clusters" / "local" / "pid"
    for pid_file in pid_dir.glob("*.pid"):
        for pid in pid_file.read_text().split():
            assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
