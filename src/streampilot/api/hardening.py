"""What every request and answer goes through, before any route (a plain ASGI middleware):

- security headers on every answer: a Content-Security-Policy (own origin only; no framing, no
  plugins), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, a same-origin referrer;
- a body size limit: multipart uploads (jars) up to ``max_upload_mb``, anything else up to
  ``max_body_mb``; a larger body is 413 before it is read (Content-Length) or as soon as it exceeds
  the limit (chunked);
- NUL characters refused in JSON and form bodies (422): PostgreSQL cannot store them in text, and no
  SQL, script or name has a use for them;
- an object id in the path beyond what the database holds (ids are 32-bit) is 404 at once, never a
  database error (``out_of_range`` makes a number elsewhere a 422).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from streampilot.services import access

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_CHECKED_TYPES = (b"application/json", b"application/x-www-form-urlencoded")
_NULS = (b"\\u0000", b"\x00", b"%00")


MAX_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL and MariaDB
_API_ID = re.compile(r"^/api/v1/(?:apps|clusters|operations|variables|alert-channels|users|teams)/([^/]+)(?:/|$)")
_DIGITS = re.compile(r"^-?[0-9]+$")
_ID_PATH = re.compile(r"^(?:/api/v1)?/(?:apps|clusters|operations|variables|alert-channels|users|teams)/(-?\d+)(?:/|$)")


class TooLarge(Exception):
    pass


def out_of_range(exc: BaseException) -> bool:
    """Whether a database error means a number did not fit its column (SQLite: OverflowError; asyncpg:
    "out of int32 range"; MariaDB: "Out of range value")."""
    text = f"{exc} {getattr(exc, 'orig', '')}".lower()
    return isinstance(exc, OverflowError) or bool(re.search(r"out of (\w+ )?range|too large to convert", text))


class Hardening:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Each request acts as nobody until it authenticates (api/deps.py, web/common.py): a route
        # that forgot to ask for a login sees no team's objects; afterwards the caller's own
        # principal is back (tests call the app in their own task).
        token = access.act_as(access.ANONYMOUS)
        try:
            await self._http(scope, receive, send)
        finally:
            access.stop_acting(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        found = _API_ID.match(scope.get("path", ""))
        if found and not (_DIGITS.match(found.group(1)) and 0 < int(found.group(1)) <= MAX_ID):
            # An id is digits only ("9\r" is not 9, "None" is no id): anything else names nothing.
            await _problem(send_with_headers, 404, "id", f"no object with id {found.group(1)!r}")
            return
        found = _ID_PATH.match(scope.get("path", ""))
        if found and not 0 < int(found.group(1)) <= MAX_ID:
            await _problem(send_with_headers, 404, "id", f"no object with id {found.group(1)}")
            return
        query = scope.get("query_string") or b""
        if b"%00" in query or b"\x00" in query:
            name = next((k for k, v in parse_qsl(query.decode("latin-1")) if "\x00" in k + v), "(query)")
            await _problem(send_with_headers, 422, name, "NUL characters (\\u0000) are not allowed; remove them")
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_upload if content_type == b"multipart/form-data" else self.max_body
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _problem(send_with_headers, 413, "(body)", _too_large(limit))
            return
        if content_type in _CHECKED_TYPES:
            try:
                body = await _read(receive, limit)
            except TooLarge:
                await _problem(send_with_headers, 413, "(body)", _too_large(limit))
                return
            if any(nul in body for nul in _NULS):
                field = _nul_field(body, content_type)
                if field is not None:
                    message = "NUL characters (\\u0000) are not allowed; remove them"
                    await _problem(send_with_headers, 422, field, message)
                    return
            await self.app(scope, _replay(body, receive), send_with_headers)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, _limited(receive, limit), send_tracked)
        except TooLarge:
            if started:
                raise
            await _problem(send_with_headers, 413, "(body)", _too_large(limit))


def _nul_field(body: bytes, content_type: bytes) -> str | None:
    """The field holding a NUL character (dotted path), "(body)" if the body cannot be read, None if
    the bytes only looked like one (e.g. an escaped backslash before "u0000")."""
    if content_type == b"application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "")
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return "(body)"

    def find(node: Any, path: str) -> str | None:
        if isinstance(node, str):
            return (path or "(body)") if "\x00" in node else None
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here.replace("\x00", "")
            found = find(value, here)
            if found is not None:
                return found
        return None

    return find(document, "")


def _too_large(limit: int) -> str:
    return (
        f"the request body is over {limit // (1024 * 1024)} MB; send less (or raise STREAMPILOT_MAX_BODY_MB / "
        "STREAMPILOT_MAX_UPLOAD_MB)"
    )


async def _read(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect

    return replay


def _limited(receive: Receive, limit: int) -> Receive:
    size = 0

    async def limited() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise TooLarge(_too_large(limit))
        return message

    return limited


async def _problem(send: Send, status: int, field: str, message: str) -> None:
    body = json.dumps({"detail": [{"field": field, "message": message}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
