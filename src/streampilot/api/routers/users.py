"""Users, personal API tokens, who one is (``/me``), and logging in with a password for a token."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from streampilot.api.deps import AccountDep, PlatformDep, account, client_of
from streampilot.api.schemas import Body
from streampilot.services import access
from streampilot.services.accounts import MIN_PASSWORD, USER_NAME, NewToken
from streampilot.services.errors import Unauthorized
from streampilot.store.orm import Account, ApiToken

public = APIRouter(prefix="/api/v1", tags=["users"])
router = APIRouter(prefix="/api/v1", tags=["users"], dependencies=[Depends(account)])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=USER_NAME)
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD, max_length=1000, description="None: the user logs in by token only"
    )
    admin: bool = False
    email: str | None = Field(default=None, max_length=320)


class UserPatch(Body):
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=1000)
    admin: bool | None = None
    disabled: bool | None = None


class UserOut(BaseModel):
    id: int
    name: str
    admin: bool
    source: str
    email: str | None
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, a: Account) -> UserOut:
        return cls(
            id=a.id,
            name=a.name,
            admin=a.role == "admin",
            source=a.source,
            email=a.email,
            disabled=a.disabled,
            created_at=a.created_at,
        )


class TeamRole(BaseModel):
    team_id: int
    role: str


class MeOut(UserOut):
    teams: list[TeamRole]


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="None: it does not expire")


class TokenOut(BaseModel):
    id: int
    name: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, t: ApiToken) -> TokenOut:
        return cls(id=t.id, name=t.name, expires_at=t.expires_at, last_used_at=t.last_used_at, created_at=t.created_at)


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, never again")

    @classmethod
    def made(cls, new: NewToken) -> TokenCreated:
        return cls(**TokenOut.of(new.row).model_dump(), token=new.secret)


class PasswordLogin(Body):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    token_name: str = Field(default="cli", min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=30, ge=1, le=3650)


@public.post("/login", status_code=201)
async def login(body: PasswordLogin, request: Request, p: PlatformDep) -> TokenCreated:
    """A user's name and password for a new personal token (the CLI's ``streampilot login``)."""
    found = await p.accounts.check_password(body.name, body.password, client_of(request))
    if found is None:
        raise Unauthorized("wrong user name or password")
    with access.acting_as(await p.accounts.principal(found.id, client_of(request)) or access.ANONYMOUS):
        name = f"{body.token_name}-{secrets.token_hex(4)}"  # one per login
        return TokenCreated.made(await p.accounts.create_token(found.id, name, body.expires_in_days))


@router.get("/me")
async def me(who: AccountDep, p: PlatformDep) -> MeOut:
    assert who.account_id is not None
    user = UserOut.of(await p.accounts.get(who.account_id))
    teams = [TeamRole(team_id=t, role=r.value) for t, r in sorted(who.roles.items())]
    return MeOut(**user.model_dump(), teams=teams)


@router.get("/users")
async def list_users(p: PlatformDep) -> list[UserOut]:
    return [UserOut.of(a) for a in await p.accounts.list_users()]


@router.post("/users", status_code=201)
async def create_user(body: UserCreate, p: PlatformDep) -> UserOut:
    """A new user (platform admins)."""
    return UserOut.of(await p.accounts.create(body.name, password=body.password, admin=body.admin, email=body.email))


@router.get("/users/{user_id}")
async def get_user(user_id: Id, p: PlatformDep) -> UserOut:
    return UserOut.of(await p.accounts.get(user_id))


@router.patch("/users/{user_id}")
async def patch_user(user_id: Id, body: UserPatch, p: PlatformDep) -> UserOut:
    """A new password (oneself or an admin), admin rights or disabling (admins)."""
    return UserOut.of(
        await p.accounts.update(user_id, password=body.password, admin=body.admin, disabled=body.disabled)
    )


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: Id, p: PlatformDep) -> Response:
    await p.accounts.delete(user_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens")
async def user_tokens(user_id: Id, p: PlatformDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in await p.accounts.tokens(user_id)]


@router.post("/users/{user_id}/tokens", status_code=201)
async def create_user_token(user_id: Id, body: TokenCreate, p: PlatformDep) -> TokenCreated:
    """A personal token for the user (oneself, or any user for an admin): shown this once."""
    return TokenCreated.made(await p.accounts.create_token(user_id, body.name, body.expires_in_days))


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204)
async def revoke_user_token(user_id: Id, token_id: Id, p: PlatformDep) -> Response:
    await p.accounts.revoke_token(user_id, token_id)
    return Response(status_code=204)


def _me(who: AccountDep) -> int:
    assert who.account_id is not None
    return who.account_id


@router.get("/me/tokens")
async def my_tokens(who: AccountDep, p: PlatformDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in await p.accounts.tokens(_me(who))]


@router.post("/me/tokens", status_code=201)
async def create_my_token(who: AccountDep, body: TokenCreate, p: PlatformDep) -> TokenCreated:
    return TokenCreated.made(await p.accounts.create_token(_me(who), body.name, body.expires_in_days))


@router.delete("/me/tokens/{token_id}", status_code=204)
async def revoke_my_token(who: AccountDep, token_id: Id, p: PlatformDep) -> Response:
    await p.accounts.revoke_token(_me(who), token_id)
    return Response(status_code=204)
