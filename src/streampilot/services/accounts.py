"""Users, their passwords and personal API tokens, and logging in.

Tokens are random, shown once (the first admin's in a 0600 file), stored hashed (SHA-256: they are
long and random); passwords are hashed with argon2 off the event loop. A login by token or password
gives the ``Principal`` the request then acts as (services/access.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from streampilot.domain.access import Principal
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound, Throttled
from streampilot.store.orm import Account, ApiToken, WebSession, utcnow

ADMIN = "admin"
USER = "user"
MIN_PASSWORD = 8
MAX_TOKEN_DAYS = 3650
USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$"
_USER_NAME = re.compile(USER_NAME)
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def user_name_problem(name: str) -> str | None:
    if not _USER_NAME.fullmatch(name):
        return "1-100 letters, digits and . _ @ + -, starting with a letter or digit"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > 1000 or "\x00" in password:
        return "at most 1000 characters, no NUL"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(stored: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@dataclass(frozen=True)
class NewToken:
    """A token as created: ``secret`` is shown this once and never again."""

    row: ApiToken
    secret: str


@dataclass
class AccountService:
    ctx: Context

    # ---- the first admin ----------------------------------------------------------------------
    async def ensure_admin(self) -> bool:
        """Create the admin account on first start (or issue a new token if the file is gone).

        Returns True if a new token was written to the token file.
        """
        token_file = self.ctx.settings.token_file
        try:
            async with self.ctx.sessions() as s, s.begin():
                admin = (await s.execute(sa.select(Account).where(Account.name == "admin"))).scalar_one_or_none()
                if admin is not None and token_file.exists():
                    return False
                token = secrets.token_urlsafe(32)
                if admin is None:
                    admin = Account(name="admin", role=ADMIN, source="local")
                    s.add(admin)
                    await s.flush()
                await s.execute(sa.delete(ApiToken).where(ApiToken.account_id == admin.id, ApiToken.name == "initial"))
                s.add(ApiToken(account_id=admin.id, name="initial", token_hash=hash_token(token)))
        except sa.exc.IntegrityError:
            # Several instances started at once on one database: another one created the admin (and,
            # with a shared home, its token file); this start leaves it as it is.
            return False
        write_secret(token_file, token)
        return True

    # ---- logging in ---------------------------------------------------------------------------
    def _check_throttle(self, client: str) -> None:
        wait = self.ctx.logins.wait_s(client)
        if wait > 0:
            raise Throttled(f"too many failed logins from {client or 'this client'}; try again in {wait:.0f} s", wait)

    async def authenticate(self, token: str, client: str = "") -> Principal | None:
        """The principal of a personal API token (not expired, its user enabled), or None;
        ``Throttled`` while ``client`` is blocked for failed logins."""
        self._check_throttle(client)
        now = utcnow()
        async with self.ctx.sessions() as s, s.begin():
            found = (
                await s.execute(
                    sa.select(ApiToken, Account)
                    .join(Account, Account.id == ApiToken.account_id)
                    .where(ApiToken.token_hash == hash_token(token))
                )
            ).first()
            if found is None or found[1].disabled or (found[0].expires_at is not None and found[0].expires_at <= now):
                self.ctx.logins.failed(client)
                return None
            row, account = found
            if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
                row.last_used_at = now  # at most one write a minute per token
            self.ctx.logins.succeeded(client)
            return await access.principal_of(s, account, client)

    async def check_password(self, name: str, password: str, client: str = "") -> Account | None:
        """The user ``name`` if ``password`` is theirs (and they are enabled), else None: a local user's
        against the stored hash, anyone else's against the LDAP directory when one is configured."""
        self._check_throttle(client)
        async with self.ctx.sessions() as s:
            account = (await s.execute(sa.select(Account).where(Account.name == name))).scalar_one_or_none()
        from streampilot.services.directory import Directory  # it builds on this module

        directory = Directory(self.ctx)
        if directory.ldap_on and (account is None or account.source == "ldap"):
            found = await directory.ldap_login(name, password)
            if found is None:
                self.ctx.logins.failed(client)
            else:
                self.ctx.logins.succeeded(client)
            return found
        stored = account.password_hash if account is not None and account.source == "local" else None
        ok = await password_matches(stored, password)
        if not ok or account is None or account.disabled:
            self.ctx.logins.failed(client)
            return None
        self.ctx.logins.succeeded(client)
        return account

    async def principal(self, account_id: int, client: str = "") -> Principal | None:
        async with self.ctx.sessions() as s:
            account = await s.get(Account, account_id)
            if account is None or account.disabled:
                return None
            return await access.principal_of(s, account, client)

    # ---- users --------------------------------------------------------------------------------
    async def list_users(self) -> list[Account]:
        async with self.ctx.sessions() as s:
            return list((await s.execute(sa.select(Account).order_by(Account.id))).scalars())

    async def get(self, user_id: int) -> Account:
        async with self.ctx.sessions() as s:
            account = await s.get(Account, user_id)
        if account is None:
            raise NotFound(f"no user with id {user_id}")
        return account

    async def create(
        self, name: str, *, password: str | None, admin: bool = False, email: str | None = None, source: str = "local"
    ) -> Account:
        access.require_admin("create users")
        problems = []
        if why := user_name_problem(name):
            problems.append(FieldProblem("name", why))
        if password is not None and (why := password_problem(password)):
            problems.append(FieldProblem("password", why))
        if problems:
            raise SpecError(problems)
        hashed = await hash_password(password) if password is not None else None
        async with self.ctx.sessions() as s, s.begin():
            if (await s.execute(sa.select(Account.id).where(Account.name == name))).first():
                raise Conflict(f"a user named {name!r} already exists; choose another name")
            account = Account(
                name=name, role=ADMIN if admin else USER, password_hash=hashed, email=email, source=source
            )
            s.add(account)
            await s.flush()
            access.audit(s, "create", "user", account.id, name=name, diff={"admin": admin, "source": source})
            return account

    async def update(
        self, user_id: int, *, password: str | None = None, admin: bool | None = None, disabled: bool | None = None
    ) -> Account:
        """A platform admin changes anything; users change their own password only."""
        who = access.current()
        if not who.admin and (who.account_id != user_id or admin is not None or disabled is not None):
            if who.account_id != user_id:
                raise NotFound(f"no user with id {user_id}")
            access.require_admin("make users admins or disable them")
        if password is not None and (why := password_problem(password)):
            raise SpecError.one("password", why)
        hashed = await hash_password(password) if password is not None else None
        async with self.ctx.sessions() as s, s.begin():
            account = await s.get(Account, user_id)
            if account is None:
                raise NotFound(f"no user with id {user_id}")
            diff: dict[str, object] = {}
            if hashed is not None:
                if account.source != "local":
                    raise SpecError.one("password", f"{account.name}'s password is kept by {account.source}")
                account.password_hash = hashed
                diff["password"] = "changed"
            if admin is not None and (account.role == ADMIN) != admin:
                if not admin:
                    await self._keep_an_admin(s, account)
                account.role = ADMIN if admin else USER
                diff["admin"] = admin
            if disabled is not None and account.disabled != disabled:
                if disabled:
                    await self._keep_an_admin(s, account)
                    await s.execute(sa.delete(WebSession).where(WebSession.account_id == account.id))
                account.disabled = disabled
                diff["disabled"] = disabled
            access.audit(s, "update", "user", account.id, name=account.name, diff=diff)
            return account

    async def delete(self, user_id: int) -> None:
        access.require_admin("delete users")
        async with self.ctx.sessions() as s, s.begin():
            account = await s.get(Account, user_id)
            if account is None:
                raise NotFound(f"no user with id {user_id}")
            await self._keep_an_admin(s, account)
            await s.delete(account)
            access.audit(s, "delete", "user", user_id, name=account.name)

    @staticmethod
    async def _keep_an_admin(s: AsyncSession, account: Account) -> None:
        if account.role != ADMIN or account.disabled:
            return
        others = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(Account)
                .where(Account.role == ADMIN, Account.id != account.id, Account.disabled.is_(False))
            )
        ).scalar_one()
        if not others:
            raise Conflict(f"{account.name} is the last enabled platform admin; make another admin first")

    # ---- personal tokens ----------------------------------------------------------------------
    def _own_or_admin(self, user_id: int) -> None:
        who = access.current()
        if not who.admin and who.account_id != user_id:
            raise NotFound(f"no user with id {user_id}")  # others' tokens do not exist for a user

    async def create_token(self, user_id: int, name: str, expires_in_days: int | None) -> NewToken:
        self._own_or_admin(user_id)
        problems = []
        if not name.strip() or len(name) > 100 or "\x00" in name:
            problems.append(FieldProblem("name", "1-100 characters"))
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            problems.append(FieldProblem("expires_in_days", f"between 1 and {MAX_TOKEN_DAYS} days, or none"))
        if problems:
            raise SpecError(problems)
        secret = secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        async with self.ctx.sessions() as s, s.begin():
            account = await s.get(Account, user_id)
            if account is None:
                raise NotFound(f"no user with id {user_id}")
            clash = await s.execute(sa.select(ApiToken.id).where(ApiToken.account_id == user_id, ApiToken.name == name))
            if clash.first():
                raise Conflict(f"{account.name} already has a token named {name!r}; revoke it or choose another name")
            row = ApiToken(account_id=user_id, name=name.strip(), token_hash=hash_token(secret), expires_at=expires)
            s.add(row)
            await s.flush()
            diff = {"token": name, "expires_at": expires.isoformat() if expires else None}
            access.audit(s, "create_token", "user", user_id, name=account.name, diff=diff)
            return NewToken(row, secret)

    async def tokens(self, user_id: int) -> list[ApiToken]:
        self._own_or_admin(user_id)
        await self.get(user_id)
        async with self.ctx.sessions() as s:
            q = sa.select(ApiToken).where(ApiToken.account_id == user_id).order_by(ApiToken.id)
            return list((await s.execute(q)).scalars())

    async def revoke_token(self, user_id: int, token_id: int) -> None:
        self._own_or_admin(user_id)
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(ApiToken, token_id)
            if row is None or row.account_id != user_id:
                raise NotFound(f"user {user_id} has no token with id {token_id}")
            account = await s.get(Account, user_id)
            await s.delete(row)
            name = account.name if account else ""
            access.audit(s, "revoke_token", "user", user_id, name=name, diff={"token": row.name})


@dataclass(frozen=True)
class Login:
    principal: Principal
    csrf: str


@dataclass
class SessionService:
    """Console logins kept on the server: the cookie's random id is stored hashed, expires after
    ``STREAMPILOT_SESSION_HOURS``, and a logout deletes it."""

    ctx: Context

    async def start(self, account_id: int) -> str:
        """A new login of the account; returns the cookie's value."""
        cookie = secrets.token_urlsafe(32)
        hours = self.ctx.settings.session_hours
        async with self.ctx.sessions() as s, s.begin():
            s.add(
                WebSession(
                    token_hash=hash_token(cookie),
                    account_id=account_id,
                    csrf=secrets.token_urlsafe(24),
                    expires_at=utcnow() + timedelta(hours=hours),
                )
            )
        return cookie

    async def find(self, cookie: str, client: str = "") -> Login | None:
        """The login behind a cookie, unless it expired, ended or its user was disabled."""
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
            if account is None or account.disabled:
                return None
            return Login(await access.principal_of(s, account, client), row.csrf)

    async def end(self, cookie: str) -> None:
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(WebSession).where(WebSession.token_hash == hash_token(cookie)))
