"""Formatting for the console: relative times, badges, sizes and the checkpoint chart (inline SVG)."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

BADGE = {
    "RUNNING": "ok",
    "FINISHED": "done",
    "CANCELED": "done",
    "CREATED": "idle",
    "STARTING": "busy",
    "RESTARTING": "warn",
    "STOPPING": "busy",
    "FAILING": "bad",
    "FAILED": "bad",
    "LOST": "bad",
}


def ago(when: datetime | None, now: datetime | None = None) -> Markup:
    """'12 s ago' with the exact UTC time on hover."""
    if when is None:
        return Markup("-")
    now = now or datetime.now(UTC)
    return Markup(
        f'<time datetime="{when.isoformat()}" title="{when.strftime("%Y-%m-%d %H:%M:%S")} UTC">'
        f"{span(int((now - when).total_seconds()))} ago</time>"
    )


def span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def ms_time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def errors_under(errors: dict[str, str], prefix: str) -> dict[str, str]:
    """The field errors of one section of a form (``prefix`` itself or ``prefix.…``)."""
    return {k: v for k, v in errors.items() if k == prefix or k.startswith(prefix + ".")}
