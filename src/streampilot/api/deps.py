"""Request-scoped dependencies: the platform and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from streampilot.domain.access import Principal
from streampilot.services import access
from streampilot.services.platform import Platform


def platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


PlatformDep = Annotated[Platform, Depends(platform)]


def client_of(request: Request) -> str:
    """Who is asking, for throttling and the audit log: the peer's address (a proxy in front shares one)."""
    return request.client.host if request.client else ""


async def account(request: Request, p: PlatformDep) -> Principal:
    """The principal of the request's personal API token; the rest of the request acts as it."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "missing API token: send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    found = await p.accounts.authenticate(token.strip(), client_of(request))
    if found is None:
        raise HTTPException(401, "invalid or expired API token", headers={"WWW-Authenticate": "Bearer"})
    access.act_as(found)  # reset when the request ends (api/hardening.py)
    return found


AccountDep = Annotated[Principal, Depends(account)]
