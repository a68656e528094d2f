"""Accounts and API tokens. Tokens are random, shown once (the admin's in a 0600 file), stored hashed."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from streampilot.services.context import Context
from streampilot.services.errors import Throttled
from streampilot.store.orm import Account


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
