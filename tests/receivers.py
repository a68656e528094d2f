"""Local receivers for alert tests: an HTTP endpoint that records requests and answers as scripted,
and a real SMTP server (aiosmtpd) that records mails."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Mail
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from streampilot.flink.local import free_port


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers POSTs with the next scripted (status, body, headers), or the default; can hang."""

    default: tuple[int, str] = (200, '{"errcode": 0, "code": 0}')
    script: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    hang: bool = False
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> HttpReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        self.hang = False
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.requests.append(Request(method, parts.path, query, headers, body))
            while self.hang:
                await asyncio.sleep(0.05)
            status, text, extra = self.script.pop(0) if self.script else (*self.default, {})
            data = text.encode()
            head_out = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            head_out += "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "Connection: close\r\n\r\n"
            writer.write(head_out.encode() + data)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


class _MailHandler:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], Mail]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # the name aiosmtpd calls
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


class SmtpReceiver:
    """A real SMTP server in-process (aiosmtpd), on a free loopback port."""

    def __init__(self) -> None:
        self.handler = _MailHandler()
        self._port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self._port)

    @property
    def mails(self) -> list[tuple[str, list[str], Mail]]:
        return self.handler.mails

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
