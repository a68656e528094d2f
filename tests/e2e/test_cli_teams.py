"""Users, teams and roles through the CLI (a process of its own, over HTTP; the platform runs with the
fake target, so apps start without Flink): an admin sets up a team, users log in with their passwords,
each role's allowed and refused commands, the audit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streampilot.services.platform import Platform
from streampilot.store.orm import Cluster
from streampilot.targets.fake import KIND, FakeFleet
from tests.helpers import DATAGEN_SQL, serving
from tests.services.conftest import open_platform

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "streampilot"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[dict[str, str], Platform]]:
    """The platform in this process (fake target: apps start without Flink) behind a real HTTP port."""
    platform = await open_platform(tmp_path / "home", FakeFleet())
    platform.start_loops()
    async with serving(platform) as base:
        env = {
            **os.environ,
            "STREAMPILOT_HOME": str(platform.settings.home),
            "STREAMPILOT_URL": base,
            "XDG_CONFIG_HOME": str(tmp_path / "admin-config"),
        }
        env.pop("STREAMPILOT_TOKEN", None)
        yield env, platform
    await platform.stop_loops()
    await platform.close()


async def run(
    env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it (a process of its own; the server answers on this test's loop)."""
    proc = await asyncio.to_thread(
        subprocess.run, [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    else:
        assert proc.returncode != 0, proc.stdout
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def as_user(env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another person on this machine: their own config folder, no admin token."""
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / f"{name}-config"), "STREAMPILOT_HOME": str(tmp_path / name)}


async def test_roles_through_the_cli(server: tuple[dict[str, str], Platform], tmp_path: Path) -> None:
    admin, platform = server
    await run(admin, "team", "add", "payments", "--description", "money in, money out")
    await run(admin, "team", "add", "search")
    for user in ("dana", "vera", "sam", "oscar"):
        await run(admin, "user", "add", user, "--password-stdin", stdin=f"{user}-secret-pw\n")
    await run(admin, "team", "add-member", "payments", "dana", "developer")
    await run(admin, "team", "add-member", "payments", "vera", "viewer")
    await run(admin, "team", "add-member", "payments", "oscar", "operator")
    await run(admin, "team", "add-member", "search", "sam", "owner")
    shown = (await run(admin, "team", "show", "payments")).stdout
    assert "dana" in shown and "developer" in shown and "vera" in shown and "viewer" in shown

    dana, vera, sam, oscar = (as_user(admin, tmp_path, n) for n in ("dana", "vera", "sam", "oscar"))
    refused = await run(dana, "whoami", ok=False)
    assert "streampilot login" in refused.stderr
    await run(dana, "login", "--user", "dana", "--password-stdin", stdin="wrong-password\n", ok=False)
    said = (await run(dana, "login", "--user", "dana", "--password-stdin", stdin="dana-secret-pw\n")).stdout
    assert "logged in as dana" in said
    token_file = tmp_path / "dana-config" / "streampilot" / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert "payments: developer" in (await run(dana, "whoami")).stdout
    await run(vera, "login", "--user", "vera", "--password-stdin", stdin="vera-secret-pw\n")
    await run(sam, "login", "--user", "sam", "--password-stdin", stdin="sam-secret-pw\n")
    await run(oscar, "login", "--user", "oscar", "--password-stdin", stdin="oscar-secret-pw\n")

    # Apps: the developer creates one, the operator starts and stops it but may not change it, the
    # viewer may do neither.
    payments = next(t.id for t in await platform.teams.list_teams() if t.name == "payments")
    async with platform.ctx.sessions() as s, s.begin():
        cluster = Cluster(team_id=payments, name="payments-flink", kind=KIND, rest_url=None, options={})
        s.add(cluster)
    spec = tmp_path / "orders.yaml"
    spec.write_text(json.dumps({"name": "orders", "cluster_id": cluster.id, "kind": "sql", "sql": DATAGEN_SQL}))
    refused = await run(oscar, "app", "create", "-f", str(spec), ok=False)
    assert "developer role" in refused.stderr
    await run(dana, "app", "create", "-f", str(spec))
    refused = await run(vera, "app", "start", "orders", ok=False)
    assert "vera is viewer" in refused.stderr and "operator role" in refused.stderr
    await run(oscar, "app", "start", "orders")
    assert "RUNNING" in (await run(vera, "app", "show", "orders", "-o", "json")).stdout
    refused = await run(oscar, "app", "update", "orders", "-f", str(spec), ok=False)
    assert "oscar is operator" in refused.stderr
    await run(oscar, "app", "stop", "orders", "--no-savepoint")
    assert "orders" not in (await run(sam, "app", "list")).stdout  # another team's

    # A viewer may read but not create; a developer may; another team sees nothing of it.
    refused = await run(vera, "variable", "set", "region", "eu-west-1", ok=False)
    assert "vera may not create variables" in refused.stderr and "developer role" in refused.stderr
    await run(dana, "variable", "set", "region", "eu-west-1", "--team", "payments")
    assert "eu-west-1" in (await run(vera, "variable", "list")).stdout
    assert "region" not in (await run(sam, "variable", "list")).stdout
    # Platform-level commands are an admin's; a team's members are managed by its owner.
    refused = await run(dana, "team", "add", "rogue", ok=False)
    assert "only a platform admin" in refused.stderr
    refused = await run(dana, "team", "add-member", "payments", "sam", "viewer", ok=False)
    assert "owner role" in refused.stderr
    await run(sam, "team", "add-member", "search", "dana", "viewer")

    # The audit log says who did it.
    trail = (await run(dana, "audit", "--kind", "variable")).stdout
    assert "dana" in trail and "create" in trail and "region" in trail
    assert "region" not in (await run(sam, "audit", "--kind", "variable")).stdout

    # Tokens: made for a script, shown once, revoked.
    secret = (await run(dana, "token", "create", "ci", "--expires-days", "7")).stdout.strip()
    script = {**dana, "STREAMPILOT_TOKEN": secret}
    assert "dana" in (await run(script, "whoami")).stdout
    listed = (await run(dana, "token", "list", "-o", "json")).stdout
    assert '"ci"' in listed and secret not in listed
    tokens = json.loads(listed)
    await run(dana, "token", "revoke", str(next(t["id"] for t in tokens if t["name"] == "ci")))
    refused = await run(script, "whoami", ok=False)
    assert "invalid or expired API token" in refused.stderr
    await run(dana, "logout")
    assert not token_file.exists()
