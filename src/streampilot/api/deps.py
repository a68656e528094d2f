"""Request-scoped dependencies: the platform and the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from streampilot.services.platform import Platform
from streampilot.store.orm import Account


def platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


PlatformDep = Annotated[Platform, Depends(platform)]


def client_of(request: Request) -> str:
    """Who is asking, for throttling: the peer's address (a proxy in front shares one)."""
    return request.client.host if request.client else ""


async def account(request: Request, p: PlatformDep) -> Account:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "missing API token: send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    found = await p.accounts.authenticate(token.strip(), client_of(request))
    if found is None:
        raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    return found


AccountDep = Annotated[Account, Depends(account)]
