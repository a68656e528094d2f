"""Who may do what: roles in a team, ordered, and the principal a request acts as.

A platform admin may do everything in every team, and manage users and teams. In a team:
``viewer`` reads; ``operator`` also starts, stops, cancels and savepoints; ``developer`` also creates,
edits and deletes; ``owner`` also manages the team's members.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    DEVELOPER = "developer"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, need: Role) -> bool:
        return self.rank >= need.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.DEVELOPER: 2, Role.OWNER: 3}

ROLE_NAMES = ", ".join(r.value for r in Role)

# What each role may do, in the words the refusals use.
DOING = {
    Role.VIEWER: "see",
    Role.OPERATOR: "start, stop or savepoint",
    Role.DEVELOPER: "create, change or delete",
    Role.OWNER: "manage the members of",
}


@dataclass(frozen=True)
class Principal:
    """The account a request acts as, with its role in each of its teams; ``client`` is where it came from."""

    account_id: int | None
    name: str
    admin: bool
    roles: Mapping[int, Role] = field(default_factory=dict)
    client: str = ""

    def teams(self) -> set[int] | None:
        """The teams whose objects it sees (None: all of them)."""
        return None if self.admin else set(self.roles)

    def role_in(self, team_id: int) -> Role | None:
        return Role.OWNER if self.admin else self.roles.get(team_id)

    def sees(self, team_id: int) -> bool:
        return self.role_in(team_id) is not None

    def may(self, team_id: int, need: Role) -> bool:
        role = self.role_in(team_id)
        return role is not None and role.allows(need)


# Background work (tracker, policies, recovery) acts as the platform itself.
SYSTEM = Principal(account_id=None, name="system", admin=True)
