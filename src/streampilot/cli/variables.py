"""``streampilot variable ...``: values for ``${name}`` in apps' SQL, properties and args."""

from __future__ import annotations

from typing import Any

import click

from streampilot.cli import main
from streampilot.cli.client import Api, console, emit, fail, output_option, team_ref


def _find(api: Api, name: str) -> dict[str, Any]:
    for v in api.call("GET", "/variables"):
        if v["name"] == name:
            return dict(v)
    fail(f"no variable named {name!r}; see 'streampilot variable list'")


@main.group()
def variable() -> None:
    """Variables: ${name} in apps' SQL, properties and args, resolved when a job is submitted."""


@variable.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--secret", is_flag=True, help="Store it encrypted; it is never shown again and masked where used.")
@click.option("--description", default=None)
@click.option("--team", default=None, help="The owning team of a new variable (default: your only team).")
def variable_set(name: str, value: str | None, secret: bool, description: str | None, team: str | None) -> None:
    """Create or change a variable. Without VALUE it is asked for (hidden for a secret), so that a
    password stays out of the shell's history."""
    if value is None:
        value = click.prompt(f"value of {name}", hide_input=secret)
    api = Api()
    existing = [v for v in api.call("GET", "/variables") if v["name"] == name]
    if existing:
        body: dict[str, Any] = {"value": value, "secret": secret or existing[0]["secret"]}
        if description is not None:
            body["description"] = description
        api.call("PATCH", f"/variables/{existing[0]['id']}", json=body)
        console.print(f"variable {name} changed")
    else:
        body = {"name": name, "value": value, "secret": secret, "description": description or ""}
        body["team_id"] = team_ref(api, team) if team else None
        api.call("POST", "/variables", json=body)
        console.print(f"variable {name} created")


@variable.command("list")
@output_option
def variable_list(output: str) -> None:
    """List variables (a secret's value is never shown)."""
    emit(
        Api().call("GET", "/variables"),
        output,
        [
            ("name", lambda v: v["name"]),
            ("value", lambda v: "(secret)" if v["secret"] else v["value"]),
            ("description", lambda v: v["description"]),
        ],
    )


@variable.command("delete")
@click.argument("name")
def variable_delete(name: str) -> None:
    """Delete a variable that no app's current version uses."""
    api = Api()
    api.call("DELETE", f"/variables/{_find(api, name)['id']}")
    console.print(f"variable {name} deleted")


@main.group()
def secrets() -> None:
    """The key that seals stored secrets (variables, alert channels)."""


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Seal every stored secret with a new key and drop the old one (back up the new secret.key)."""
    done = Api().call("POST", "/secrets/rotate")
    console.print(
        f"new key in use: {done['variables']} variable(s) and {done['channels']} alert channel(s) sealed again; "
        "back up STREAMPILOT_HOME/secret.key with the database"
    )
