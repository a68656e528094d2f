"""The real server process as `make run` starts it, driven through the CLI.

The server creates its own local Flink cluster and starts the example app; the CLI operates it;
Ctrl-C (SIGINT) stops everything the server started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

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


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_walkthrough() -> tuple[str, str, list[str]]:
    """orders.yaml, change.yaml and the commands to run in order, exactly as the README shows them."""
    text = README.read_text()
    orders = re.search(r"```yaml\n(# orders\.yaml\n.*?)```", text, re.S)
    change = re.search(r"```yaml\n(# change\.yaml\n.*?)```", text, re.S)
    commands = re.search(r"Then, in this order:\n\n```bash\n(.*?)```", text, re.S)
    assert orders and change and commands, "the README's walk-through moved"
    lines = [line.split(" #", 1)[0].strip() for line in commands.group(1).splitlines() if line.strip()]
    return orders.group(1), change.group(1), lines


def test_server_answers_at_once_then_runs_the_readme_walkthrough(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(tmp_path / "home"),
        "STREAMPILOT_PORT": str(port),
        "STREAMPILOT_TRACKING_TICK_S": "0.5",
    }
    env.pop("COLUMNS", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([*CLI, "server"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", 30)
        token_file = tmp_path / "home" / "admin.token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        # The API answers while the local cluster is still starting in the background.
        states = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "RUNNING" not in states:
            listed = json.loads(cli(env, "cluster", "list", "-o", "json").stdout)
            states += [c["state"] for c in listed if c["name"] == "local" and c["state"]]
            time.sleep(0.2)
        assert states[0] == "STARTING" and states[-1] == "RUNNING", states

        deadline = time.monotonic() + 90
        while "RUNNING" not in (out := cli(env, "app", "list").stdout) and time.monotonic() < deadline:
            time.sleep(1)
        assert "example-datagen-to-blackhole" in out and "RUNNING" in out, out
        assert "bundled-2.3.0" in cli(env, "flink-home", "list").stdout

        # The README's walk-through, in order, as written (its YAML files included).
        orders, change, commands = readme_walkthrough()
        work = tmp_path / "work"
        work.mkdir()
        (work / "orders.yaml").write_text(orders)
        (work / "change.yaml").write_text(change)
        said = {}
        for command in commands:
            args = shlex.split(command)
            assert args[0] == ".venv/bin/streampilot", command
            proc = subprocess.run([*CLI, *args[1:]], env=env, cwd=work, capture_output=True, text=True, timeout=240)
            assert proc.returncode == 0, f"{command}: {proc.stderr}{proc.stdout}"
            said[" ".join(args[1:3]) + (" restore" if "--restore" in args else "")] = proc.stdout
        assert "orders is RUNNING" in said["app start"] and "orders is RUNNING" in said["app start restore"]
        savepoint = said["app savepoint"]
        assert savepoint.startswith("file:") and savepoint.count("\n") == 1  # the path alone, for scripts
        assert Path(savepoint.strip().removeprefix("file:"), "_metadata").exists()
        assert "FINISHED; savepoint file:" in said["app stop"]
        assert "version 2; running version 1" in said["app update"]
        assert "+parallelism: 2" in said["app versions"]
        assert "orders runs version 2" in said["app upgrade"]
        assert "STARTING" in said["app events"] and "FINISHED" in said["app events"]
        assert "CANCELED" in said["app cancel"]
        ops = json.loads(cli(env, "app", "operations", "orders", "-o", "json").stdout)
        assert [(o["verb"], o["state"]) for o in ops][:3] == [
            ("cancel", "succeeded"),
            ("upgrade", "succeeded"),
            ("start", "succeeded"),
        ]

        # --no-wait prints the operation's id; 'operation wait' follows it to its end.
        op_id = cli(env, "app", "start", "orders", "--no-wait").stdout.strip()
        assert op_id.isdigit()
        assert "succeeded" in cli(env, "operation", "wait", op_id).stdout
        shown = yaml.safe_load(cli(env, "operation", "show", op_id, "-o", "yaml").stdout)
        assert shown["verb"] == "start" and shown["result"]["state"] == "RUNNING"
        # A table to a pipe keeps every value whole (no terminal width to fit).
        job_id = json.loads(cli(env, "app", "show", "orders", "-o", "json").stdout)["status"]["job_id"]
        assert job_id in cli(env, "app", "list").stdout
        cli(env, "app", "cancel", "orders")

        # Errors are one clear line, no traceback, non-zero exit.
        spec = work / "orders.yaml"
        again = cli(env, "app", "create", "-f", str(spec), ok=False)
        assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr
        stopped = cli(env, "app", "stop", "orders", ok=False)
        assert stopped.returncode != 0 and "not running" in stopped.stderr and "Traceback" not in stopped.stderr
        missing = cli(env, "app", "start", "no-such-app", ok=False)
        assert missing.returncode != 0 and "no application named" in missing.stderr
        no_cluster = cli(env, "cluster", "stop", "no-such-cluster", ok=False)
        assert no_cluster.returncode != 0 and "no cluster named" in no_cluster.stderr
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: [unclosed\n")
        broken = cli(env, "app", "create", "-f", str(bad), ok=False)
        assert broken.returncode != 0 and "not valid YAML" in broken.stderr and "Traceback" not in broken.stderr
        # Variables: a secret's value is asked for when not given, and never shown again.
        assert "created" in cli(env, "variable", "set", "kafka_servers", "broker-1:9092").stdout
        asked = subprocess.run(
            [*CLI, "variable", "set", "kafka_password", "--secret"],
            env=env,
            input="pa55-word\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert asked.returncode == 0 and "created" in asked.stdout, asked.stderr
        listed = cli(env, "variable", "list").stdout
        assert "broker-1:9092" in listed and "(secret)" in listed and "pa55-word" not in listed
        assert "changed" in cli(env, "variable", "set", "kafka_servers", "broker-2:9092").stdout
        assert "deleted" in cli(env, "variable", "delete", "kafka_servers").stdout
        gone = cli(env, "variable", "delete", "kafka_servers", ok=False)
        assert gone.returncode != 0 and "no variable named" in gone.stderr and "Traceback" not in gone.stderr

        bad_env = cli({**env, "STREAMPILOT_TRACKING_TICK_S": "soon"}, "server", ok=False)
        assert bad_env.returncode != 0 and "STREAMPILOT_TRACKING_TICK_S='soon'" in bad_env.stderr
        assert "Traceback" not in bad_env.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=90)
        log.close()
    # Everything the server started is gone: the local cluster's processes too.
    pid_dir = tmp_path / "home" / "clusters" / "local" / "pid"
    for pid_file in pid_dir.glob("*.pid"):
        for pid in pid_file.read_text().split():
            assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
