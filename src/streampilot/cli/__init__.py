"""The ``streampilot`` command: the server, and a client of the REST API for everything else.

Errors are one clear line on stderr and a non-zero exit code, never a traceback. The commands live
in apps.py (applications and operations) and clusters.py (clusters, Flink homes, jobs).
"""

from __future__ import annotations

import click

from streampilot.cli.client import fail
from streampilot.settings import Settings, SettingsError


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
        settings = settings.with_(log=LogSettings(level=log_level or log.level, format=log_format or log.format))
    from streampilot.store.db import DatabaseUrlError

    try:
        serve(settings, host=host, port=port, example=not no_example, local_cluster=not no_local_cluster)
    except DatabaseUrlError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


from streampilot.cli import apps, clusters, users, variables  # noqa: E402  (registers the commands on main)

__all__ = ["apps", "clusters", "main", "users", "variables"]
