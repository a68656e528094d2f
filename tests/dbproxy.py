"""A TCP proxy between the platform and PostgreSQL that can drop connections at a chosen moment.

``cut_after_commit_of(b"INSERT INTO operations")``: on the connection that sends that statement, the
next COMMIT is passed to PostgreSQL (which commits) and then the connection is dropped before the
answer reaches the platform — what a network or server failure does at the worst moment: the change
is stored, the client does not know it.
"""

from __future__ import annotations

import asyncio
import contextlib


class DbProxy:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.marker: bytes | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def cut_after_commit_of(self, marker: bytes) -> None:
        self.marker = marker

    async def start(self) -> DbProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_w.close()
            return
        state = {"seen": False, "cut": False}
        reader = _Messages()

        async def upstream() -> None:  # platform -> PostgreSQL
            while data := await client_r.read(65536):
                if reader.feed(data, self.marker) and self.marker is not None:
                    state["seen"] = True
                commit = state["seen"] and b"COMMIT" in data.upper()
                if commit:
                    state["cut"] = True  # before PostgreSQL can answer
                server_w.write(data)
                await server_w.drain()
                if commit:
                    self.marker = None
                    self.cuts += 1
                    await asyncio.sleep(0.2)  # PostgreSQL commits; its answer never arrives
                    break

        async def downstream() -> None:  # PostgreSQL -> platform
            while data := await server_r.read(65536):
                if state["cut"]:
                    break
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        self._tasks.update(tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
            self._tasks.discard(t)
        for w in (client_w, server_w):
            with contextlib.suppress(Exception):
                w.close()


class _Messages:
    """Just enough of PostgreSQL's frontend protocol to know when a statement runs: its text in a
    simple Query or a Parse, or (asyncpg caches prepared statements) a Bind of a statement whose Parse
    had it."""

    def __init__(self) -> None:
        self.buffer = b""
        self.untyped = True  # SSLRequest / StartupMessage come without a type byte
        self.statements: dict[bytes, bytes] = {}  # prepared statement name -> its SQL

    def feed(self, data: bytes, marker: bytes | None) -> bool:
        """Read ``data`` (every byte of the stream, in order); whether a statement with ``marker`` ran."""
        self.buffer += data
        seen = False
        while True:
            if self.untyped:
                if len(self.buffer) < 8:
                    return seen
                length = int.from_bytes(self.buffer[:4], "big")
                code = int.from_bytes(self.buffer[4:8], "big")
                if len(self.buffer) < length:
                    return seen
                self.buffer = self.buffer[length:]
                self.untyped = code in (80877103, 80877104)  # SSL or GSS request: the startup follows
                continue
            if len(self.buffer) < 5:
                return seen
            kind, length = self.buffer[:1], int.from_bytes(self.buffer[1:5], "big")
            if len(self.buffer) < 1 + length:
                return seen
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            if kind == b"P":
                name, _, rest = body.partition(b"\0")
                self.statements[name] = rest.partition(b"\0")[0]
                seen = seen or (marker is not None and marker in self.statements[name])
            elif kind == b"B":
                _portal, _, rest = body.partition(b"\0")
                text = self.statements.get(rest.partition(b"\0")[0], b"")
                seen = seen or (marker is not None and marker in text)
            elif kind == b"Q":
                seen = seen or (marker is not None and marker in body)
