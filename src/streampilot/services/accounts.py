"""Accounts and API tokens. Tokens are random, shown once (the admin's in a 0600 file), stored hashed."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from streampilot.services.context import Context
from streampilot.services.errors import Throttled
from streampilot.store.orm import Account, WebSession, utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


@dataclass
class AccountService:
    ctx: Context

    async def ensure_admin(self) -> bool:
        """Create the admin account on first start (or re-issue its token if the file is gone).

        Returns True if a new token was written to the token file.
        """
        token_file = self.ctx.settings.token_file
        async with self.ctx.sessions() as s, s.begin():
            admin = (await s.execute(sa.select(Account).where(Account.name == "admin"))).scalar_one_or_none()
            if admin is not None and token_file.exists():
                return False
            token = secrets.token_urlsafe(32)
            if admin is None:
                s.add(Account(name="admin", role="admin", token_hash=hash_token(token)))
            else:
                admin.token_hash = hash_token(token)
        write_secret(token_file, token)
        return True

    async def authenticate(self, token: str, client: str = "") -> Account | None:
        """The token's account, or None; ``Throttled`` while ``client`` is blocked for wrong tokens."""
        wait = self.ctx.logins.wait_s(client)
        if wait > 0:
            raise Throttled(f"too many wrong tokens from {client or 'this client'}; try again in {wait:.0f} s", wait)
        async with self.ctx.sessions() as s:
            found = (
                await s.execute(sa.select(Account).where(Account.token_hash == hash_token(token)))
            ).scalar_one_or_none()
        if found is None:
            self.ctx.logins.failed(client)
        else:
            self.ctx.logins.succeeded(client)
        return found


@dataclass(frozen=True)
class Login:
    account: Account
    csrf: str


@dataclass
class SessionService:
    """Console logins kept on the server: the cookie's random id is stored hashed, expires after
    ``STREAMPILOT_SESSION_HOURS``, and a logout deletes it."""

    ctx: Context

    async def start(self, account: Account) -> str:
        """A new login of ``account``; returns the cookie's value."""
        cookie = secrets.token_urlsafe(32)
        hours = self.ctx.settings.session_hours
        async with self.ctx.sessions() as s, s.begin():
            s.add(
                WebSession(
                    token_hash=hash_token(cookie),
                    account_id=account.id,
                    csrf=secrets.token_urlsafe(24),
                    expires_at=utcnow() + timedelta(hours=hours),
                )
            )
        return cookie

    async def find(self, cookie: str) -> Login | None:
        """The login behind a cookie, unless it expired or ended."""
        async with self.ctx.sessions() as s, s.begin():
            row = (
                await s.execute(sa.select(WebSession).where(WebSession.token_hash == hash_token(cookie)))
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.expires_at <= utcnow():
                await s.delete(row)
                return None
            account = await s.get(Account, row.account_id)
            return Login(account, row.csrf) if account is not None else None

    async def end(self, cookie: str) -> None:
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(WebSession).where(WebSession.token_hash == hash_token(cookie)))
