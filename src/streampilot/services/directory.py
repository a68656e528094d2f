"""Logins checked elsewhere: an LDAP directory (a bind as the user) and an OpenID Connect provider.

Such a user gets an account on first login (``source`` ldap or oidc, no password stored here) and, at
every login, their admin right and team roles from their groups (domain/groups.py). A directory that
does not answer is an error (502), never a wrong password.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import sqlalchemy as sa

from streampilot.domain.groups import grants_for, parse_group_roles
from streampilot.services.accounts import ADMIN, USER, user_name_problem
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, Forbidden, Unavailable
from streampilot.settings import LdapSettings
from streampilot.store.orm import Account, AuditEvent, Membership, Team

log = logging.getLogger("streampilot.directory")


@dataclass(frozen=True)
class ExternalUser:
    name: str
    email: str | None
    groups: tuple[str, ...]


class LdapDown(Exception):
    pass


def _first_value(dn: str) -> str:
    """``cn=payments-devs,ou=groups,...`` -> ``payments-devs``."""
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def ldap_check(cfg: LdapSettings, name: str, password: str) -> ExternalUser | None:
    """Bind as the user ``name`` with ``password``: the user and their groups, or None for wrong
    credentials; LdapDown when the directory cannot be asked. Blocking: run it in a thread."""
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars

    if not password:
        return None  # an empty password is an anonymous bind in LDAP, never a login
    assert cfg.url is not None
    timeout = max(1, math.ceil(cfg.timeout_s))  # ldap3 packs it into a socket option: whole seconds
    try:
        server = ldap3.Server(cfg.url, connect_timeout=timeout, get_info=ldap3.NONE)
        search = ldap3.Connection(
            server, user=cfg.bind_dn, password=cfg.bind_password, receive_timeout=timeout, read_only=True
        )
        if cfg.start_tls:
            search.open()
            search.start_tls()
        if not search.bind():
            raise LdapDown(f"the search account could not log in ({search.result.get('description')})")
        try:
            query = cfg.user_filter.format(name=escape_filter_chars(name))
            search.search(cfg.user_base, query, attributes=["mail", "memberOf"], size_limit=2)
            if len(search.entries) != 1:
                return None
            entry = search.entries[0]
            dn = entry.entry_dn
            email = str(entry.mail.value) if "mail" in entry and entry.mail.value else None
            user = ldap3.Connection(server, user=dn, password=password, receive_timeout=timeout)
            if cfg.start_tls:
                user.open()
                user.start_tls()
            if not user.bind():
                return None
            user.unbind()
            if cfg.group_base:
                query = cfg.group_filter.format(dn=escape_filter_chars(dn), name=escape_filter_chars(name))
                search.search(cfg.group_base, query, attributes=[cfg.group_name_attribute])
                groups = [str(e[cfg.group_name_attribute].value) for e in search.entries]
            else:
                groups = [_first_value(str(g)) for g in (entry.memberOf.values if "memberOf" in entry else [])]
            return ExternalUser(name, email, tuple(groups))
        finally:
            search.unbind()
    except (LDAPException, OSError) as exc:
        raise LdapDown(str(exc) or type(exc).__name__) from None


@dataclass
class Directory:
    ctx: Context

    @property
    def ldap_on(self) -> bool:
        return self.ctx.settings.ldap.url is not None

    async def ldap_login(self, name: str, password: str) -> Account | None:
        """The account of an LDAP user whose password the directory accepts; None if it does not."""
        cfg = self.ctx.settings.ldap
        try:
            found = await asyncio.wait_for(
                asyncio.to_thread(ldap_check, cfg, name, password), timeout=cfg.timeout_s * 4
            )
        except (LdapDown, TimeoutError) as exc:
            log.warning("LDAP login of %r: the directory at %s did not answer: %s", name, cfg.url, exc)
            raise Unavailable(f"the LDAP directory did not answer ({exc}); try again later") from None
        if found is None:
            return None
        return await self.sync("ldap", found)

    async def sync(self, source: str, user: ExternalUser) -> Account:
        """Create or update the account of an external user, and their roles from their groups."""
        if why := user_name_problem(user.name):
            raise Forbidden(f"the name {user.name!r} from {source} cannot be a user name here: {why}")
        grants = grants_for(parse_group_roles(self.ctx.settings.group_roles), user.groups)
        async with self.ctx.sessions() as s, s.begin():
            account = (await s.execute(sa.select(Account).where(Account.name == user.name))).scalar_one_or_none()
            if account is None:
                account = Account(name=user.name, role=USER, source=source, email=user.email)
                s.add(account)
                await s.flush()
            elif account.source != source:
                raise Conflict(
                    f"a {account.source} user named {user.name!r} exists already; a platform admin must rename "
                    "or delete it before this login can be used"
                )
            if account.disabled:
                raise Forbidden(f"{user.name} is disabled; ask a platform admin")
            changes: dict[str, object] = {}
            role = ADMIN if grants.admin else USER
            if account.role != role:
                changes["admin"] = {"from": account.role == ADMIN, "to": grants.admin}
                account.role = role
            account.email = user.email or account.email
            teams = {
                t.name: t.id
                for t in (await s.execute(sa.select(Team).where(Team.name.in_(grants.managed_teams)))).scalars()
            }
            current = {
                m.team_id: m
                for m in (await s.execute(sa.select(Membership).where(Membership.account_id == account.id))).scalars()
            }
            for team_name, team_id in teams.items():
                wanted = grants.roles.get(team_name)
                held = current.get(team_id)
                before = held.role if held is not None else None
                if wanted is None and held is not None:
                    await s.delete(held)
                elif wanted is not None and held is None:
                    s.add(Membership(team_id=team_id, account_id=account.id, role=wanted.value))
                elif wanted is not None and held is not None:
                    held.role = wanted.value
                after = wanted.value if wanted is not None else None
                if before != after:
                    changes[team_name] = {"from": before, "to": after}
            missing = grants.managed_teams - set(teams)
            if missing:
                log.warning("STREAMPILOT_GROUP_ROLES names teams that do not exist: %s", ", ".join(sorted(missing)))
            if changes:
                s.add(
                    AuditEvent(
                        actor=user.name, client="", action="sync_roles", object_kind="user",
                        object_id=account.id, object_name=user.name, team_id=None,
                        diff={"source": source, "groups": list(user.groups), **changes},
                    )
                )  # fmt: skip
            return account
