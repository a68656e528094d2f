"""``streampilot app ...`` and ``streampilot operation ...``: applications and their operations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from streampilot.cli import main
from streampilot.cli.client import (
    Api,
    Column,
    _ref,
    console,
    emit,
    fail,
    follow,
    output_option,
    post_operation,
)


@main.group()
def app() -> None:
    """Applications."""


def _app_file_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "-f", "--file", "file", type=click.Path(exists=True, dir_okay=False), required=True, help=help_text
    )


@app.command("create")
@_app_file_option("YAML file with the application (name, kind, cluster_id, sql|jar_id|python, ...).")
def app_create(file: str) -> None:
    """Create an application from a YAML file."""
    created = Api().call("POST", "/apps", json=_app_file(file))
    console.print(f"created application [bold]{created['name']}[/bold] (id {created['id']}, version 1)")


def _app_file(file: str) -> dict[str, Any]:
    """An application's fields from YAML; ``sql_file``/``python_file`` are read relative to it."""
    try:
        body = yaml.safe_load(Path(file).read_text())
    except yaml.YAMLError as exc:
        fail(f"{file} is not valid YAML: {exc}")
    if not isinstance(body, dict):
        fail(f"{file} must hold a mapping of application fields")
    base = Path(file).parent
    for key in ("sql", "python"):
        ref = body.pop(f"{key}_file", None)
        if ref:
            try:
                body[key] = (base / ref).read_text()
            except OSError as exc:
                fail(f"{key}_file {ref}: {exc.strerror or exc}")
    return body


@app.command("update")
@click.argument("ref")
@_app_file_option("YAML file with the fields to change (the same fields as for create).")
def app_update(ref: str, file: str) -> None:
    """Edit an application: a change makes a new version (a running job keeps its version)."""
    api = Api()
    app_id = _ref(api, ref)
    changed = api.call("PATCH", f"/apps/{app_id}", json=_app_file(file))
    console.print(
        f"{changed['name']} is at version {changed['current_version']}"
        + (f"; running version {changed['running_version']}" if changed["running_version"] else "")
    )


def _tasks(st: dict[str, Any]) -> str | None:
    return f"{st['tasks_running']}/{st['tasks_total']}" if st["tasks_total"] is not None else None


@app.command("list")
@output_option
def app_list(output: str) -> None:
    """List applications with their state."""
    emit(
        Api().call("GET", "/apps"),
        output,
        [
            ("id", lambda a: a["id"]),
            ("name", lambda a: a["name"]),
            ("kind", lambda a: a["kind"]),
            ("state", lambda a: a["status"]["state"] + (" (unconfirmed)" if a["status"]["unconfirmed_since"] else "")),
            ("job state", lambda a: a["status"]["job_state"]),
            ("tasks", lambda a: _tasks(a["status"])),
            ("job id", lambda a: a["status"]["job_id"]),
            ("verified", lambda a: {True: "yes", False: "NO", None: "-"}[a["status"]["config_verified"]]),
        ],
    )


@app.command("show")
@click.argument("ref")
@output_option
def app_show(ref: str, output: str) -> None:
    """Show one application (id or name); the table output is JSON, as the fields nest."""
    api = Api()
    emit(api.call("GET", f"/apps/{_ref(api, ref)}"), output)


@app.command("start")
@click.argument("ref")
@click.option("--restore", default="none", show_default=True, help='"none", "latest" or a savepoint path.')
@click.option("--allow-non-restored-state", is_flag=True)
@click.option("--version", "version", type=int, default=None, help="Version to run (default: current).")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once instead of waiting for RUNNING.")
def app_start(ref: str, restore: str, allow_non_restored_state: bool, version: int | None, no_wait: bool) -> None:
    """Start an application and wait until it runs."""
    api = Api()
    app_id = _ref(api, ref)
    body: dict[str, Any] = {"restore": restore, "allow_non_restored_state": allow_non_restored_state}
    if version:
        body["version"] = version
    op = follow(api, post_operation(api, f"/apps/{app_id}/start", body), no_wait)
    a = api.call("GET", f"/apps/{app_id}")
    state = (op["result"] or {}).get("state", a["status"]["state"])
    if state == "RUNNING":
        console.print(f"{a['name']} is RUNNING (job {a['status']['job_id']})")
    else:
        console.print(f"{a['name']} is {state} (job {a['status']['job_id']}); the platform keeps watching it")


@app.command("stop")
@click.argument("ref")
@click.option("--no-savepoint", is_flag=True, help="Cancel without a savepoint.")
@click.option("--drain", is_flag=True, help="Drain the pipeline (emit final watermark) before stopping.")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once.")
def app_stop(ref: str, no_savepoint: bool, drain: bool, no_wait: bool) -> None:
    """Stop an application, with a savepoint unless --no-savepoint."""
    api = Api()
    app_id = _ref(api, ref)
    op = follow(
        api, post_operation(api, f"/apps/{app_id}/stop", {"savepoint": not no_savepoint, "drain": drain}), no_wait
    )
    result = op["result"] or {}
    a = api.call("GET", f"/apps/{app_id}")
    where = f"; savepoint {result['savepoint']}" if result.get("savepoint") else ""
    console.print(f"{a['name']} is {result.get('state', a['status']['state'])}{where}")


@app.command("upgrade")
@click.argument("ref")
@click.option("--version", "version", type=int, default=None, help="Version to run (default: current).")
@click.option("--drain", is_flag=True, help="Session clusters: drain the pipeline before the savepoint.")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once.")
def app_upgrade(ref: str, version: int | None, drain: bool, no_wait: bool) -> None:
    """Run another version of a running application, keeping its state (savepoint and restore)."""
    api = Api()
    app_id = _ref(api, ref)
    body: dict[str, Any] = {"drain": drain}
    if version:
        body["version"] = version
    follow(api, post_operation(api, f"/apps/{app_id}/upgrade", body), no_wait)
    a = api.call("GET", f"/apps/{app_id}")
    console.print(
        f"{a['name']} runs version {a['running_version']} (job {a['status']['job_id']}, {a['status']['state']})"
    )


@app.command("cancel")
@click.argument("ref")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once.")
def app_cancel(ref: str, no_wait: bool) -> None:
    """Cancel an application's job."""
    api = Api()
    app_id = _ref(api, ref)
    op = follow(api, post_operation(api, f"/apps/{app_id}/cancel"), no_wait)
    console.print(f"{api.call('GET', f'/apps/{app_id}')['name']} is {(op['result'] or {}).get('state', '?')}")


@app.command("savepoint")
@click.argument("ref")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once.")
def app_savepoint(ref: str, no_wait: bool) -> None:
    """Trigger a savepoint and print its path (alone on standard output, for scripts)."""
    api = Api()
    op = follow(api, post_operation(api, f"/apps/{_ref(api, ref)}/savepoints"), no_wait)
    click.echo(op["result"]["path"])


@app.command("explain")
@click.argument("ref")
@click.option("--version", type=int, default=None, help="Explain this version (default: the current one).")
def app_explain(ref: str, version: int | None) -> None:
    """Print Flink's plan of a SQL app's script (syntax tree, physical and execution plan); runs nothing."""
    api = Api()
    params = {"version": version} if version else None
    click.echo(api.call("POST", f"/apps/{_ref(api, ref)}/explain", params=params)["plan"])


@app.command("operations")
@click.argument("ref")
@output_option
def app_operations(ref: str, output: str) -> None:
    """An application's operations, newest first."""
    api = Api()
    emit(api.call("GET", f"/apps/{_ref(api, ref)}/operations"), output, OPERATION_COLUMNS)


OPERATION_COLUMNS: list[Column] = [
    ("id", lambda o: o["id"]),
    ("verb", lambda o: o["verb"]),
    ("state", lambda o: o["state"]),
    ("by", lambda o: o["actor"] or o["cause"]),
    ("created (UTC)", lambda o: o["created_at"][:19].replace("T", " ")),
    ("last step", lambda o: o["steps"][-1]["text"] if o["steps"] else None),
]


@main.group()
def operation() -> None:
    """Operations: lifecycle verbs and their steps."""


@operation.command("show")
@click.argument("op_id", type=int)
@output_option
def operation_show(op_id: int, output: str) -> None:
    """Show an operation with its steps."""
    op = Api().call("GET", f"/operations/{op_id}")
    if output != "table":
        emit(op, output)
        return
    emit([op], output, OPERATION_COLUMNS[:5])
    emit(op["steps"], output, [("at (UTC)", lambda s: s["at"][:23].replace("T", " ")), ("step", lambda s: s["text"])])
    if op["error"]:
        console.print(f"error: {op['error']}", highlight=False, markup=False)
    if op["result"]:
        console.print(f"result: {json.dumps(op['result'])}", highlight=False, markup=False)


@operation.command("wait")
@click.argument("op_id", type=int)
def operation_wait(op_id: int) -> None:
    """Follow an operation until it ends; exit 1 if it failed."""
    api = Api()
    op = follow(api, api.call("GET", f"/operations/{op_id}"), False)
    console.print(f"operation {op_id} ({op['verb']}) {op['state']}")


@app.command("events")
@click.argument("ref")
@output_option
def app_events(ref: str, output: str) -> None:
    """Show an application's timeline."""
    api = Api()
    emit(
        api.call("GET", f"/apps/{_ref(api, ref)}/events"),
        output,
        [
            ("time (UTC)", lambda e: e["at"][:23].replace("T", " ")),
            ("from", lambda e: e["from_state"]),
            ("to", lambda e: e["to_state"]),
            ("cause", lambda e: e["cause"]),
            ("detail", lambda e: e["detail"]),
        ],
    )


@app.command("versions")
@click.argument("ref")
@click.option("--diff", nargs=2, type=int, default=None, help="Show the diff between two versions.")
@output_option
def app_versions(ref: str, diff: tuple[int, int] | None, output: str) -> None:
    """List an application's versions, or diff two of them."""
    api = Api()
    app_id = _ref(api, ref)
    if diff:
        console.print(
            api.call("GET", f"/apps/{app_id}/versions/diff", params={"a": diff[0], "b": diff[1]})["diff"]
            or "(no difference)",
            highlight=False,
        )
        return
    emit(
        api.call("GET", f"/apps/{app_id}/versions"),
        output,
        [
            ("version", lambda v: v["version"]),
            ("created (UTC)", lambda v: str(v["created_at"])[:19]),
            ("kind", lambda v: v["spec"]["kind"]),
            ("parallelism", lambda v: v["spec"]["parallelism"]),
        ],
    )


@app.command("attach")
@click.argument("ref")
@click.argument("job_id")
def app_attach(ref: str, job_id: str) -> None:
    """Attach an application to a job already running on its cluster."""
    api = Api()
    a = api.call("POST", f"/apps/{_ref(api, ref)}/attach", json={"job_id": job_id})
    console.print(f"{a['name']} now owns job {a['status']['job_id']} ({a['status']['state']})")
