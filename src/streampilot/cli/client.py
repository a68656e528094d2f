"""The CLI's side of the REST API: the connection, errors as one line, output as table, JSON or YAML,
and following an operation to its end."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
import yaml
from rich.console import Console
from rich.table import Table

from streampilot.settings import Settings


def _console(stderr: bool = False) -> Console:
    """A terminal gets rich output; a pipe or file gets every value whole: never wrapped or cut."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=100_000, soft_wrap=True, no_color=True, highlight=False)


console = _console()
err = _console(stderr=True)
OUTPUTS = ("table", "json", "yaml")


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


def login_file() -> Path:
    """Where ``streampilot login`` keeps the user's personal token (0600)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "streampilot" / "token"


class Api:
    """The REST API as the CLI's user: STREAMPILOT_TOKEN, else the token of ``streampilot login``,
    else (on the platform's own host) the first admin's token file."""

    def __init__(self, token: str | None = None, *, anonymous: bool = False) -> None:
        settings = Settings.from_env()
        self.url = os.environ.get("STREAMPILOT_URL", f"http://{settings.host}:{settings.port}")
        token = token or os.environ.get("STREAMPILOT_TOKEN")
        for source in (login_file(), settings.token_file):
            if token or anonymous:
                break
            try:
                token = source.read_text().strip()
            except OSError:
                continue
        if not token and not anonymous:
            fail(
                "no API token: run 'streampilot login', set STREAMPILOT_TOKEN, or run the server once to create "
                f"{settings.token_file}"
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=300)

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


def team_ref(api: Api, ref: str) -> int:
    """The id of a team given by id or by name."""
    if ref.isdigit():
        return int(ref)
    for t in api.call("GET", "/teams"):
        if t["name"] == ref:
            return int(t["id"])
    fail(f"no team named {ref!r} among yours; see 'streampilot team list'")


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


def post_operation(api: Api, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Begin an operation. Its Idempotency-Key makes a retry safe: when the answer is lost (the
    connection broke) or the server's database dropped (503), the same request again returns the
    operation the first one began, never a second one."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(4):
        try:
            resp = api.http.post(f"/api/v1{path}", json=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == 3:
                fail(f"cannot reach streampilot at {api.url}: {exc}")
            time.sleep(1)
            continue
        if resp.status_code == 503 and attempt < 3:
            time.sleep(float(resp.headers.get("retry-after", "1")))
            continue
        if resp.status_code >= 400:
            fail(_error_text(resp))
        answer: dict[str, dict[str, Any]] = resp.json()
        return answer["operation"]
    fail("streampilot's database kept dropping the connection; try again later")
