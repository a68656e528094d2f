"""Groups of a directory (LDAP) or an identity provider (OIDC) to platform admin rights and team roles.

``STREAMPILOT_GROUP_ROLES`` lists rules ``group=team:role`` or ``group=admin`` separated by ``;``. At each
login the user's roles in the teams these rules name are set from their groups (the highest role a
group gives; none: not a member); teams no rule names are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streampilot.domain.access import ROLE_NAMES, Role


@dataclass(frozen=True)
class GroupRule:
    group: str
    team: str | None  # None: the group makes its members platform admins
    role: Role | None


@dataclass(frozen=True)
class Grants:
    admin: bool
    roles: dict[str, Role] = field(default_factory=dict)  # team name -> role
    managed_teams: frozenset[str] = frozenset()


def parse_group_roles(text: str) -> list[GroupRule]:
    """The rules, or ValueError saying which one is wrong and how to write it."""
    rules = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        group, eq, grant = (s.strip() for s in part.partition("="))
        if not eq or not group or not grant:
            raise ValueError(f"{part!r}: write group=team:role or group=admin")
        if grant == "admin":
            rules.append(GroupRule(group, None, None))
            continue
        team, colon, role = (s.strip() for s in grant.partition(":"))
        if not colon or not team:
            raise ValueError(f"{part!r}: write group=team:role or group=admin")
        try:
            rules.append(GroupRule(group, team, Role(role)))
        except ValueError:
            raise ValueError(f"{part!r}: unknown role {role!r}; use one of {ROLE_NAMES}") from None
    return rules


def grants_for(rules: list[GroupRule], groups: Iterable[str]) -> Grants:
    have = {g.lower() for g in groups}
    admin = False
    roles: dict[str, Role] = {}
    for rule in rules:
        if rule.group.lower() not in have:
            continue
        if rule.team is None:
            admin = True
        elif rule.role is not None and (rule.team not in roles or rule.role.allows(roles[rule.team])):
            roles[rule.team] = rule.role
    managed = frozenset(r.team for r in rules if r.team is not None)
    return Grants(admin, roles, managed)
