"""The OpenAPI document against the real server (schemathesis, bounded in examples and time, a fixed
seed): no answer is a server error, every status, content type, header and body is the one documented.

Not checked (noted in the issue): that every schema-valid request is accepted and every schema-invalid
one refused — the document does not express rules such as an id that must exist or a name pattern,
and parameters are parsed leniently ("1.0" for an integer). Operations that start Flink processes or
post to outside addresses (adding a cluster, starting or stopping one, testing a channel) are left out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from streampilot.flink.local import free_port
from tests.e2e.test_server_and_cli import wait_http

pytestmark = [pytest.mark.slow]
LEFT_OUT = (
    "add_cluster_api_v1_clusters_post",
    "start_cluster_api_v1_clusters__cluster_id__start_post",
    "stop_cluster_api_v1_clusters__cluster_id__stop_post",
    "test_channel_api_v1_alert_channels__channel_id__test_post",
)
NOT_CHECKED = ("positive_data_acceptance", "negative_data_rejection", "allow_header_conformance")


def test_the_api_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STREAMPILOT_HOME": str(tmp_path / "home"), "STREAMPILOT_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streampilot", "server", "--no-local-cluster", "--no-example"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/v1/health", 60)
        token = (tmp_path / "home" / "admin.token").read_text().strip()
        assert httpx.get(f"{base}/openapi.json").json()["components"]["schemas"]["FieldProblems"]
        st = Path(sys.executable).with_name("st")
        args = [str(st), "run", f"{base}/openapi.json", "-H", f"Authorization: Bearer {token}"]
        args += [
            "--max-examples",
            "5",
            "--max-time",
            "90",
            "--seed",
            "20261122",
            "--exclude-checks",
            ",".join(NOT_CHECKED),
        ]
        for operation in LEFT_OUT:
            args += ["--exclude-operation-id", operation]
        run = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        print(run.stdout[-3000:])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
