"""The ``streampilot`` command: the server, and a client of the REST API for everything else.

Errors are one clear line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
import yaml
from rich.console import Console
from rich.table import Table

from streampilot.settings import Settings, SettingsError


def _console(stderr: bool = False) -> Console:
    """A terminal gets rich output; a pipe or file gets every value whole: never wrapped or cut."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=100_000, soft_wrap=True, no_color=True, highlight=False)


console = _console()
err = _console(stderr=True)
OUTPUTS = ("table", "json", "yaml")

ACTIVE = {"STARTING", "RUNNING", "RESTARTING", "FAILING", "STOPPING"}


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


def output_option(f: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(OUTPUTS),
        default="table",
        show_default=True,
        help="table for people; json or yaml for scripts (every field, nothing cut).",
    )(f)


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def emit(data: Any, output: str, columns: list[Column] | None = None) -> None:
    """Print API data as a table (the given columns), or whole as JSON or YAML."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
        return
    if columns is None:
        console.print_json(json.dumps(data, default=str))
        return
    table = Table(*(name for name, _ in columns))
    for row in data:
        table.add_row(*("-" if (v := get(row)) is None or v == "" else str(v) for _, get in columns))
    console.print(table)


# ---- server --------------------------------------------------------------------------------


@click.group()
def main() -> None:
    """streampilot: run, watch and heal Apache Flink applications."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1 or STREAMPILOT_HOST).")
@click.option("--port", type=int, default=None, help="Port (default 8765 or STREAMPILOT_PORT).")
@click.option("--no-example", is_flag=True, help="Do not create and start the example app on first start.")
@click.option("--no-local-cluster", is_flag=True, help="Do not start a local Flink cluster.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="debug adds every HTTP call (default info or STREAMPILOT_LOG_LEVEL).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="json: one JSON object per line (default text or STREAMPILOT_LOG_FORMAT).",
)
def server(
    host: str | None,
    port: int | None,
    no_example: bool,
    no_local_cluster: bool,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Run the platform: database, local Flink cluster, REST API and console."""
    from streampilot.server import serve
    from streampilot.settings import LogSettings

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
    if log_level or log_format:
        log = settings.log
        settings = settings.with_(
            log=LogSettings(level=log_level or log.level, format=log_format or log.format)
        )
    try:
        serve(settings, host=host, port=port, example=not no_example, local_cluster=not no_local_cluster)
    except KeyboardInterrupt:
        pass


# ---- client --------------------------------------------------------------------------------


class Api:
    def __init__(self) -> None:
        settings = Settings.from_env()
        self.url = os.environ.get("STREAMPILOT_URL", f"http://{settings.host}:{settings.port}")
        token = os.environ.get("STREAMPILOT_TOKEN")
        if not token:
            try:
                token = settings.token_file.read_text().strip()
            except OSError:
                fail(f"no API token: set STREAMPILOT_TOKEN or run the server once to create {settings.token_file}")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=300)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.http.request(method, f"/api/v1{path}", **kw)
        except httpx.HTTPError as exc:
            fail(f"cannot reach streampilot at {self.url}: {exc}")
        if resp.status_code >= 400:
            fail(_error_text(resp))
        return resp.json() if resp.content else None


def _error_text(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:300]}"
    if isinstance(detail, list):
        return _problem_text(detail)
    return str(detail)


def _problem_text(problems: list[dict[str, Any]]) -> str:
    parts = []
    for p in problems:
        where = p.get("field", "")
        if p.get("line"):
            where += f" (line {p['line']}" + (f", column {p['column']})" if p.get("column") else ")")
        parts.append(f"{where}: {p.get('message')}")
    return "; ".join(parts)


def _ref(api: Api, ref: str, collection: str = "apps") -> int:
    """The id of an application (or cluster) given by id or by name."""
    if ref.isdigit():
        return int(ref)
    for a in api.call("GET", f"/{collection}"):
        if a["name"] == ref:
            return int(a["id"])
    if collection == "apps":
        fail(f"no application named {ref!r}")
    fail(f"no cluster named {ref!r}; see 'streampilot cluster list'")


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


def follow(api: Api, op: dict[str, Any], no_wait: bool) -> dict[str, Any]:
    """Follow an operation to its end, its steps as a live line; ``--no-wait`` prints its id and stops."""
    if no_wait:
        click.echo(op["id"])
        sys.exit(0)
    seen = 0
    deadline = time.monotonic() + 3600
    with err.status(f"{op['verb']} (operation {op['id']}) ...") as status:
        while True:
            for step in op["steps"][seen:]:
                err.print(f"  {step['at'][11:19]} {step['text']}", highlight=False, markup=False)
                status.update(step["text"])
            seen = len(op["steps"])
            if op["state"] in ("succeeded", "failed"):
                break
            if time.monotonic() > deadline:
                fail(
                    f"operation {op['id']} is still {op['state']}; "
                    f"follow it with 'streampilot operation wait {op['id']}'"
                )
            time.sleep(0.3)
            op = api.call("GET", f"/operations/{op['id']}")
    if op["state"] == "failed":
        problems = op.get("problems")
        fail(_problem_text(problems) if problems else str(op["error"]))
    return op


def _post_operation(api: Api, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, dict[str, Any]] = api.call("POST", path, json=body)
    return answer["operation"]


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
    op = follow(api, _post_operation(api, f"/apps/{app_id}/start", body), no_wait)
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
        api, _post_operation(api, f"/apps/{app_id}/stop", {"savepoint": not no_savepoint, "drain": drain}), no_wait
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
    follow(api, _post_operation(api, f"/apps/{app_id}/upgrade", body), no_wait)
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
    op = follow(api, _post_operation(api, f"/apps/{app_id}/cancel"), no_wait)
    console.print(f"{api.call('GET', f'/apps/{app_id}')['name']} is {(op['result'] or {}).get('state', '?')}")


@app.command("savepoint")
@click.argument("ref")
@click.option("--no-wait", is_flag=True, help="Print the operation id at once.")
def app_savepoint(ref: str, no_wait: bool) -> None:
    """Trigger a savepoint and print its path (alone on standard output, for scripts)."""
    api = Api()
    op = follow(api, _post_operation(api, f"/apps/{_ref(api, ref)}/savepoints"), no_wait)
    click.echo(op["result"]["path"])


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


@main.group()
def jobs() -> None:
    """Flink jobs on known clusters."""


@jobs.command("unmanaged")
@output_option
def jobs_unmanaged(output: str) -> None:
    """List jobs running on known clusters that no application owns."""
    emit(
        Api().call("GET", "/jobs/unmanaged"),
        output,
        [
            ("cluster", lambda j: j["cluster"]),
            ("job id", lambda j: j["job_id"]),
            ("name", lambda j: j["name"]),
            ("state", lambda j: j["state"]),
            ("tasks", lambda j: f"{j['tasks_running']}/{j['tasks_total']}"),
        ],
    )


@main.group()
def cluster() -> None:
    """Flink clusters."""


@cluster.command("add")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(["local", "standalone", "kubernetes-application", "kubernetes-session"]), required=True
)
@click.option("--rest-url", default=None, help="REST address of a standalone cluster's JobManager.")
@click.option("--slots", type=int, default=None, help="Task slots (local clusters).")
@click.option(
    "--options-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML with a Kubernetes cluster's options (kubeconfig, namespace, image, ...).",
)
def cluster_add(name: str, kind: str, rest_url: str | None, slots: int | None, options_file: str | None) -> None:
    """Register a cluster."""
    options = None
    if options_file:
        try:
            options = yaml.safe_load(Path(options_file).read_text())
        except yaml.YAMLError as exc:
            fail(f"{options_file} is not valid YAML: {exc}")
    body = {"name": name, "kind": kind, "rest_url": rest_url, "slots": slots, "options": options}
    c = Api().call("POST", "/clusters", json=body)
    console.print(f"added cluster [bold]{c['name']}[/bold] (id {c['id']}, {c['kind']}, Flink {c['flink_version']})")


@cluster.command("start")
@click.argument("ref")
def cluster_start(ref: str) -> None:
    """Start a local cluster, or create a kubernetes-session cluster's session deployment."""
    _cluster_action(ref, "start", "started")


@cluster.command("stop")
@click.argument("ref")
def cluster_stop(ref: str) -> None:
    """Stop a local cluster, or delete the session deployment streampilot created."""
    _cluster_action(ref, "stop", "stopped")


def _cluster_action(ref: str, action: str, done: str) -> None:
    api = Api()
    with console.status(f"{action} ..."):
        c = api.call("POST", f"/clusters/{_ref(api, ref, 'clusters')}/{action}")
    console.print(f"cluster {c['name']} {done}")


@cluster.command("list")
@output_option
def cluster_list(output: str) -> None:
    """List clusters."""
    emit(
        Api().call("GET", "/clusters"),
        output,
        [
            ("id", lambda c: c["id"]),
            ("name", lambda c: c["name"]),
            ("kind", lambda c: c["kind"]),
            ("state", lambda c: c.get("state")),
            ("REST", lambda c: c["rest_url"]),
            ("Flink", lambda c: c["flink_version"]),
            ("kept running", lambda c: "yes" if c["desired_running"] else "no"),
        ],
    )


@main.group("flink-home")
def flink_home() -> None:
    """Flink distributions."""


@flink_home.command("list")
@output_option
def flink_home_list(output: str) -> None:
    """List registered Flink homes."""
    emit(
        Api().call("GET", "/flink-homes"),
        output,
        [
            ("id", lambda h: h["id"]),
            ("name", lambda h: h["name"]),
            ("version", lambda h: h["version"]),
            ("path", lambda h: h["path"]),
            ("bundled", lambda h: "yes" if h["bundled"] else ""),
        ],
    )


@main.command("sql-runner-jar")
@click.argument("output", type=click.Path(dir_okay=False, writable=True))
@click.option("--flink-home", default=None, help="Flink distribution to compile against (default: the bundled one).")
def sql_runner_jar(output: str, flink_home: str | None) -> None:
    """Build streampilot's SQL runner jar, for Kubernetes images (the cluster's options.sql_runner_uri).

    SQL apps on Kubernetes run this jar inside the image: copy it to /opt/flink/usrlib/ in your
    Dockerfile, next to nothing else (the statements arrive as the job's arguments).
    """
    import asyncio
    import shutil

    from streampilot.flink.homes import NotAFlinkHome, bundled_home_path, inspect_home
    from streampilot.flink.launch import LaunchError, RunnerBuilder

    path = Path(flink_home).expanduser() if flink_home else bundled_home_path()
    if path is None:
        fail("no Flink home: install apache-flink (make run does) or pass --flink-home /path/to/flink")
    try:
        home = inspect_home(path)
        settings = Settings.from_env()
        jar = asyncio.run(RunnerBuilder(settings.home / "runners").sql_runner(home))
        shutil.copyfile(jar, output)
    except (NotAFlinkHome, LaunchError, SettingsError, OSError) as exc:
        fail(str(exc))
    console.print(f"SQL runner for Flink {home.version} written to {output}")
