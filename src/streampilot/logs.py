"""The platform's log: one line per meaningful event (a cluster started, an app's state changed, an
operation ended), with ``app``/``job``/``operation`` fields; text for people or JSON for machines.

HTTP calls to Flink, Kubernetes and our own API are logged only at ``debug``: at ``info`` they would
drown the events (and a webhook's URL holds its secret).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FIELDS = ("app", "job", "operation")
CHATTY = ("httpx", "httpcore", "kubernetes_asyncio", "aiosqlite", "asyncio", "uvicorn.access")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None) is not None)
        return f"{text} [{extra}]" if extra else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k in FIELDS:
            value = getattr(record, k, None)
            if value is not None:
                out[k] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def uvicorn_config() -> dict[str, object]:
    """uvicorn keeps our handlers and format instead of installing its own."""
    return {"version": 1, "disable_existing_loggers": False}
