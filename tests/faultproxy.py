"""A fault-injecting HTTP proxy for tests: sits between the platform and Flink's REST API.

Modes: ``ok`` (forward), ``error500``, ``hang`` (never answer), ``reset`` (drop the connection),
``truncate`` (cut the body in half), ``slow`` (forward after a delay). One request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urlparse(upstream)
        self.up_host = parsed.hostname or "127.0.0.1"
        self.up_port = parsed.port or 80
        self.mode = "ok"
        self.slow_s = 1.0
        self.requests = 0
        self.paths: list[str] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.paths.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        lines = [ln for ln in head.split(b"\r\n") if ln and not ln.lower().startswith((b"connection:", b"host:"))]
        lines.insert(1, f"Host: {self.up_host}:{self.up_port}".encode())
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def _forward(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(self.up_host, self.up_port)
        writer.write(request)
        await writer.drain()
        data = await reader.read()
        writer.close()
        return data

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        try:
            request = await self._read_request(reader)
            mode = self.mode
            if mode == "error500":
                body = b'{"errors":["Internal server error (injected)"]}'
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
                )
            elif mode == "hang":
                while self.mode == "hang":
                    await asyncio.sleep(0.05)
                return
            elif mode == "reset":
                writer.transport.abort()
                return
            else:
                if mode == "slow":
                    await asyncio.sleep(self.slow_s)
                response = await self._forward(request)
                if mode == "truncate":
                    head, _, body = response.partition(b"\r\n\r\n")
                    response = head + b"\r\n\r\n" + body[: len(body) // 2]
                writer.write(response)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
