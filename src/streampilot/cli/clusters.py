"""``streampilot cluster|flink-home|jobs|sql-runner-jar``: where jobs run."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from streampilot.cli import main
from streampilot.cli.client import Api, _ref, console, emit, fail, output_option, team_ref
from streampilot.settings import Settings, SettingsError


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
@click.option("--team", default=None, help="The owning team, by name or id (default: your only team).")
def cluster_add(
    name: str, kind: str, rest_url: str | None, slots: int | None, options_file: str | None, team: str | None
) -> None:
    """Register a cluster."""
    options = None
    if options_file:
        try:
            options = yaml.safe_load(Path(options_file).read_text())
        except yaml.YAMLError as exc:
            fail(f"{options_file} is not valid YAML: {exc}")
    api = Api()
    body = {"name": name, "kind": kind, "rest_url": rest_url, "slots": slots, "options": options}
    body["team_id"] = team_ref(api, team) if team else None
    c = api.call("POST", "/clusters", json=body)
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
