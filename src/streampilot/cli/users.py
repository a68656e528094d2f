"""``streampilot login / whoami / user / team / token / audit``: people, teams and who did what."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from streampilot.cli import main
from streampilot.cli.client import Api, console, emit, fail, login_file, output_option, team_ref


def _password(prompt: str, from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _user_id(api: Api, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    for u in api.call("GET", "/users"):
        if u["name"] == ref:
            return int(u["id"])
    fail(f"no user named {ref!r}; see 'streampilot user list'")


def _team_id(api: Api, ref: str) -> int:
    return team_ref(api, ref)


# ---- logging in -------------------------------------------------------------------------------
@main.command()
@click.option("--user", "-u", "name", required=True, help="Your user name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--expires-days", type=int, default=30, show_default=True, help="The new token's lifetime.")
def login(name: str, password_stdin: bool, expires_days: int) -> None:
    """Log in with your password: a personal token for this machine, kept 0600 in your config folder."""
    password = _password("password", password_stdin)
    made = Api(anonymous=True).call(
        "POST", "/login", json={"name": name, "password": password, "expires_in_days": expires_days}
    )
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(made["token"] + "\n")
    console.print(f"logged in as {name}; token {made['name']!r} saved in {path} (expires {made['expires_at']})")


@main.command()
def logout() -> None:
    """Revoke the token of 'streampilot login' and forget it."""
    path = login_file()
    if not path.exists():
        fail("not logged in (no token from 'streampilot login')")
    api = Api(path.read_text().strip())
    me = api.call("GET", "/me")
    mine = [t for t in api.call("GET", "/me/tokens") if t["last_used_at"] is not None]
    newest = max(mine, key=lambda t: t["last_used_at"], default=None)
    if newest is not None:
        api.call("DELETE", f"/me/tokens/{newest['id']}")
    path.unlink()
    console.print(f"logged out {me['name']}")


@main.command()
@output_option
def whoami(output: str) -> None:
    """Who the CLI acts as, and your role in each team."""
    api = Api()
    me = api.call("GET", "/me")
    if output != "table":
        emit(me, output)
        return
    names = {t["id"]: t["name"] for t in api.call("GET", "/teams")}
    console.print(f"{me['name']}{' (platform admin)' if me['admin'] else ''}")
    for t in me["teams"]:
        console.print(f"  {names.get(t['team_id'], t['team_id'])}: {t['role']}")


# ---- users ------------------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Users (platform admins create, disable and delete them)."""


@user.command("list")
@output_option
def user_list(output: str) -> None:
    emit(
        Api().call("GET", "/users"),
        output,
        [
            ("id", lambda u: u["id"]),
            ("name", lambda u: u["name"]),
            ("admin", lambda u: "yes" if u["admin"] else ""),
            ("source", lambda u: u["source"]),
            ("disabled", lambda u: "yes" if u["disabled"] else ""),
        ],
    )


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A platform admin: every team, users and teams.")
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-password", is_flag=True, help="No password: the user works with tokens only.")
def user_add(name: str, admin: bool, email: str | None, password_stdin: bool, no_password: bool) -> None:
    """Create a user (asks for the password)."""
    password = None if no_password else _password(f"password for {name}", password_stdin, confirm=True)
    made = Api().call("POST", "/users", json={"name": name, "password": password, "admin": admin, "email": email})
    console.print(f"user {made['name']} created (id {made['id']})")


@user.command("passwd")
@click.argument("name", required=False)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def user_passwd(name: str | None, password_stdin: bool) -> None:
    """Change your password (or, as an admin, NAME's)."""
    api = Api()
    user_id = _user_id(api, name) if name else int(api.call("GET", "/me")["id"])
    password = _password("new password", password_stdin, confirm=True)
    api.call("PATCH", f"/users/{user_id}", json={"password": password})
    console.print("password changed")


@user.command("disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable a user: their tokens and console sessions stop working."""
    api = Api()
    api.call("PATCH", f"/users/{_user_id(api, name)}", json={"disabled": True})
    console.print(f"user {name} disabled")


@user.command("enable")
@click.argument("name")
def user_enable(name: str) -> None:
    api = Api()
    api.call("PATCH", f"/users/{_user_id(api, name)}", json={"disabled": False})
    console.print(f"user {name} enabled")


@user.command("delete")
@click.argument("name")
def user_delete(name: str) -> None:
    api = Api()
    api.call("DELETE", f"/users/{_user_id(api, name)}")
    console.print(f"user {name} deleted")


# ---- teams ------------------------------------------------------------------------------------
@main.group()
def team() -> None:
    """Teams own apps, clusters, alert channels, variables and jars; members have a role in each."""


@team.command("list")
@output_option
def team_list(output: str) -> None:
    """Your teams (a platform admin: all)."""
    emit(
        Api().call("GET", "/teams"),
        output,
        [("id", lambda t: t["id"]), ("name", lambda t: t["name"]), ("description", lambda t: t["description"])],
    )


@team.command("add")
@click.argument("name")
@click.option("--description", default="")
def team_add(name: str, description: str) -> None:
    """Create a team (platform admins)."""
    made = Api().call("POST", "/teams", json={"name": name, "description": description})
    console.print(f"team {made['name']} created (id {made['id']})")


@team.command("show")
@click.argument("team")
@output_option
def team_show(team: str, output: str) -> None:
    """A team's members and their roles."""
    api = Api()
    found = api.call("GET", f"/teams/{_team_id(api, team)}")
    emit(found["members"], output, [("user", lambda m: m["name"]), ("role", lambda m: m["role"])])


@team.command("add-member")
@click.argument("team")
@click.argument("user_ref", metavar="USER")
@click.argument("role", type=click.Choice(["owner", "developer", "operator", "viewer"]))
def team_add_member(team: str, user_ref: str, role: str) -> None:
    """Add USER to TEAM with ROLE, or change their role (team owners and platform admins)."""
    api = Api()
    body = {"user_id": _user_id(api, user_ref), "role": role}
    m = api.call("POST", f"/teams/{_team_id(api, team)}/members", json=body)
    console.print(f"{m['name']} is {m['role']} in {team}")


@team.command("remove-member")
@click.argument("team")
@click.argument("user_ref", metavar="USER")
def team_remove_member(team: str, user_ref: str) -> None:
    api = Api()
    api.call("DELETE", f"/teams/{_team_id(api, team)}/members/{_user_id(api, user_ref)}")
    console.print(f"{user_ref} removed from {team}")


# ---- personal tokens --------------------------------------------------------------------------
@main.group()
def token() -> None:
    """Personal API tokens: named, expiring, revocable, shown once."""


def _tokens_path(api: Api, user_ref: str | None) -> str:
    return f"/users/{_user_id(api, user_ref)}/tokens" if user_ref else "/me/tokens"


@token.command("list")
@click.option("--user", "user_ref", default=None, help="Another user's tokens (platform admins).")
@output_option
def token_list(user_ref: str | None, output: str) -> None:
    api = Api()
    emit(
        api.call("GET", _tokens_path(api, user_ref)),
        output,
        [
            ("id", lambda t: t["id"]),
            ("name", lambda t: t["name"]),
            ("expires", lambda t: t["expires_at"]),
            ("last used", lambda t: t["last_used_at"]),
        ],
    )


@token.command("create")
@click.argument("name")
@click.option("--expires-days", type=int, default=None, help="Lifetime in days (default: no expiry).")
@click.option("--user", "user_ref", default=None, help="For another user (platform admins).")
def token_create(name: str, expires_days: int | None, user_ref: str | None) -> None:
    """Create a token and print it: it is shown this once."""
    api = Api()
    made = api.call("POST", _tokens_path(api, user_ref), json={"name": name, "expires_in_days": expires_days})
    click.echo(made["token"])


@token.command("revoke")
@click.argument("token_id", type=int)
@click.option("--user", "user_ref", default=None, help="Another user's token (platform admins).")
def token_revoke(token_id: int, user_ref: str | None) -> None:
    api = Api()
    api.call("DELETE", f"{_tokens_path(api, user_ref)}/{token_id}")
    console.print(f"token {token_id} revoked")


# ---- audit ------------------------------------------------------------------------------------
@main.command()
@click.option("--app", "app_ref", default=None, help="Events of one application (id or name).")
@click.option("--actor", default=None, help="Events by one user.")
@click.option("--kind", "object_kind", default=None, help="app, cluster, alert_channel, variable, jar, team, user")
@click.option("--action", default=None, help="create, update, delete, start, stop, ...")
@click.option("--limit", type=int, default=50, show_default=True)
@output_option
def audit(
    app_ref: str | None, actor: str | None, object_kind: str | None, action: str | None, limit: int, output: str
) -> None:
    """Who changed or operated what, newest first (your teams; a platform admin: all)."""
    from streampilot.cli.client import _ref

    api = Api()
    params: dict[str, Any] = {"limit": limit}
    if app_ref:
        params.update(object_kind="app", object_id=_ref(api, app_ref))
    for key, value in (("actor", actor), ("object_kind", object_kind), ("action", action)):
        if value:
            params[key] = value
    emit(
        api.call("GET", "/audit", params=params),
        output,
        [
            ("at", lambda e: str(e["at"])[:19].replace("T", " ")),
            ("actor", lambda e: e["actor"]),
            ("from", lambda e: e["client"]),
            ("action", lambda e: e["action"]),
            ("object", lambda e: f"{e['object_kind']} {e['object_name'] or e['object_id'] or ''}".strip()),
            ("change", lambda e: ", ".join(sorted(e["diff"]))),
        ],
    )
