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

console = Console()
err = Console(stderr=True)

ACTIVE = {"STARTING", "RUNNING", "RESTARTING", "FAILING", "STOPPING"}


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


# ---- server --------------------------------------------------------------------------------


@click.group()
def main() -> None:
    """streampilot: run, watch and heal Apache Flink applications."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1 or STREAMPILOT_HOST).")
@click.option("--port", type=int, default=None, help="Port (default 8765 or STREAMPILOT_PORT).")
@click.option("--no-example", is_flag=True, help="Do not create and start the example app on first start.")
@click.option("--no-local-cluster", is_flag=True, help="Do not start a local Flink cluster.")
def server(host: str | None, port: int | None, no_example: bool, no_local_cluster: bool) -> None:
    """Run the platform: database, local Flink cluster, REST API and console."""
    from streampilot.server import serve

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))
    try:
        serve(settings, host=host, port=port, example=not no_example, local_cluster=not no_local_cluster)
    except KeyboardInterrupt:
        pass


# ---- client --------------------------------------------------------------------------------


class Api:
    def __init__(self) -> None:
        settings = Settings.from_env()
        self.url = os.environ.get("STREAMPILOT_URL", f"http://{settings.server.host}:{settings.server.port}")
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
        parts = []
        for p in detail:
            where = p.get("field", "")
            if p.get("line"):
                where += f" (line {p['line']}" + (f", column {p['column']})" if p.get("column") else ")")
            parts.append(f"{where}: {p.get('message')}")
        return "; ".join(parts)
    return str(detail)


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


@app.command("list")
def app_list() -> None:
    """List applications with their state."""
    rows = Api().call("GET", "/apps")
    table = Table("id", "name", "kind", "state", "job state", "tasks", "job id", "verified")
    table.columns[1].no_wrap = True
    for a in rows:
        st = a["status"]
        tasks = f"{st['tasks_running']}/{st['tasks_total']}" if st["tasks_total"] is not None else "-"
        state = st["state"] + (" (unconfirmed)" if st["unconfirmed_since"] else "")
        table.add_row(
            str(a["id"]),
            a["name"],
            a["kind"],
            state,
            st["job_state"] or "-",
            tasks,
            st["job_id"] or "-",
            {True: "yes", False: "NO", None: "-"}[st["config_verified"]],
        )
    console.print(table)


@app.command("show")
@click.argument("ref")
def app_show(ref: str) -> None:
    """Show one application (id or name) as JSON."""
    api = Api()
    console.print_json(json.dumps(api.call("GET", f"/apps/{_ref(api, ref)}")))


def _wait(api: Api, app_id: int, until: set[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    with console.status("waiting ...") as status:
        while time.monotonic() < deadline:
            a: dict[str, Any] = api.call("GET", f"/apps/{app_id}")
            st = a["status"]
            tasks = f"{st['tasks_running']}/{st['tasks_total']}"
            text = f"{a['name']}: {st['state']} (Flink: {st['job_state'] or '-'}, tasks {tasks})"
            if text != last:
                status.update(text)
                last = text
            if st["state"] in until:
                return a
            time.sleep(0.5)
    fail(f"gave up waiting after {timeout:.0f} s; last: {last}")


@app.command("start")
@click.argument("ref")
@click.option("--restore", default="none", show_default=True, help='"none", "latest" or a savepoint path.')
@click.option("--allow-non-restored-state", is_flag=True)
@click.option("--version", "version", type=int, default=None, help="Version to run (default: current).")
@click.option("--no-wait", is_flag=True, help="Return once submitted instead of waiting for RUNNING.")
def app_start(ref: str, restore: str, allow_non_restored_state: bool, version: int | None, no_wait: bool) -> None:
    """Start an application and wait until it runs."""
    api = Api()
    app_id = _ref(api, ref)
    body: dict[str, Any] = {"restore": restore, "allow_non_restored_state": allow_non_restored_state}
    if version:
        body["version"] = version
    a = api.call("POST", f"/apps/{app_id}/start", json=body)
    console.print(f"submitted job {a['status']['job_id']}")
    if no_wait:
        return
    a = _wait(api, app_id, {"RUNNING", "FAILED", "CANCELED", "FINISHED", "LOST"})
    state = a["status"]["state"]
    if state != "RUNNING":
        fail(f"{a['name']} ended {state}; see 'streampilot app events {a['name']}'")
    console.print(f"[green]{a['name']} is RUNNING[/green] (job {a['status']['job_id']})")


@app.command("stop")
@click.argument("ref")
@click.option("--no-savepoint", is_flag=True, help="Cancel without a savepoint.")
@click.option("--drain", is_flag=True, help="Drain the pipeline (emit final watermark) before stopping.")
def app_stop(ref: str, no_savepoint: bool, drain: bool) -> None:
    """Stop an application, with a savepoint unless --no-savepoint."""
    api = Api()
    app_id = _ref(api, ref)
    with console.status("stopping ..."):
        a = api.call("POST", f"/apps/{app_id}/stop", json={"savepoint": not no_savepoint, "drain": drain})
    console.print(f"{a['name']} is {a['status']['state']}")


@app.command("upgrade")
@click.argument("ref")
@click.option("--version", "version", type=int, default=None, help="Version to run (default: current).")
@click.option("--drain", is_flag=True, help="Session clusters: drain the pipeline before the savepoint.")
def app_upgrade(ref: str, version: int | None, drain: bool) -> None:
    """Run another version of a running application, keeping its state (savepoint and restore)."""
    api = Api()
    app_id = _ref(api, ref)
    body: dict[str, Any] = {"drain": drain}
    if version:
        body["version"] = version
    with console.status("upgrading ..."):
        a = api.call("POST", f"/apps/{app_id}/upgrade", json=body)
    a = _wait(api, app_id, {"RUNNING", "FAILED", "CANCELED", "FINISHED", "LOST"})
    if a["status"]["state"] != "RUNNING":
        fail(f"{a['name']} ended {a['status']['state']}; see 'streampilot app events {a['name']}'")
    console.print(f"[green]{a['name']} runs version {a['running_version']}[/green] (job {a['status']['job_id']})")


@app.command("cancel")
@click.argument("ref")
def app_cancel(ref: str) -> None:
    """Cancel an application's job."""
    api = Api()
    with console.status("canceling ..."):
        a = api.call("POST", f"/apps/{_ref(api, ref)}/cancel")
    console.print(f"{a['name']} is {a['status']['state']}")


@app.command("savepoint")
@click.argument("ref")
def app_savepoint(ref: str) -> None:
    """Trigger a savepoint and print its path."""
    api = Api()
    with console.status("taking a savepoint ..."):
        out = api.call("POST", f"/apps/{_ref(api, ref)}/savepoints")
    console.print(out["path"])


@app.command("events")
@click.argument("ref")
def app_events(ref: str) -> None:
    """Show an application's timeline."""
    api = Api()
    table = Table("time (UTC)", "from", "to", "cause", "detail")
    for e in api.call("GET", f"/apps/{_ref(api, ref)}/events"):
        table.add_row(e["at"][:23].replace("T", " "), e["from_state"] or "", e["to_state"], e["cause"], e["detail"])
    console.print(table)


@app.command("versions")
@click.argument("ref")
@click.option("--diff", nargs=2, type=int, default=None, help="Show the diff between two versions.")
def app_versions(ref: str, diff: tuple[int, int] | None) -> None:
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
    table = Table("version", "created (UTC)", "kind", "parallelism")
    for v in api.call("GET", f"/apps/{app_id}/versions"):
        table.add_row(str(v["version"]), str(v["created_at"])[:19], v["spec"]["kind"], str(v["spec"]["parallelism"]))
    console.print(table)


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
def jobs_unmanaged() -> None:
    """List jobs running on known clusters that no application owns."""
    table = Table("cluster", "job id", "name", "state", "tasks")
    for j in Api().call("GET", "/jobs/unmanaged"):
        table.add_row(j["cluster"], j["job_id"], j["name"], j["state"], f"{j['tasks_running']}/{j['tasks_total']}")
    console.print(table)


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
def cluster_list() -> None:
    """List clusters."""
    table = Table("id", "name", "kind", "REST", "Flink", "kept running")
    for c in Api().call("GET", "/clusters"):
        table.add_row(
            str(c["id"]),
            c["name"],
            c["kind"],
            c["rest_url"] or "-",
            c["flink_version"] or "-",
            "yes" if c["desired_running"] else "no",
        )
    console.print(table)


@main.group("flink-home")
def flink_home() -> None:
    """Flink distributions."""


@flink_home.command("list")
def flink_home_list() -> None:
    """List registered Flink homes."""
    table = Table("id", "name", "version", "path", "bundled")
    for h in Api().call("GET", "/flink-homes"):
        table.add_row(str(h["id"]), h["name"], h["version"], h["path"], "yes" if h["bundled"] else "")
    console.print(table)


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
