"""Users, teams and roles through the CLI against a real server process (no Flink needed): an admin
sets up a team, users log in with their passwords, each role's allowed and refused commands, the audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streampilot.flink.local import free_port
from tests.e2e.test_server_and_cli import wait_http

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "streampilot"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "STREAMPILOT_HOME": str(home),
        "STREAMPILOT_PORT": str(port),
        "STREAMPILOT_DATABASE_URL": f"sqlite:///{tmp_path / 'sp.db'}",
        "XDG_CONFIG_HOME": str(tmp_path / "admin-config"),
    }
    env.pop("STREAMPILOT_TOKEN", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([*CLI, "server", "--no-local-cluster", "--no-example"], env=env, stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", 60)
        yield env
    finally:
        proc.terminate()
        proc.wait(30)


def run(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    else:
        assert proc.returncode != 0, proc.stdout
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def as_user(env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another person on this machine: their own config folder, no admin token."""
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / f"{name}-config"), "STREAMPILOT_HOME": str(tmp_path / name)}


def test_roles_through_the_cli(server: dict[str, str], tmp_path: Path) -> None:
    admin = server
    run(admin, "team", "add", "payments", "--description", "money in, money out")
    run(admin, "team", "add", "search")
    for user in ("dana", "vera", "sam"):
        run(admin, "user", "add", user, "--password-stdin", stdin=f"{user}-secret-pw\n")
    run(admin, "team", "add-member", "payments", "dana", "developer")
    run(admin, "team", "add-member", "payments", "vera", "viewer")
    run(admin, "team", "add-member", "search", "sam", "owner")
    shown = run(admin, "team", "show", "payments").stdout
    assert "dana" in shown and "developer" in shown and "vera" in shown and "viewer" in shown

    dana, vera, sam = (as_user(admin, tmp_path, n) for n in ("dana", "vera", "sam"))
    refused = run(dana, "whoami", ok=False)
    assert "streampilot login" in refused.stderr
    run(dana, "login", "--user", "dana", "--password-stdin", stdin="wrong-password\n", ok=False)
    said = run(dana, "login", "--user", "dana", "--password-stdin", stdin="dana-secret-pw\n").stdout
    assert "logged in as dana" in said
    token_file = tmp_path / "dana-config" / "streampilot" / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert "payments: developer" in run(dana, "whoami").stdout
    run(vera, "login", "--user", "vera", "--password-stdin", stdin="vera-secret-pw\n")
    run(sam, "login", "--user", "sam", "--password-stdin", stdin="sam-secret-pw\n")

    # A viewer may read but not create; a developer may; another team sees nothing of it.
    refused = run(vera, "variable", "set", "region", "eu-west-1", ok=False)
    assert "vera may not create variables" in refused.stderr and "developer role" in refused.stderr
    run(dana, "variable", "set", "region", "eu-west-1", "--team", "payments")
    assert "eu-west-1" in run(vera, "variable", "list").stdout
    assert "region" not in run(sam, "variable", "list").stdout
    # Platform-level commands are an admin's; a team's members are managed by its owner.
    refused = run(dana, "team", "add", "rogue", ok=False)
    assert "only a platform admin" in refused.stderr
    refused = run(dana, "team", "add-member", "payments", "sam", "viewer", ok=False)
    assert "owner role" in refused.stderr
    run(sam, "team", "add-member", "search", "dana", "viewer")

    # The audit log says who did it.
    trail = run(dana, "audit", "--kind", "variable").stdout
    assert "dana" in trail and "create" in trail and "region" in trail
    assert "region" not in run(sam, "audit", "--kind", "variable").stdout

    # Tokens: made for a script, shown once, revoked.
    secret = run(dana, "token", "create", "ci", "--expires-days", "7").stdout.strip()
    script = {**dana, "STREAMPILOT_TOKEN": secret}
    assert "dana" in run(script, "whoami").stdout
    listed = run(dana, "token", "list", "-o", "json").stdout
    assert '"ci"' in listed and secret not in listed
    tokens = json.loads(listed)
    run(dana, "token", "revoke", str(next(t["id"] for t in tokens if t["name"] == "ci")))
    refused = run(script, "whoami", ok=False)
    assert "invalid or expired API token" in refused.stderr
    run(dana, "logout")
    assert not token_file.exists()
